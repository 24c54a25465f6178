"""The promotion gate's rules at their boundaries, on small in-memory evaluations (no model trained):
exactly at a threshold passes, one step short fails. These are the rules a poisoned or forgetful
challenger must not walk past, so `make mutation` holds them to killing nine mutants in ten."""

from __future__ import annotations

import numpy as np
import pytest

from pigeonhole.core.settings import Settings
from pigeonhole.model.evaluate import Evaluation
from pigeonhole.model.gate import GateDecision, judge, judge_benchmark, recall_upper_bound
from pigeonhole.model.promote import _tag_value

STEP = 1e-9
SETTINGS = Settings(
    gate_floor_f1=0.5,
    gate_floor_accuracy=0.6,
    gate_min_f1_gain=0.01,
    gate_min_accuracy_gain=0.02,
    gate_max_class_f1_drop=0.10,
    gate_class_min_support=20,
    gate_benchmark_tolerance=0.005,
    gate_max_class_recall_drop=0.10,
)


def _evaluation(
    accuracy: float, macro_f1: float, classes: dict[str, tuple[float, int]] | None = None
) -> Evaluation:
    per_class = {
        name: {"f1-score": f1, "support": support} for name, (f1, support) in (classes or {}).items()
    }
    return Evaluation({"accuracy": accuracy, "macro_f1": macro_f1}, per_class, np.array([]), np.array([]))


def _hits(per_class: dict[str, tuple[int, int]]) -> Evaluation:
    """An evaluation whose class ``name`` has ``rows`` rows, ``hits`` of them predicted right."""
    truth, predicted = [], []
    for name, (hits, rows) in per_class.items():
        truth += [name] * rows
        predicted += [name] * hits + ["elsewhere"] * (rows - hits)
    return Evaluation({"accuracy": 0.9, "macro_f1": 0.9}, {}, np.array(truth), np.array(predicted))


@pytest.mark.parametrize(
    ("accuracy", "macro_f1", "promoted", "failed"),
    [
        (0.6, 0.5, True, None),  # exactly at both floors
        (0.6 - STEP, 0.5, False, "accuracy"),
        (0.6, 0.5 - STEP, False, "macro-F1"),
        (0.9, 0.9, True, None),
    ],
)
def test_a_first_model_needs_both_floors(
    accuracy: float, macro_f1: float, promoted: bool, failed: str | None
) -> None:
    passed, reasons = judge(SETTINGS, _evaluation(accuracy, macro_f1), None)
    assert passed is promoted
    assert reasons == [
        f"{'FAIL' if failed == 'macro-F1' else 'PASS'} macro-F1 {macro_f1:.4f} vs floor 0.5000",
        f"{'FAIL' if failed == 'accuracy' else 'PASS'} accuracy {accuracy:.4f} vs floor 0.6000",
    ]


@pytest.mark.parametrize(
    ("f1_gain", "accuracy_gain", "promoted"),
    [
        (0.01, 0.02, True),  # exactly the required gains
        (0.01 - STEP, 0.02, False),
        (0.01, 0.02 - STEP, False),
        (0.05, 0.05, True),
    ],
)
def test_a_challenger_must_beat_the_champion_by_the_margins(
    f1_gain: float, accuracy_gain: float, promoted: bool
) -> None:
    champion = _evaluation(0.8, 0.7)
    challenger = _evaluation(0.8 + accuracy_gain, 0.7 + f1_gain)
    passed, reasons = judge(SETTINGS, challenger, champion)
    assert passed is promoted
    assert reasons[0].startswith("PASS" if f1_gain >= 0.01 else "FAIL") and "(needs +0.0100)" in reasons[0]
    assert (
        reasons[1].startswith("PASS" if accuracy_gain >= 0.02 else "FAIL") and "(needs +0.0200)" in reasons[1]
    )
    assert reasons[2] == "PASS no class regressed by more than 0.10 F1"


@pytest.mark.parametrize(
    ("new_f1", "support", "promoted"),
    [
        (0.50, 20, True),  # fell by exactly the allowed 0.25
        (0.50 - STEP, 20, False),  # one step more, with exactly the minimum support
        (0.50 - STEP, 19, True),  # too few rows to veto
        (0.10, 19, True),
        (0.10, 500, False),
    ],
)
def test_no_category_may_regress_when_it_has_the_rows_to_show_it(
    new_f1: float, support: int, promoted: bool
) -> None:
    settings = SETTINGS.model_copy(update={"gate_max_class_f1_drop": 0.25})  # 0.75 - 0.5 is exact in binary
    champion = _evaluation(0.8, 0.7, {"Phones": (0.75, support), "Chairs": (0.5, 30)})
    # a category the champion never had comes first: it is skipped, and the others still judged
    challenger = _evaluation(0.9, 0.8, {"New": (0.0, 90), "Phones": (new_f1, support), "Chairs": (0.5, 30)})
    passed, reasons = judge(settings, challenger, champion)
    assert passed is promoted, reasons
    if not promoted:
        assert (
            reasons[-1] == f"FAIL classes regressed by more than 0.25 F1: 'Phones' F1 0.750 -> {new_f1:.3f}"
        )


