"""Validation of raw frames, the fitted feature transform, label encoding and the split.

The fitted transform is a small JSON document (medians, most-frequent values, category
levels, class labels), not a pickle: it is readable in review, loads in any image whatever
its scikit-learn version, and cannot execute code when loaded.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from steplib.contract import CATEGORICAL, NUMERIC, REGRESSION, Schema
from steplib.errors import DataError

LOG = logging.getLogger("pipeline_steps.transform")

TRANSFORM_FORMAT_VERSION = 1


def validate_frame(
    df: pd.DataFrame,
    schema: Schema,
    problem_type: str,
    source: str,
    check_target: bool = True,
    check_classes: bool = True,
) -> pd.DataFrame:
    """Check a raw frame against the schema and return it without rows that lack a target.

    Checks: record ids present and unique, event times present, no feature entirely
    missing, and (when ``check_target``) a target present on at least two rows.

    Args:
        df: Raw rows as read by :func:`steplib.rawio.read_raw`.
        schema: The declared schema.
        problem_type: One of the three problem types.
        source: File or directory name for messages.
        check_target: False for frames without a target (e.g. scoring data).
        check_classes: False to accept data in which a declared class has no rows
            (evaluation or scoring data); a class the schema does not declare is always
            an error.

    Raises:
        DataError: on the first problem found, naming the column.
    """
    if df.empty:
        raise DataError(source, None, "no data rows")
    rid = df[schema.record_id_column]
    if rid.isna().any():
        row = int(np.flatnonzero(rid.isna().to_numpy())[0])
        raise DataError(
            source, schema.record_id_column, f"record id is missing on data row {row + 1}"
        )
    dup = rid.duplicated(keep=False)
    if dup.any():
        examples = ", ".join(map(repr, pd.unique(rid[dup])[:5]))
        raise DataError(
            source,
            schema.record_id_column,
            f"{int(rid[dup].nunique())} record ids are duplicated (e.g. {examples})",
        )
    if df[schema.event_time_column].isna().any():
        row = int(np.flatnonzero(df[schema.event_time_column].isna().to_numpy())[0])
        raise DataError(
            source, schema.event_time_column, f"event time is missing on data row {row + 1}"
        )
    for name in schema.feature_names:
        if df[name].isna().all():
            raise DataError(
                source,
                name,
                "feature has no values (every row is missing); drop it from the schema or fix the export",
            )
    if not check_target:
        return df
    target = df[schema.target_name]
    missing = target.isna()
    if missing.all():
        raise DataError(source, schema.target_name, "target has no values")
    if missing.any():
        LOG.warning(
            "%s: dropping %d rows with a missing target '%s'",
            source,
            int(missing.sum()),
            schema.target_name,
        )
        df = df.loc[~missing.to_numpy()].reset_index(drop=True)
    if problem_type != REGRESSION:
        values = df[schema.target_name].astype(str)
        unknown = ~values.isin(schema.classes).to_numpy()
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise DataError(
                source,
                schema.target_name,
                f"data row {row + 1} has class {values.iloc[row]!r}, which the schema does not "
                f"declare (target.classes: {list(schema.classes)}); add it there or fix the data",
            )
        absent = [c for c in schema.classes if c not in set(values)]
        if check_classes and absent:
            raise DataError(
                source,
                schema.target_name,
                f"the schema's classes {absent} have no rows; every declared class needs "
                "training data (remove it from target.classes if it cannot occur)",
            )
    return df


def fit_transform_spec(train: pd.DataFrame, schema: Schema, problem_type: str) -> dict:
    """Fit the feature transform on the training rows only.

    Numeric features: missing values become the training median. Categorical features:
    missing values become the most frequent training level, then one-hot over the training
    levels (a level never seen in training encodes as all zeros). Classification labels are
    the schema's classes in their declared order, encoded 0..k-1; for binary problems the
    second one is the positive class.
    """
    numeric: dict[str, dict] = {}
    for name in schema.numeric_features:
        values = train[name].to_numpy(dtype=np.float64)
        numeric[name] = {"impute": float(np.nanmedian(values))}
    categorical: dict[str, dict] = {}
    for name in schema.categorical_features:
        counts = train[name].dropna().astype(str).value_counts()
        # Ties broken by level name so the fit is deterministic.
        mode = sorted(counts[counts == counts.max()].index)[0]
        categorical[name] = {"impute": mode, "levels": sorted(counts.index)}
    output_columns: list[str] = []
    for feat in schema.features:
        if feat.type == NUMERIC:
            output_columns.append(feat.name)
        else:
            output_columns.extend(f"{feat.name}={lvl}" for lvl in categorical[feat.name]["levels"])
    labels = list(schema.classes) if problem_type != REGRESSION else None
    return {
        "formatVersion": TRANSFORM_FORMAT_VERSION,
        "problemType": problem_type,
        "schema": schema.to_json(),
        NUMERIC: numeric,
        CATEGORICAL: categorical,
        "outputColumns": output_columns,
        "labels": labels,
    }


def apply_transform(spec: dict, frame: pd.DataFrame) -> np.ndarray:
    """Turn raw feature columns into the model's float64 matrix, exactly as fitted.

    ``frame`` needs the feature columns only (numeric ones as floats, categorical ones as
    strings or None); other columns are ignored.
    """
    features = spec["schema"]["features"]
    n = len(frame)
    blocks: list[np.ndarray] = []
    for feat in features:
        name = feat["name"]
        if feat["type"] == NUMERIC:
            col = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            col = np.where(np.isnan(col), spec[NUMERIC][name]["impute"], col)
            blocks.append(col.reshape(n, 1))
        else:
            cat = spec[CATEGORICAL][name]
            values = (
                frame[name].astype(object).where(frame[name].notna(), cat["impute"]).astype(str)
            )
            codes = pd.Categorical(values, categories=cat["levels"]).codes
            onehot = np.zeros((n, len(cat["levels"])), dtype=np.float64)
            known = codes >= 0
            onehot[np.flatnonzero(known), codes[known]] = 1.0
            if not known.all():
                LOG.warning(
                    "feature '%s': %d values never seen in training encode as all zeros",
                    name,
                    int((~known).sum()),
                )
            blocks.append(onehot)
    return np.hstack(blocks) if blocks else np.zeros((n, 0))


def encode_labels(spec: dict, target: pd.Series, source: str) -> np.ndarray:
    """Map target values to what the algorithm trains on: class index, or the float value.

    Raises:
        DataError: when a classification target holds a class not seen in training.
    """
    name = spec["schema"]["target"]["name"]
    labels = spec.get("labels")
    if labels is None:
        return target.to_numpy(dtype=np.float64)
    values = target.astype(str)
    codes = pd.Categorical(values, categories=labels).codes
    if (codes < 0).any():
        unseen = sorted(set(values[codes < 0]))
        raise DataError(
            source,
            name,
            f"class {unseen[0]!r} is not one of the model's classes {labels} "
            f"({len(unseen)} unknown values)",
        )
    return codes.astype(np.float64)


def _stratum_sizes(
    n: int, validation_fraction: float, test_fraction: float, every_part: bool
) -> tuple[int, int]:
    """(test rows, validation rows) of a stratum of ``n`` rows; train gets the rest.

    Shares are rounded. With ``every_part`` (a class, ``n >= 3``) each part gets at least
    one row: rounding alone gives a class of 3 rows no test row at 0.15 (round(0.45) == 0),
    and a test split without a class leaves metrics such as AUC undefined.
    """
    n_test = round(test_fraction * n)
    n_val = round(validation_fraction * n)
    if not every_part:
        return n_test, n_val
    n_test, n_val = max(1, n_test), max(1, n_val)
    # Large fractions can leave train nothing: take rows back from the larger holdout.
    while n_test + n_val > n - 1:
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    return n_test, n_val


def split_indices(
    y: np.ndarray,
    problem_type: str,
    seed: int,
    validation_fraction: float,
    test_fraction: float,
    source: str = "<data>",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded train/validation/test row indices, stratified on the class for classification.

    Each stratum (each class, or all rows for regression) is shuffled with the seeded
    generator and cut into test, validation and train shares (rounded per stratum). Every
    class gets at least one row in each split, so that a rare class still counts in
    validation and test metrics. The same data, fractions and seed always give the same
    split.

    Raises:
        DataError: when the fractions are out of range or a class is too rare to stratify.
    """
    if not (
        0 < validation_fraction < 1
        and 0 < test_fraction < 1
        and validation_fraction + test_fraction < 1
    ):
        raise DataError(
            source,
            None,
            f"fractions must be in (0, 1) and sum below 1; got validation={validation_fraction}, test={test_fraction}",
        )
    n = len(y)
    if problem_type == REGRESSION:
        strata = [np.arange(n)]
    else:
        codes, classes = pd.factorize(pd.Series(y), sort=True)
        counts = np.bincount(codes, minlength=len(classes))
        if counts.min() < 3:
            raise DataError(
                source,
                None,
                f"class {classes[counts.argmin()]!r} has {counts.min()} rows; a stratified split needs at least 3",
            )
        order = np.argsort(codes, kind="stable")
        strata = np.split(order, np.cumsum(counts)[:-1])
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for idx in strata:
        perm = rng.permutation(idx)
        n_test, n_val = _stratum_sizes(
            len(perm), validation_fraction, test_fraction, every_part=problem_type != REGRESSION
        )
        test.append(perm[:n_test])
        val.append(perm[n_test : n_test + n_val])
        train.append(perm[n_test + n_val :])
    parts = tuple(np.sort(np.concatenate(p)) for p in (train, val, test))
    if any(len(p) == 0 for p in parts):
        raise DataError(
            source,
            None,
            f"{n} rows are too few for a train/validation/test split with these fractions",
        )
    return parts
