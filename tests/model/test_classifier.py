"""The bounded classifier: liblinear's own answers while a catalogue is small, bounded cost when it grows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax
from sklearn.svm import LinearSVC

from pigeonhole.model import train
from pigeonhole.model.classifier import BoundedOneVsRest, fit_temperature
from pigeonhole.model.data import with_labels
from pigeonhole.model.synthetic import generate_at_scale
from pigeonhole.model.train import build_features


@pytest.fixture(scope="module")
def catalogue() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features and labels of 3,000 training and 500 new listings in 40 categories."""
    labelled = with_labels(generate_at_scale(3500, 40, seed=3), 2)
    features = build_features()
    X = features.fit_transform(labelled.head(3000))
    return (
        X,
        labelled["label"].to_numpy()[:3000],
        features.transform(labelled.tail(500)),
        labelled["label"].to_numpy()[3000:],
    )


def test_a_small_catalogue_gets_liblinears_own_one_vs_rest(catalogue: tuple[np.ndarray, ...]) -> None:
    X, y, new, _ = catalogue
    ours = BoundedOneVsRest().fit(X, y)
    _, counts = np.unique(y, return_counts=True)
    balancing = np.sqrt(len(y) / (len(counts) * counts))
    liblinear = LinearSVC(class_weight=dict(enumerate(balancing)), random_state=0)
    liblinear.fit(X, np.unique(y, return_inverse=True)[1])
    np.testing.assert_allclose(ours.decision_function(new), liblinear.decision_function(new), atol=1e-3)


def test_each_category_sees_at_most_max_negatives_and_keeps_at_most_its_share_of_weights(
    catalogue: tuple[np.ndarray, ...],
) -> None:
    X, y, new, truth = catalogue
    full = BoundedOneVsRest().fit(X, y)
    bounded = BoundedOneVsRest(max_negatives=500, max_weights=40 * 300).fit(X, y)
    per_category = np.diff(bounded.weights_.tocsc().indptr)
    assert per_category.max() <= 300 < np.diff(full.weights_.tocsc().indptr).max()
    assert (bounded.predict(new) == truth).mean() >= (full.predict(new) == truth).mean() - 0.03


def test_scores_are_probabilities_in_the_classifiers_order(catalogue: tuple[np.ndarray, ...]) -> None:
    X, y, new, _ = catalogue
    model = BoundedOneVsRest().fit(X, y)
    model.temperature_ = 0.2
    proba = model.predict_proba(new)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (model.classes_[proba.argmax(axis=1)] == model.predict(new)).all()


def test_the_temperature_that_made_the_labels_is_recovered() -> None:
    rng = np.random.default_rng(0)
    decision = rng.normal(size=(20_000, 12))
    labels = np.array([rng.choice(12, p=p) for p in softmax(decision / 0.5, axis=1)])
    assert fit_temperature(decision, labels) == pytest.approx(0.5, rel=0.05)


def test_the_scale_generator_grows_its_vocabulary_like_a_catalogue() -> None:
    frame = generate_at_scale(8000, 50, seed=1)
    pd.testing.assert_frame_equal(frame, generate_at_scale(8000, 50, seed=1))
    assert frame["category_path"].nunique() == 50 and frame["listing_id"].is_unique

    def words(rows: int) -> int:
        return len(set(" ".join(frame["title"].head(rows)).lower().split()))

    growth = np.log(words(8000) / words(1000)) / np.log(8)  # Heaps' exponent; real catalogues: 0.5-0.6
    assert 0.35 < growth < 0.8


@pytest.mark.parametrize("skip_share", [0.0, 0.5])
def test_a_large_catalogue_fits_once_and_the_model_never_saw_its_calibration_rows(
    skip_share: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the calibration rows are a sliver of the catalogue (``SKIP_REFIT_SHARE``; here forced on
    a small one), the stand-in is the model: one fit instead of two. Elsewhere the model refits on
    every row, so it knows the calibration rows as well as any other."""
    monkeypatch.setattr(train, "SKIP_REFIT_SHARE", skip_share)
    frame = with_labels(generate_at_scale(3_000, 20, seed=2), 2)
    fitted = train.fit(frame, seed=0)
    model = fitted.predictor.pipeline.named_steps["classifier"]
    assert (model is fitted.stand_in.pipeline.named_steps["classifier"]) == (skip_share > 0)
    calibration_rows = frame[fitted.unseen]
    truth = calibration_rows["label"].to_numpy()
    right = (fitted.predictor.suggest(calibration_rows, k=1)["category"].to_numpy() == truth).mean()
    seen = (fitted.stand_in.suggest(calibration_rows, k=1)["category"].to_numpy() == truth).mean()
    assert (right > seen) == (skip_share == 0), (right, seen)
