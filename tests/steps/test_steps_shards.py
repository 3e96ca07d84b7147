"""Training shards across training instances, and their division across processing hosts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from steplib import cluster, rawio
from steplib.errors import DataError
from steps_helpers import REPO, run_preprocess

RAW = REPO / "data" / "raw" / "breast-cancer"


def _preprocess(out: Path, *extra: object) -> None:
    result = run_preprocess(RAW, out, *extra)
    assert result.returncode == 0, result.stderr


def _rows(directory: Path) -> np.ndarray:
    return np.vstack([rawio.read_matrix_csv(f) for f in sorted(directory.glob("*.csv"))])


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    _preprocess(out)
    return out


def test_shards_add_up_to_the_single_file(single: Path, tmp_path: Path) -> None:
    _preprocess(tmp_path / "out", "--train-shards", 3)
    names = sorted(p.name for p in (tmp_path / "out" / "train").iterdir())
    assert names == [f"train-{i:05d}-of-00003.csv" for i in range(3)]
    sizes = [len(rawio.read_matrix_csv(tmp_path / "out" / "train" / n)) for n in names]
    assert max(sizes) - min(sizes) <= 1
    assert np.array_equal(_rows(tmp_path / "out" / "train"), _rows(single / "train"))
    for other in ("validation", "test", "baseline", "transform"):
        assert sorted(p.name for p in (tmp_path / "out" / other).iterdir()) == sorted(
            p.name for p in (single / other).iterdir()
        )


def test_hosts_divide_the_shards_and_only_the_first_writes_the_rest(
    single: Path, tmp_path: Path
) -> None:
    hosts = ["algo-1", "algo-2"]
    merged = tmp_path / "merged"  # what the uploads of both hosts add up to in S3
    for host in hosts:
        config = tmp_path / f"{host}.json"
        config.write_text(json.dumps({"current_host": host, "hosts": hosts}))
        out = tmp_path / host
        _preprocess(out, "--train-shards", 4, "--resource-config", config)
        shutil.copytree(out, merged, dirs_exist_ok=True)
        written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        trains = sorted(w for w in written if w.startswith("train/"))
        first = host == "algo-1"
        assert trains == [
            f"train/train-{i:05d}-of-00004.csv" for i in ((0, 2) if first else (1, 3))
        ]
        assert any(w.startswith("validation/") for w in written) is first
    assert np.array_equal(_rows(merged / "train"), _rows(single / "train"))


def test_more_shards_than_training_rows_is_rejected(tmp_path: Path) -> None:
    result = run_preprocess(RAW, tmp_path / "out", "--train-shards", 100_000)
    assert result.returncode == 2
    assert "fewer than the 100000 shards" in result.stderr
    assert not (tmp_path / "out").exists()


def test_resource_config_absent_means_one_host(tmp_path: Path) -> None:
    assert cluster.current_host(tmp_path / "missing.json") == (0, 1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"current_host": "algo-9", "hosts": ["algo-1"]}))
    with pytest.raises(DataError, match="not a SageMaker resource config"):
        cluster.current_host(bad)