def test_every_regressed_category_is_named() -> None:
    champion = _evaluation(0.8, 0.7, {"Phones": (0.9, 50), "Chairs": (0.8, 50)})
    challenger = _evaluation(0.9, 0.8, {"Phones": (0.5, 50), "Chairs": (0.4, 50)})
    assert judge(SETTINGS, challenger, champion)[1][-1] == (
        "FAIL classes regressed by more than 0.10 F1: 'Phones' F1 0.900 -> 0.500; 'Chairs' F1 0.800 -> 0.400"
    )
    benchmark = judge_benchmark(
        SETTINGS, _hits({"A": (3, 12), "B": (2, 12)}), _hits({"A": (11, 12), "B": (12, 12)})
    )
    assert benchmark[-1] == (
        False,
        "benchmark categories regressed beyond 0.10 recall: "
        "'A' recall 11/12 -> 3/12; 'B' recall 12/12 -> 2/12",
    )


@pytest.mark.parametrize(("fall", "promoted"), [(0.005, True), (0.005 + STEP, False), (0.0, True)])
@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_the_benchmark_may_fall_only_by_its_tolerance(metric: str, fall: float, promoted: bool) -> None:
    champion = _hits({"Phones": (12, 12)})
    challenger = _hits({"Phones": (12, 12)})
    challenger.metrics[metric] = champion.metrics[metric] - fall
    checks = judge_benchmark(SETTINGS, challenger, champion)
    assert [ok for ok, _ in checks] == [
        promoted or metric != "accuracy",
        promoted or metric != "macro_f1",
        True,
    ]
    label = "accuracy" if metric == "accuracy" else "macro-F1"
    text = next(text for _, text in checks if text.startswith(f"benchmark {label} "))
    assert (
        text == f"benchmark {label} {challenger.metrics[metric]:.4f} vs champion 0.9000 (may fall by 0.0050)"
    )


def test_the_wilson_upper_bound_of_a_recall() -> None:
    assert recall_upper_bound(12, 12) == pytest.approx(1.0)
    assert recall_upper_bound(4, 12) == pytest.approx(0.6093, abs=1e-4)
    assert recall_upper_bound(0, 5) == pytest.approx(0.4345, abs=1e-4)


@pytest.mark.parametrize(
    ("after", "promoted"),
    [((11, 12), True), ((4, 12), False), ((12, 12), True), ((0, 3), True)],  # 0/3 from 1/3: too few rows
)
def test_a_benchmark_category_that_collapses_is_caught_one_miss_is_not(
    after: tuple[int, int], promoted: bool
) -> None:
    before = (12, 12) if after[1] == 12 else (1, 3)
    champion = _hits({"Phones": before, "Chairs": (30, 30)})
    challenger = _hits({"Phones": after, "Chairs": (30, 30)})
    ok, text = judge_benchmark(SETTINGS, challenger, champion)[-1]
    assert ok is promoted
    if not promoted:
        assert text == (
            "benchmark categories regressed beyond 0.10 recall: "
            f"'Phones' recall {before[0]}/{before[1]} -> {after[0]}/{after[1]}"
        )
    else:
        assert text == "no benchmark category's recall fell by more than 0.10 (95% interval)"


@pytest.mark.parametrize("nudge", [0.0, -STEP])
def test_the_recall_rule_at_its_boundary(nudge: float) -> None:
    """Allowed drop set to exactly the gap between the old recall and the new one's upper bound."""
    gap = 1.0 - recall_upper_bound(4, 12)
    settings = SETTINGS.model_copy(update={"gate_max_class_recall_drop": gap + nudge})
    ok, _ = judge_benchmark(settings, _hits({"Phones": (4, 12)}), _hits({"Phones": (12, 12)}))[-1]
    assert ok is (nudge == 0.0)


def test_the_gate_decision_reads_as_a_label_and_tags_read_as_numbers() -> None:
    assert GateDecision(promoted=True, challenger="2", champion="1", passed=True).label == "promoted"
    assert (
        GateDecision(promoted=False, challenger="2", champion="1", passed=True).label
        == "passed, awaiting review"
    )
    assert GateDecision(promoted=False, challenger="2", champion="1").label == "rejected"
    assert _tag_value("eval_rows", 644.0) == "644" and _tag_value("accuracy", 0.95123) == "0.9512"
