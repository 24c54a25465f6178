"""The promotion gate: a challenger replaces the champion only if it is measurably better.

This module runs it against the registry (loads both models, scores them, records the verdict,
moves the alias); the rules themselves are model/gate.py, pure functions of two evaluations.

Two sets of rows, both unseen by both models, each with its own rules:

* recent rows, the challenger's own held-out split (which holds feedback-labelled listings from
  today's market): the challenger must beat the champion there;
* the lineage's frozen benchmark, curated rows set aside by its first training and never feedback
  (model/registry.py): the challenger may not regress overall, nor on any category, small ones
  included. A category fails when even the top of the 95 % Wilson interval of the challenger's
  recall lies more than ``gate_max_class_recall_drop`` below the champion's recall: with 12 rows
  a fall from 12/12 to 4/12 is caught, while one miss in a small class is not.

Rows from the network can move the first check; they cannot move the second, so a flood of
poisoned feedback, or a retraining that forgets a category, is rejected. The decision and every
reason are written onto the challenger's model version as tags, so the registry itself answers
"why is this the champion?".
"""

from __future__ import annotations

import json

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from pigeonhole.core.settings import Settings
from pigeonhole.model.evaluate import evaluate
from pigeonhole.model.gate import GateDecision, judge, judge_benchmark, spelt
from pigeonhole.model.registry import (
    CHALLENGER,
    CHAMPION,
    load_benchmark,
    load_evaluation_rows,
    load_predictor,
    load_training_ids,
    require_alias,
    set_champion,
    version_by_alias,
)

# on each gated version: the champion it was compared with (a version number), if there was one
COMPARED_WITH_TAG = "gate.compared_with"


def evaluation_rows(challenger: ModelVersion, champion: ModelVersion | None) -> pd.DataFrame:
    """The challenger's held-out split, less any listing the champion was trained on.

    A retrained challenger usually shares most of its data with the champion; scoring the champion
    on rows it learnt would flatter it and keep every retrained model out.
    """
    rows = load_evaluation_rows(challenger)
    if champion is None:
        return rows
    seen = load_training_ids(champion)
    return rows[~rows["listing_id"].isin(seen)].reset_index(drop=True)


def run_gate(
    client: MlflowClient,
    settings: Settings,
    rows: pd.DataFrame | None = None,
    force: bool = False,
    promote: bool = True,
) -> GateDecision:
    """Evaluate challenger and champion on the same rows, decide, record, and promote if it passes.

    With ``promote=False`` a challenger that passes is recorded as awaiting review and the champion
    stays: a reviewed `pigeonhole promote` moves it later (how prod is promoted).
    """
    champion_version = version_by_alias(client, settings, CHAMPION)
    waiting = version_by_alias(client, settings, CHALLENGER)
    if champion_version is not None and (waiting is None or waiting.version == champion_version.version):
        # a promotion moves the challenger alias off its version: promoting twice finds none
        return GateDecision(
            False,
            str(champion_version.version),
            str(champion_version.version),
            [f"no challenger waiting: the last one, v{champion_version.version}, is already the champion"],
        )
    challenger_version = require_alias(client, settings, CHALLENGER)
    rows = evaluation_rows(challenger_version, champion_version) if rows is None else rows
    challenger_model = load_predictor(challenger_version)
    champion_model = load_predictor(champion_version) if champion_version else None
    challenger_eval = evaluate(challenger_model, rows, k=settings.top_k)
    champion_eval = evaluate(champion_model, rows, k=settings.top_k) if champion_model else None
    passed, reasons = judge(settings, challenger_eval, champion_eval)
    benchmark = load_benchmark(client, settings)
    if champion_model is not None and benchmark is not None:
        checks = judge_benchmark(
            settings,
            evaluate(challenger_model, benchmark, k=settings.top_k),
            evaluate(champion_model, benchmark, k=settings.top_k),
        )
        passed = passed and all(ok for ok, _ in checks)
        reasons += spelt(checks)
    if force and not passed:
        passed, reasons = True, [*reasons, "FORCED by operator despite failed checks"]
    promoted = passed and promote
    if passed and not promoted:
        reasons = [*reasons, "AWAITING REVIEW: `pigeonhole promote` moves the champion alias"]
    decision = GateDecision(
        passed=passed,
        promoted=promoted,
        challenger=str(challenger_version.version),
        champion=str(champion_version.version) if champion_version else None,
        reasons=reasons,
        challenger_metrics=challenger_eval.metrics,
        champion_metrics=champion_eval.metrics if champion_eval else {},
    )
    _record(client, settings, decision)
    if promoted:
        set_champion(client, settings, decision.challenger)
    return decision


def _record(client: MlflowClient, settings: Settings, decision: GateDecision) -> None:
    tags = {
        "gate.decision": decision.label,
        "gate.reasons": json.dumps(decision.reasons)[:4900],
        COMPARED_WITH_TAG: decision.champion or "none (first model, absolute floors)",
        **{f"gate.challenger.{k}": _tag_value(k, v) for k, v in decision.challenger_metrics.items()},
        **{f"gate.champion.{k}": _tag_value(k, v) for k, v in decision.champion_metrics.items()},
    }
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, decision.challenger, key, value)
    version = client.get_model_version(settings.model_name, decision.challenger)
    verdict = f"Gate: {decision.label}: {'; '.join(decision.reasons)}."
    learnt = (version.description or "").split("\n\nGate: ")[0]  # a re-run replaces the last verdict
    client.update_model_version(settings.model_name, decision.challenger, f"{learnt}\n\n{verdict}".strip())


def _tag_value(metric: str, value: float) -> str:
    """Counts of rows as integers, rates to four decimals."""
    return str(round(value)) if metric.endswith("_rows") else f"{value:.4f}"
