"""Evidently stat tests the project adds; importing this module registers them by name.

``token_shift`` (text columns): how far the words listings use have moved, in standard deviations of
chance. Evidently's text drift trains a domain classifier and reports its ROC AUC, which barely moves
when a tenth of a window comes from a new market (0.51-0.53 against 0.50 on craigslist, with calm
windows up to 0.53). Listings from a new market bring words the reference hardly has (place names,
currencies, "<phone>" in every other title), so this test compares word usage directly:

- each side's distribution of words over listings (each word counted once per listing), compared by
  Jensen-Shannon distance;
- the same distance between random re-splits of the pooled listings into two sides of the same sizes
  (a permutation test), whose mean and spread say what chance alone gives for these sizes and words;
- the score is the observed distance's z-score against those re-splits, so a threshold of 3 means
  "three standard deviations beyond chance" for any model, vocabulary and window size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
from evidently.legacy.core import ColumnType
from scipy.spatial.distance import jensenshannon
from sklearn.feature_extraction.text import CountVectorizer

TOKEN_SHIFT = "token_shift"
PERMUTATIONS = 200
CHUNK = 25
WORDS = r"<\w+>|\b\w\w+\b"  # placeholders left by masking ("<phone>") count as words


def token_shift_score(reference: pd.Series, current: pd.Series, seed: int = 0) -> float:
    """The z-score of the two sides' word-distribution distance against random re-splits."""
    texts = pd.concat([reference, current], ignore_index=True).fillna("").astype(str)
    try:
        presence = CountVectorizer(binary=True, token_pattern=WORDS, dtype=np.float64).fit_transform(texts)
    except ValueError:  # not one word on either side: nothing to compare
        return 0.0
    total = np.asarray(presence.sum(axis=0)).ravel()

    def distances(firsts: np.ndarray) -> np.ndarray:
        """Distance for each row of ``firsts``, a mask of the listings on the first side."""
        counts = np.asarray((presence.T @ firsts.T.astype(np.float64)).T)
        return np.asarray(jensenshannon(counts, total - counts, axis=1, base=2))

    sides = np.arange(len(texts)) < len(reference)
    rng = np.random.default_rng(seed)
    resplits = np.array([rng.permutation(sides) for _ in range(PERMUTATIONS)])
    # in chunks: a chunk holds its re-splits' word counts, densely
    chance = np.concatenate([distances(chunk) for chunk in np.array_split(resplits, PERMUTATIONS // CHUNK)])
    spread = chance.std()
    return 0.0 if spread == 0 else float((distances(sides[None, :])[0] - chance.mean()) / spread)


def _token_shift(
    reference: pd.Series, current: pd.Series, feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    score = token_shift_score(reference, current)
    return score, score >= threshold


token_shift_stat_test = StatTest(
    name=TOKEN_SHIFT,
    display_name="word usage shift (z-score of Jensen-Shannon distance vs re-splits)",
    allowed_feature_types=[ColumnType.Text],
    default_threshold=3.0,
)
register_stattest(token_shift_stat_test, _token_shift)
