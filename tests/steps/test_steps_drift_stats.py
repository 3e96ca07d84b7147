"""Drift statistics on real data: quiet on random splits, loud on a 0.5-sd shift."""

from __future__ import annotations

import numpy as np
import pytest
from steplib import drift, rawio
from steplib.schema import load_schema
from steps_helpers import REPO

SEEDS = range(100)


@pytest.fixture(scope="module")
def breast_cancer():
    schema = load_schema(REPO / "data/schemas/breast-cancer.json")
    return schema, rawio.read_raw(REPO / "data/raw/breast-cancer", schema)


def halves(df, seed):
    perm = np.random.default_rng(seed).permutation(len(df))
    return df.iloc[perm[: len(df) // 2]], df.iloc[perm[len(df) // 2 :]].copy()


def test_no_drift_on_random_splits_for_95_of_100_seeds(breast_cancer):
    schema, df = breast_cancer
    flagged = 0
    for seed in SEEDS:
        base, window = halves(df, seed)
        rep = drift.drift_report(
            drift.baseline_statistics(base, schema),
            base,
            window,
            {},
            schema,
            drift.DriftThresholds(),
        )
        flagged += rep["drift_detected"]
    print(f"random splits flagged as drift: {flagged}/100")
    assert flagged <= 5


def test_no_drift_on_small_windows_for_95_of_100_seeds(breast_cancer):
    """A capture window of 15% of the rows (85) against the other 85%: PSI alone is noisy here."""
    schema, df = breast_cancer
    flagged = 0
    for seed in SEEDS:
        perm = np.random.default_rng(seed).permutation(len(df))
        cut = int(len(df) * 0.85)
        base, window = df.iloc[perm[:cut]], df.iloc[perm[cut:]]
        rep = drift.drift_report(
            drift.baseline_statistics(base, schema),
            base,
            window,
            {},
            schema,
            drift.DriftThresholds(),
        )
        flagged += rep["drift_detected"]
    assert flagged <= 5


@pytest.mark.parametrize("feature", ["mean_radius", "worst_texture", "mean_smoothness"])
def test_half_standard_deviation_shift_is_flagged(breast_cancer, feature):
    schema, df = breast_cancer
    base, window = halves(df, 0)
    stats = drift.baseline_statistics(base, schema)
    window[feature] = window[feature] + 0.5 * stats["features"][feature]["std"]
    rep = drift.drift_report(stats, base, window, {}, schema, drift.DriftThresholds())
    assert rep["drift_detected"] and feature in rep["drifted_features"], rep["features"][feature]
    assert rep["drifted_features"] == [feature]


def test_half_standard_deviation_shift_flag_rate(breast_cancer):
    schema, df = breast_cancer
    hits = 0
    for seed in range(20):
        base, window = halves(df, seed)
        stats = drift.baseline_statistics(base, schema)
        window["mean_radius"] = (
            window["mean_radius"] + 0.5 * stats["features"]["mean_radius"]["std"]
        )
        hits += (
            "mean_radius"
            in drift.drift_report(stats, base, window, {}, schema, drift.DriftThresholds())[
                "drifted_features"
            ]
        )
    assert hits >= 19
