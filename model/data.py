"""The data contract: load listings, validate them before anything trains, derive labels, split.

Every dataset (the shared real ones, the synthetic generator's, logged traffic) has the columns
``listing_id, title, description, price, category_path`` (levels joined by `` > ``), plus any extra
columns, which are kept as they are. Validation is declarative (pandera) and lazy, so one run
reports every row and column at fault instead of stopping at the first.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from pigeonhole.core.errors import DataValidationError
from pigeonhole.core.settings import RareClassPolicy, SplitKind
from pigeonhole.core.text import clean, invisible, unusable

log = logging.getLogger(__name__)

TEXT_COLUMNS = ["listing_id", "title", "description", "category_path"]
CONTRACT_COLUMNS = ["listing_id", "title", "description", "price", "category_path"]
FEATURE_COLUMNS = ["title", "description", "price"]
PATH_SEPARATOR = " > "
# listings labelled by sellers' feedback: retraining adds them, benchmarks never hold them
FEEDBACK_ID_PREFIX = "feedback-"
MAX_ROWS_PER_PROBLEM = 10
STORABLE_ERROR = "text must not contain NUL or other control characters, or unpaired surrogates"


def _is_string(value: object) -> bool:
    return isinstance(value, str)


def _visible(value: object) -> bool:
    """Not empty, not only spaces or zero-width characters (the API's rule for a title)."""
    return not isinstance(value, str) or not invisible(value)


def _storable(value: object) -> bool:
    """No NUL, other control character or unpaired surrogate (the API's rule for any text)."""
    return not isinstance(value, str) or unusable(value) is None


LISTING_SCHEMA = pa.DataFrameSchema(
    {
        "listing_id": pa.Column(object, nullable=False, unique=True, coerce=False),
        "title": pa.Column(
            object,
            nullable=False,
            checks=[
                pa.Check(_is_string, element_wise=True, error="title must be text"),
                pa.Check(_visible, element_wise=True, error="title must have visible characters"),
                pa.Check(_storable, element_wise=True, error=STORABLE_ERROR),
            ],
        ),
        "description": pa.Column(
            object,
            nullable=True,
            required=False,
            checks=[
                pa.Check(_is_string, element_wise=True, ignore_na=True, error="description must be text"),
                pa.Check(_storable, element_wise=True, ignore_na=True, error=STORABLE_ERROR),
            ],
        ),
        "price": pa.Column(
            float,
            nullable=True,
            coerce=True,
            checks=[
                pa.Check.ge(0, error="price must be a number >= 0"),
                pa.Check(np.isfinite, ignore_na=True, error="price must be finite"),
            ],
        ),
        "category_path": pa.Column(
            object,
            nullable=False,
            checks=[
                pa.Check(_is_string, element_wise=True, error="category_path must be text"),
                pa.Check(_visible, element_wise=True, error="category_path must not be empty"),
                pa.Check(_storable, element_wise=True, error=STORABLE_ERROR),
            ],
        ),
    },
    strict=False,  # extra columns (city, year, brand, ...) are optional features and drift axes
    name="listings",
)


# contract text stays text ("NA" is a title, an id like 007 keeps its zeros); only empty is missing
CSV_OPTIONS: dict[str, Any] = {
    "dtype": {"listing_id": str, "title": str, "description": str, "category_path": str, "price": object},
    "keep_default_na": False,
    "na_values": {"price": [""], "description": [""]},
}


def csv_separator(path: Path) -> str | None:
    """The separator of a CSV or TSV file (gzipped or not), None for Parquet; refuses anything else."""
    if not path.exists():
        raise DataValidationError(f"{path}: no such file")
    suffixes = "".join(path.suffixes[-2:]).lower()
    if suffixes.endswith((".parquet", ".pq")):
        return None
    if ".csv" in suffixes or ".tsv" in suffixes:
        return "\t" if ".tsv" in suffixes else ","
    raise DataValidationError(f"{path}: unsupported file type; use .csv, .csv.gz, .tsv or .parquet")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) or Parquet file, keeping contract text columns as text."""
    separator = csv_separator(path)
    try:
        if separator is None:
            return pd.read_parquet(path)
        return _typed_extras(pd.read_csv(path, sep=separator, **CSV_OPTIONS))
    except Exception as exc:  # pandas raises many types for a corrupt file; all mean the same here
        raise DataValidationError(f"{path}: cannot be read as a table ({type(exc).__name__}: {exc})") from exc


def _typed_extras(frame: pd.DataFrame) -> pd.DataFrame:
    """Extra columns (year, city, ...) read as text so that a title "NA" stays a title; give the
    wholly numeric ones their numbers back, empty cells as missing."""
    for column in frame.columns.difference(CONTRACT_COLUMNS):
        text = frame[column].replace("", np.nan)
        numbers = pd.to_numeric(text, errors="coerce")
        frame[column] = numbers if numbers.notna().sum() == text.notna().sum() else text
    return frame


def validate(frame: pd.DataFrame, source: str = "dataset") -> pd.DataFrame:
    """Check the contract; return the frame with price as float and description filled with ''.

    Every rule runs on every row in one pass, so a refusal lists every problem at once."""
    if frame.empty:
        raise DataValidationError(f"{source}: has no rows")
    numeric, not_numbers = _numeric_prices(frame)
    try:
        checked = LISTING_SCHEMA.validate(numeric, lazy=True)
    except SchemaErrors as errors:
        failures = pd.concat([not_numbers, errors.failure_cases], ignore_index=True)
        raise DataValidationError(describe_failures(failures, source), failures) from None
    if len(not_numbers):
        raise DataValidationError(describe_failures(not_numbers, source), not_numbers)
    if "description" not in checked.columns:
        checked["description"] = ""
    checked["description"] = checked["description"].fillna("")
    return checked


def _numeric_prices(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prices as numbers, and the cells that are not numbers as failure cases. Checked apart, so that
    the other price rules (at least 0, finite) still run on every other row in the same pass."""
    failures = pd.DataFrame(columns=["column", "check", "failure_case", "index"])
    if "price" not in frame.columns:
        return frame, failures
    price = frame["price"]
    numbers = pd.to_numeric(price, errors="coerce")
    wrong = price.notna() & numbers.isna()
    if wrong.any():
        failures = pd.DataFrame(
            {
                "column": "price",
                "check": "price must be a number",
                "failure_case": price[wrong].to_numpy(),
                "index": price.index[wrong],
            }
        )
    return frame.assign(price=numbers), failures


