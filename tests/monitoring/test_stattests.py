"""The word-usage test: calm text stays near chance whatever its size; a new market's words do not."""

from __future__ import annotations

import pandas as pd
import pytest

from pigeonhole.core.settings import Settings
from pigeonhole.model.synthetic import generate
from pigeonhole.monitoring.calibration import union_z
from pigeonhole.monitoring.stattests import token_shift_score

Z = union_z(Settings().drift_false_alarm_rate)


def _titles(rows: int, seed: int, drift: float = 0.0) -> pd.Series:
    return generate(rows, seed=seed, drift=drift)["title"]


@pytest.mark.parametrize("window_rows", [200, 1500])
def test_calm_windows_stay_below_the_threshold(window_rows: int) -> None:
    reference = _titles(2000, seed=1)
    scores = [token_shift_score(reference, _titles(window_rows, seed=10 + i)) for i in range(20)]
    assert max(scores) < Z, f"calm windows scored {sorted(scores)} against threshold {Z:.2f}"


def test_a_fifth_of_a_window_from_a_new_market_is_caught() -> None:
    reference = _titles(2000, seed=1)
    window = pd.concat([_titles(1200, seed=2), _titles(300, seed=3, drift=1.0)], ignore_index=True)
    assert token_shift_score(reference, window) > Z


def test_the_score_is_the_same_for_the_same_data_and_zero_without_words() -> None:
    reference, window = _titles(500, seed=1), _titles(500, seed=2, drift=1.0)
    assert token_shift_score(reference, window) == token_shift_score(reference, window)
    assert token_shift_score(pd.Series(["", "!"]), pd.Series(["?", None])) == 0.0
