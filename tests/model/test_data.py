"""The data contract: broken datasets are refused with the rows and columns at fault."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pigeonhole.core.settings import RareClassPolicy, SplitKind
from pigeonhole.model import data
from pigeonhole.model.synthetic import CATALOGUE, generate


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(data.DataValidationError) as caught:
        data.load_listings(path)
    return str(caught.value)


def test_valid_file_loads_with_types_fixed(listings_csv: Path) -> None:
    frame = data.load_listings(listings_csv)
    assert frame["price"].dtype == float
    assert frame["description"].map(lambda d: isinstance(d, str)).all()


def test_control_characters_in_a_file_become_spaces_not_a_refusal(
    tmp_path: Path, listings: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    scraped = listings.head(50).copy()
    scraped.loc[3, "title"] = "Senora Latina ni\x88\x9aera"  # mojibake as a real catalogue has it
    scraped.loc[4, "description"] = "boxed\x95 unused"
    frame = data.load_listings(_write(scraped, tmp_path / "x.csv"))
    assert frame.loc[3, "title"] == "Senora Latina ni  era" and frame.loc[4, "description"] == "boxed  unused"
    assert "replaced control characters with spaces in 1 title value(s)" in caplog.text


def test_missing_column_is_named(tmp_path: Path, listings: pd.DataFrame) -> None:
    message = _refusal(_write(listings.drop(columns=["category_path"]).head(50), tmp_path / "x.csv"))
    assert "missing required column(s): 'category_path'" in message


def test_every_problem_is_named_once_in_words_in_one_pass(tmp_path: Path, listings: pd.DataFrame) -> None:
    """Five different problems in one file: each listed once with its rows, none hidden behind
    another (a negative price beside a non-numeric one), no exception text, the count as listed."""
    broken = listings.head(50).astype({"price": object}).reset_index(drop=True)
    broken.loc[1, "title"] = ""
    broken.loc[2, "price"] = -5
    broken.loc[3, "price"] = "abc"
    broken.loc[4, "listing_id"] = broken.loc[0, "listing_id"]
    broken.loc[5, "category_path"] = ""
    message = _refusal(_write(broken, tmp_path / "x.csv"))
    lines = message.splitlines()
    assert lines[0].endswith("5 problem(s) found in 6 row(s); rows are numbered from 1, header excluded")
    assert len(lines) == 6 and "Error" not in message, message
    assert any("'price': price must be a number; rows [4]; values 'abc'" in line for line in lines)
    assert any("'price': price must be a number >= 0; rows [3]" in line for line in lines)
    unique = "'listing_id': must be unique, but these rows share a value; rows [1, 5]"
    assert any(unique in line for line in lines)
    no_columns = _refusal(_write(pd.DataFrame({"a": [1], "b": [2]}), tmp_path / "y.csv"))
    assert "missing required column(s): 'category_path', 'listing_id', 'price', 'title'" in no_columns


def test_empty_titles_are_reported_with_their_rows(tmp_path: Path, listings: pd.DataFrame) -> None:
    broken = listings.head(50).copy()
    broken.loc[[3, 17], "title"] = ["", "   "]
    message = _refusal(_write(broken, tmp_path / "x.csv"))
    assert "column 'title'" in message and "[4, 18]" in message


def test_text_in_price_is_reported_with_the_value(tmp_path: Path, listings: pd.DataFrame) -> None:
    broken = listings.head(50).astype({"price": object})
    broken.loc[5, "price"] = "ten pounds"
    message = _refusal(_write(broken, tmp_path / "x.csv"))
    assert "column 'price'" in message and "ten pounds" in message and "[6]" in message


def test_negative_and_infinite_prices_are_refused(tmp_path: Path, listings: pd.DataFrame) -> None:
    broken = listings.head(50).copy()
    broken.loc[[1, 2], "price"] = [-5.0, np.inf]
    message = _refusal(_write(broken, tmp_path / "x.csv"))
    assert "price must be a number >= 0" in message and "price must be finite" in message


def test_duplicate_ids_are_refused(tmp_path: Path, listings: pd.DataFrame) -> None:
    broken = listings.head(50).copy()
    broken.loc[9, "listing_id"] = broken.loc[8, "listing_id"]
    assert "column 'listing_id'" in _refusal(_write(broken, tmp_path / "x.csv"))


def test_non_string_titles_in_parquet_are_refused(tmp_path: Path, listings: pd.DataFrame) -> None:
    path = tmp_path / "x.parquet"
    listings.head(20).assign(title=range(20)).to_parquet(path)
    assert "title must be text" in _refusal(path)


def test_unreadable_and_unknown_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "x.parquet"
    garbage.write_bytes(b"\x00\x01 not parquet")
    assert "cannot be read" in _refusal(garbage)
    assert "no such file" in _refusal(tmp_path / "missing.csv")
    assert "unsupported file type" in _refusal(_write(pd.DataFrame({"a": [1]}), tmp_path / "x.json"))


def test_label_depth_cuts_the_path() -> None:
    paths = pd.Series(["A > B > C", "A > B", "X"])
    assert data.label_from_path(paths, 2).tolist() == ["A > B", "A > B", "X"]
    assert data.label_from_path(paths, 1).tolist() == ["A", "A", "X"]


def _frame(counts: dict[str, int]) -> pd.DataFrame:
    labels = [name for name, n in counts.items() for _ in range(n)]
    return pd.DataFrame(
        {
            "listing_id": [str(i) for i in range(len(labels))],
            "title": labels,
            "description": "",
            "price": 1.0,
            "category_path": labels,
        }
    )


def test_rare_classes_are_merged_into_the_bucket_or_dropped_or_refused() -> None:
    frame = _frame({"A": 20, "B": 20, "C": 3, "D": 4})
    merged, report = data.assign_labels(frame, 1, 5, RareClassPolicy.merge, "Other")
    assert set(merged["label"]) == {"A", "B", "Other"} and report.merged == {"D": 4, "C": 3}
    dropped, report = data.assign_labels(frame, 1, 5, RareClassPolicy.drop, "Other")
    assert set(dropped["label"]) == {"A", "B"} and sum(report.dropped.values()) == 7
    with pytest.raises(data.DataValidationError, match="2 categories have fewer than 5 rows"):
        data.assign_labels(frame, 1, 5, RareClassPolicy.error, "Other")


def test_a_single_class_cannot_be_trained() -> None:
    with pytest.raises(data.DataValidationError, match="at least 2 categories"):
        data.assign_labels(_frame({"A": 50, "B": 2}), 1, 5, RareClassPolicy.drop, "Other")


@pytest.mark.parametrize("exact_rows", [50_000, 0], ids=["stratified group folds", "linear, past 50k rows"])
def test_the_grouped_split_keeps_near_duplicate_titles_on_one_side(
    listings: pd.DataFrame, exact_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "EXACT_GROUPED_SPLIT_ROWS", exact_rows)
    labelled, _ = data.assign_labels(listings, 2, 5, RareClassPolicy.merge, "Other")
    train, held_out = data.split(labelled, 0.2, seed=1, kind=SplitKind.grouped)
    train_titles = set(train["title"].map(data.normalise_title))
    assert not train_titles & set(held_out["title"].map(data.normalise_title))
    assert 0.1 < len(held_out) / len(labelled) < 0.3
    assert data.normalise_title("iPhone 13, LIKE NEW!") == data.normalise_title("iphone 13 like new")


def test_the_random_split_holds_out_rows_as_traffic_arrives(listings: pd.DataFrame) -> None:
    labelled, _ = data.assign_labels(listings, 2, 5, RareClassPolicy.merge, "Other")
    train, held_out = data.split(labelled, 0.2, seed=1, kind=SplitKind.random)
    assert len(held_out) == round(0.2 * len(labelled))
    assert not set(train["listing_id"]) & set(held_out["listing_id"])
    assert set(held_out["label"]) == set(labelled["label"]), "every category is held out in proportion"
    titles = set(train["title"].map(data.normalise_title))
    assert held_out["title"].map(data.normalise_title).isin(titles).any(), "re-listed titles, as in traffic"


def test_generator_is_seeded_and_realistic() -> None:
    first, again = generate(500, seed=3), generate(500, seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert first["category_path"].nunique() >= 20
    assert len(CATALOGUE) >= 20 and {c.path.split(" > ")[0] for c in CATALOGUE} >= {"Electronics", "Vehicles"}
    data.validate(first)  # the generator honours the contract


def test_drift_knob_moves_mix_items_prices_and_phrasing() -> None:
    calm, drifted = generate(4000, seed=1), generate(4000, seed=1, drift=1.0)
    phones = "Electronics > Mobile phones"
    assert (drifted["category_path"] == phones).mean() > 1.3 * (calm["category_path"] == phones).mean()
    assert drifted["price"].median() > 1.3 * calm["price"].median()
    new_models = {item for c in CATALOGUE for item in c.new_items}

    def share_new(frame: pd.DataFrame) -> float:
        return frame["title"].map(lambda t: any(m.lower() in t.lower() for m in new_models)).mean()

    assert share_new(calm) == 0 and share_new(drifted) > 0.3
    assert drifted["title"].str.contains("WTS|quick sale|offers\\?|no lowballers|bargain").mean() > 0.2


def test_extra_columns_keep_their_type_and_na_titles_stay_text(
    tmp_path: Path, listings: pd.DataFrame
) -> None:
    frame = listings.head(4).assign(year=[2011, None, 2016, 2017], city=["london", "", "paris", "NA"])
    frame.loc[0, "title"] = "NA"
    loaded = data.load_listings(_write(frame, tmp_path / "x.csv"))
    assert loaded["year"].dtype == float and loaded["year"].isna().sum() == 1
    assert loaded.loc[0, "title"] == "NA" and loaded.loc[3, "city"] == "NA"


def test_a_few_broken_rows_are_dropped_with_their_reasons_a_broken_file_is_not(
    tmp_path: Path, listings: pd.DataFrame
) -> None:
    catalogue = listings.head(400).astype({"price": object})
    catalogue.loc[[7, 90], "title"] = ["", "   "]
    catalogue.loc[200, "price"] = "-5"
    path = _write(catalogue, tmp_path / "x.csv")
    valid, invalid = data.load_usable_listings(path, max_invalid_share=0.01)
    assert len(valid) == 397 and invalid.index.tolist() == [7, 90, 200]
    assert invalid.loc[7, "reason"].startswith("title:") and invalid.loc[200, "reason"].startswith("price:")
    with pytest.raises(data.DataValidationError, match=r"3 of 400 rows \(0.8%\) are invalid"):
        data.load_usable_listings(path, max_invalid_share=0.005)
    no_titles = _write(catalogue.drop(columns=["title"]), tmp_path / "y.csv")
    with pytest.raises(data.DataValidationError, match=r"missing required column\(s\): 'title'"):
        data.load_usable_listings(no_titles, max_invalid_share=0.5)


def test_the_random_split_keeps_a_one_listing_category_for_training() -> None:
    frame = _frame({"A": 40, "B": 40, "C": 2, "D": 1}).assign(label=lambda f: f["category_path"])
    train, held_out = data.split(frame, 0.2, seed=0, kind=SplitKind.random)
    assert "D" in set(train["label"]) and "D" not in set(held_out["label"])
    assert len(held_out) == round(0.2 * len(frame)) and set(train["label"]) == {"A", "B", "C", "D"}


def test_the_rare_policy_applies_only_to_the_rows_it_is_given() -> None:
    frame = _frame({"A": 20, "B": 20, "C": 1, "D": 1}).assign(label=lambda f: f["category_path"])
    kept, report = data.apply_rare_policy(frame, 1, 1, RareClassPolicy.merge, "Other")
    assert set(kept["label"]) == {"A", "B", "C", "D"} and not report.merged, "1 keeps every category"
    merged, _ = data.apply_rare_policy(frame, 1, 2, RareClassPolicy.merge, "Other")
    assert set(merged["label"]) == {"A", "B", "Other"} and set(frame["label"]) == {"A", "B", "C", "D"}