# pandera's own checks, in words
CHECK_WORDS = {
    "field_uniqueness": "must be unique, but these rows share a value",
    "not_nullable": "must not be empty",
    "column_in_dataframe": "missing required column",
}


def describe_failures(failures: pd.DataFrame, source: str) -> str:
    """Turn failure cases into lines a person can act on, each problem once: column, rule, rows, values."""
    missing = failures[failures["check"] == "column_in_dataframe"]
    lines = []
    if len(missing):
        columns = ", ".join(f"'{c}'" for c in sorted(set(missing["failure_case"].astype(str))))
        lines.append(f"  - missing required column(s): {columns}")
    at_rows = failures[failures["check"] != "column_in_dataframe"]
    for (column, check), group in at_rows.groupby(["column", "check"], dropna=False, sort=False):
        rows = sorted({int(i) + 1 for i in group["index"].dropna()})
        shown = rows[:MAX_ROWS_PER_PROBLEM]
        more = f" (+{len(rows) - len(shown)} more)" if len(rows) > len(shown) else ""
        values = ", ".join(repr(v) for v in pd.unique(group["failure_case"])[:3])
        rule = CHECK_WORDS.get(str(check), check)
        lines.append(f"  - column '{column}': {rule}; rows {shown}{more}; values {values}")
    bad_rows = at_rows["index"].dropna().nunique()
    where = f" in {bad_rows:,} row(s); rows are numbered from 1, header excluded" if bad_rows else ""
    return "\n".join([f"{source}: {len(lines)} problem(s) found{where}", *lines])


