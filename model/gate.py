"""The promotion gate's rules: pure functions of the challenger's and the champion's evaluations.

Kept apart from the registry (model/promote.py runs them) so each rule can be pinned at its
boundary on small in-memory evaluations; `make mutation` holds these tests to killing at least nine
mutants in ten. Every rule's outcome is spelt out as a PASS or FAIL line the registry keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scipy.stats import binomtest

from pigeonhole.core.settings import Settings
from pigeonhole.model.evaluate import Evaluation


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
    return all(ok for ok, _ in checks), spelt(checks)


def spelt(checks: list[tuple[bool, str]]) -> list[str]:
    """Each rule's outcome as the line the registry and the CLI show."""
    return [("PASS " if ok else "FAIL ") + text for ok, text in checks]


def judge_benchmark(
    settings: Settings, challenger: Evaluation, champion: Evaluation
) -> list[tuple[bool, str]]:
    """The frozen-benchmark rules: no regression overall beyond the tolerance, none on any category."""
    tolerance = settings.gate_benchmark_tolerance
    checks = [
        (
            challenger.metrics[metric] >= champion.metrics[metric] - tolerance,
            f"benchmark {label} {challenger.metrics[metric]:.4f} vs champion {champion.metrics[metric]:.4f} "
            f"(may fall by {tolerance:.4f})",
        )
        for metric, label in (("accuracy", "accuracy"), ("macro_f1", "macro-F1"))
    ]
    return [*checks, _class_recall_drops(settings, challenger, champion)]


def recall_upper_bound(hits: int, rows: int) -> float:
    """The top of the 95 % Wilson interval for a recall of ``hits`` out of ``rows``."""
    return float(binomtest(hits, rows).proportion_ci(confidence_level=0.95, method="wilson").high)


def _class_recall_drops(settings: Settings, challenger: Evaluation, champion: Evaluation) -> tuple[bool, str]:
    allowed = settings.gate_max_class_recall_drop
    old = champion.class_hits()
    dropped = []
    for name, (hits, rows) in challenger.class_hits().items():
        old_recall = old[name][0] / rows
        if recall_upper_bound(hits, rows) < old_recall - allowed:
            dropped.append(f"'{name}' recall {old[name][0]}/{rows} -> {hits}/{rows}")
    if dropped:
        return False, f"benchmark categories regressed beyond {allowed:.2f} recall: " + "; ".join(dropped)
    return True, f"no benchmark category's recall fell by more than {allowed:.2f} (95% interval)"


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
