"""The promotion gate: a challenger replaces the champion only if it is measurably better.

Both models are scored on the same evaluation rows (by default the challenger's own held-out split,
logged with its run, which neither model trained on when they share a dataset). The decision and
every reason for it are written onto the challenger's model version as tags, so the registry itself
answers "why is this the champion?".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from pigeonhole.core.settings import Settings
from pigeonhole.model.evaluate import Evaluation, evaluate
from pigeonhole.model.registry import (
    CHALLENGER,
    CHAMPION,
    load_evaluation_rows,
    load_predictor,
    load_training_ids,
    require_alias,
    set_champion,
    version_by_alias,
)


@dataclass
class GateDecision:
    promoted: bool  # the champion alias moved to the challenger
    challenger: str
    champion: str | None
    reasons: list[str] = field(default_factory=list)
    challenger_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    passed: bool = False  # every rule passed (or an operator forced it)

    @property
    def label(self) -> str:
        if self.promoted:
            return "promoted"
        return "passed, awaiting review" if self.passed else "rejected"


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


def judge(settings: Settings, challenger: Evaluation, champion: Evaluation | None) -> tuple[bool, list[str]]:
    """Apply the gate's rules; return (promote?, reasons) with every rule's outcome spelled out."""
    new = challenger.metrics
    if champion is None:
        checks = [
            (
                new["macro_f1"] >= settings.gate_floor_f1,
                f"macro-F1 {new['macro_f1']:.4f} vs floor {settings.gate_floor_f1:.4f}",
            ),
            (
                new["accuracy"] >= settings.gate_floor_accuracy,
                f"accuracy {new['accuracy']:.4f} vs floor {settings.gate_floor_accuracy:.4f}",
            ),
        ]
    else:
        old = champion.metrics
        checks = [
            (
                new["macro_f1"] >= old["macro_f1"] + settings.gate_min_f1_gain,
                f"macro-F1 {new['macro_f1']:.4f} vs champion {old['macro_f1']:.4f} "
                f"(needs +{settings.gate_min_f1_gain:.4f})",
            ),
            (
                new["accuracy"] >= old["accuracy"] + settings.gate_min_accuracy_gain,
                f"accuracy {new['accuracy']:.4f} vs champion {old['accuracy']:.4f} "
                f"(needs +{settings.gate_min_accuracy_gain:.4f})",
            ),
        ]
        checks += _class_regressions(settings, challenger, champion)
    reasons = [("PASS " if ok else "FAIL ") + text for ok, text in checks]
    return all(ok for ok, _ in checks), reasons


def _class_regressions(
    settings: Settings, challenger: Evaluation, champion: Evaluation
) -> list[tuple[bool, str]]:
    old_scores = champion.class_f1()
    regressions = []
    for name, (f1, support) in challenger.class_f1().items():
        if name not in old_scores or support < settings.gate_class_min_support:
            continue
        drop = old_scores[name][0] - f1
        if drop > settings.gate_max_class_f1_drop:
            regressions.append(f"'{name}' F1 {old_scores[name][0]:.3f} -> {f1:.3f}")
    if regressions:
        return [
            (
                False,
                f"classes regressed by more than {settings.gate_max_class_f1_drop:.2f} F1: "
                + "; ".join(regressions),
            )
        ]
    return [(True, f"no class regressed by more than {settings.gate_max_class_f1_drop:.2f} F1")]


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
    challenger_version = require_alias(client, settings, CHALLENGER)
    champion_version = version_by_alias(client, settings, CHAMPION)
    if champion_version is not None and str(champion_version.version) == str(challenger_version.version):
        return GateDecision(
            False,
            str(challenger_version.version),
            str(champion_version.version),
            ["challenger is already the champion"],
        )
    rows = evaluation_rows(challenger_version, champion_version) if rows is None else rows
    challenger_eval = evaluate(load_predictor(challenger_version), rows, k=settings.top_k)
    champion_eval = (
        evaluate(load_predictor(champion_version), rows, k=settings.top_k) if champion_version else None
    )
    passed, reasons = judge(settings, challenger_eval, champion_eval)
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
        "gate.compared_with": decision.champion or "none (first model, absolute floors)",
        **{f"gate.challenger.{k}": f"{v:.4f}" for k, v in decision.challenger_metrics.items()},
        **{f"gate.champion.{k}": f"{v:.4f}" for k, v in decision.champion_metrics.items()},
    }
    for key, value in tags.items():
        client.set_model_version_tag(settings.model_name, decision.challenger, key, value)