def usable_rows(
    frame: pd.DataFrame, source: str, max_invalid_share: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The valid rows, and the invalid ones with a ``reason`` each, when no more than
    ``max_invalid_share`` of the rows are invalid: real catalogues always have a few broken rows,
    and one should not cost the whole file. A file that is mostly broken, or misses a column, is
    still refused with every problem named."""
    try:
        return validate(frame, source), frame.head(0).assign(reason="")
    except DataValidationError as refused:
        failures = refused.failure_cases
        if failures is None or failures["index"].isna().any():
            raise
        share = failures["index"].nunique() / len(frame)
        if share > max_invalid_share:
            raise DataValidationError(
                f"{refused}\n{failures['index'].nunique():,} of {len(frame):,} rows ({share:.1%}) are "
                f"invalid; training drops them only up to {max_invalid_share:.1%} (--max-invalid-share)"
            ) from None
    reasons = (
        failures.assign(reason=failures["column"].astype(str) + ": " + failures["check"].replace(CHECK_WORDS))
        .groupby("index")["reason"]
        .agg("; ".join)
    )
    invalid = frame.loc[reasons.index].assign(reason=reasons.to_numpy())
    valid = validate(frame.drop(index=reasons.index).reset_index(drop=True), source)
    log.warning("%s: dropped %d invalid row(s) of %d", source, len(invalid), len(frame))
    return valid, invalid


def load_usable_listings(path: Path, max_invalid_share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """As :func:`load_listings`, dropping up to ``max_invalid_share`` invalid rows (see usable_rows)."""
    return usable_rows(_cleaned(read_table(path), str(path)), str(path), max_invalid_share)


def load_listings(path: Path) -> pd.DataFrame:
    """Read and validate a listings file; raises DataValidationError naming what is wrong.

    Control characters in its text (mojibake, common in scraped catalogues) become spaces, with a
    count in the log: the API refuses them from a client, but a file should not be refused for them.
    """
    return validate(_cleaned(read_table(path), str(path)), source=str(path))


def _cleaned(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    for column in ("title", "description"):
        if column not in frame:
            continue
        dirty = frame[column].map(lambda value: isinstance(value, str) and unusable(value) is not None)
        if dirty.any():
            log.warning(
                "%s: replaced control characters with spaces in %d %s value(s)", source, dirty.sum(), column
            )
            frame.loc[dirty, column] = frame.loc[dirty, column].map(clean)
    return frame


def label_of(category_path: str, depth: int) -> str:
    """``'A > B > C'`` at depth 2 is ``'A > B'``; shallower paths keep all their levels."""
    levels = [part.strip() for part in category_path.split(">") if part.strip()]
    return PATH_SEPARATOR.join(levels[:depth])


def label_from_path(category_path: pd.Series, depth: int) -> pd.Series:
    """:func:`label_of` for every path of a column."""
    return category_path.map(lambda path: label_of(path, depth))


def with_labels(frame: pd.DataFrame, depth: int) -> pd.DataFrame:
    """``frame`` with a ``label`` column: every category as its seller filed it, at ``depth``."""
    return frame.assign(label=label_from_path(frame["category_path"], depth))


@dataclass
class LabelReport:
    """What labelling did to the dataset, for logs and for MLflow."""

    depth: int
    classes: int = 0
    merged: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{self.classes} classes at depth {self.depth}"]
        if self.merged:
            parts.append(f"{len(self.merged)} rare classes ({sum(self.merged.values())} rows) merged")
        if self.dropped:
            parts.append(f"{len(self.dropped)} classes ({sum(self.dropped.values())} rows) dropped")
        return "; ".join(parts)


def assign_labels(
    frame: pd.DataFrame,
    depth: int,
    min_count: int,
    policy: RareClassPolicy,
    bucket: str,
) -> tuple[pd.DataFrame, LabelReport]:
    """Add a ``label`` column at ``depth`` and apply the rare-class policy; refuse unusable label sets."""
    return apply_rare_policy(with_labels(frame, depth), depth, min_count, policy, bucket)


def apply_rare_policy(
    labelled: pd.DataFrame,
    depth: int,
    min_count: int,
    policy: RareClassPolicy,
    bucket: str,
) -> tuple[pd.DataFrame, LabelReport]:
    """Apply the rare-class policy to labelled rows (training rows: held-out rows keep their categories
    as filed, so a category the model cannot suggest counts as a miss); refuse unusable label sets."""
    report = LabelReport(depth=depth)
    counts = labelled["label"].value_counts()
    rare = counts[counts < min_count]
    if len(rare) and policy is RareClassPolicy.error:
        listing = ", ".join(f"'{name}' ({n})" for name, n in rare.head(20).items())
        raise DataValidationError(
            f"{len(rare)} categories have fewer than {min_count} rows: {listing}. Add rows, lower "
            "--min-class-count, or choose --rare-classes merge|drop."
        )
    if len(rare) and policy is RareClassPolicy.merge:
        report.merged = {str(k): int(v) for k, v in rare.items()}
        labelled = labelled.assign(label=labelled["label"].where(~labelled["label"].isin(rare.index), bucket))
        counts = labelled["label"].value_counts()
        rare = counts[counts < min_count]  # the bucket itself may still be too small to learn
    if len(rare):
        report.dropped = {str(k): int(v) for k, v in rare.items()}
        labelled = labelled[~labelled["label"].isin(rare.index)]
    report.classes = int(labelled["label"].nunique())
    if report.classes < 2:
        found = ", ".join(repr(c) for c in counts.index[:5]) or "none"
        raise DataValidationError(
            f"need at least 2 categories with {min_count}+ rows each to train; found {found}"
        )
    return labelled.reset_index(drop=True), report


WORD_RUN = re.compile("[a-z0-9]+")


def normalise_title(title: str) -> str:
    """Lower-case, accent-free, punctuation-free: titles equal under this are near-duplicates."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return " ".join(WORD_RUN.findall(folded))  # ASCII letters and digits: what isalnum() keeps of it


def split(
    frame: pd.DataFrame, test_size: float, seed: int, kind: SplitKind
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train/evaluation split, stratified by label.

    ``random`` draws held-out rows the way traffic arrives, re-listed near-duplicates included: what
    sellers see, and what the drift reference must look like. ``grouped`` keeps near-duplicate titles
    on one side (how the model does on titles it has never seen); of its stratified group folds, the
    evaluation side is the one closest to the wanted size: a fold that swallowed one huge group of
    identical titles (craigslist has 2,247 listings titled "map") would measure that one title. Past
    ``EXACT_GROUPED_SPLIT_ROWS`` rows, :func:`_grouped_split` does the same in linear time.
    """
    if kind is SplitKind.random:
        return _random_split(frame, test_size, seed)
    if len(frame) > EXACT_GROUPED_SPLIT_ROWS:
        return _grouped_split(frame, test_size, seed)
    groups = frame["title"].map(normalise_title)
    folds = StratifiedGroupKFold(n_splits=max(2, round(1 / test_size)), shuffle=True, random_state=seed)
    wanted = test_size * len(frame)
    train_idx, eval_idx = min(
        folds.split(frame, frame["label"], groups=groups), key=lambda fold: abs(len(fold[1]) - wanted)
    )
    return frame.iloc[train_idx].reset_index(drop=True), frame.iloc[eval_idx].reset_index(drop=True)


# up to here sklearn's StratifiedGroupKFold (of its folds, the evaluation side closest to the wanted
# size) stratifies best and costs seconds; past it, its loops over groups x folds x categories take
# minutes (68 s at 100,000 rows), and the linear split below takes their place
EXACT_GROUPED_SPLIT_ROWS = 50_000


def _grouped_split(frame: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each group of near-duplicate titles goes whole to one side, stratified by category.

    A group belongs to the category most of its rows have. Within each category its groups come in a
    seeded random order and are held out while the running row count, at the group's middle, is below
    ``test_size`` of the category: the cut closest to the wanted share. A group larger than twice that
    share stays in training, so a held-out category is never one title (craigslist has 2,247 listings
    titled "map"). Linear in rows: sklearn's StratifiedGroupKFold took 68 s at 100,000 rows and grows
    with groups x categories.
    """
    codes = pd.factorize(frame["title"].map(normalise_title))[0]
    pairs = pd.DataFrame({"group": codes, "label": frame["label"].to_numpy()}).value_counts()
    owners = (
        pairs.rename("rows")
        .reset_index()
        .sort_values(["rows", "label"], ascending=[False, True], kind="stable")
        .drop_duplicates("group")
    )
    groups = pd.DataFrame(
        {
            "group": owners["group"].to_numpy(),
            "label": owners["label"].to_numpy(),
            "rows": np.bincount(codes)[owners["group"].to_numpy()],
        }
    )
    groups["order"] = np.random.default_rng(seed).permutation(len(groups))
    groups = groups.sort_values(["label", "order"], kind="stable")
    by_label = groups.groupby("label", sort=False)["rows"]
    middle = by_label.cumsum() - groups["rows"] / 2
    held_out = np.isin(codes, groups.loc[middle < test_size * by_label.transform("sum"), "group"])
    return frame[~held_out].reset_index(drop=True), frame[held_out].reset_index(drop=True)


def _random_split(frame: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified random rows; a category with one listing stays on the training side, where it can
    still be learnt (held out, it could only be missed)."""
    counts = frame["label"].map(frame["label"].value_counts())
    single, several = frame[counts < 2], frame[counts >= 2]
    held_out_rows = round(test_size * len(frame))
    stratify = several["label"] if held_out_rows >= several["label"].nunique() else None
    train, held_out = train_test_split(several, test_size=held_out_rows, random_state=seed, stratify=stratify)
    return pd.concat([train, single]).reset_index(drop=True), held_out.reset_index(drop=True)


def dataset_digest(frame: pd.DataFrame) -> str:
    """A content hash of the contract columns, so a run records exactly which data it saw."""
    hashed = pd.util.hash_pandas_object(frame[CONTRACT_COLUMNS], index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]
