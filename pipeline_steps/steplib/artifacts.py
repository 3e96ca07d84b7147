"""Model artifacts: the serving transform package and the XGBoost model tarball."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from steplib.errors import DataError

TRANSFORM_FILE = "transform.json"
TRANSFORM_TARBALL = "model.tar.gz"
XGBOOST_MODEL_FILE = "xgboost-model"
CODE_DIR = Path(__file__).resolve().parent.parent


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # reproducible tarballs
    tar.addfile(info, io.BytesIO(data))


def write_transform_package(spec: dict, out_dir: Path) -> Path:
    """Write ``transform.json`` and ``model.tar.gz`` (a SageMaker SKLearn serving artifact).

    The tarball holds ``transform.json`` at its root and ``code/inference.py`` with
    ``code/steplib/`` so the scikit-learn serving container runs ``inference.py``
    (``SAGEMAKER_PROGRAM=inference.py``) without any other upload.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    body = json.dumps(spec, indent=2, sort_keys=True).encode("utf-8")
    (out_dir / TRANSFORM_FILE).write_bytes(body)
    tar_path = out_dir / TRANSFORM_TARBALL
    with tarfile.open(tar_path, "w:gz") as tar:
        _add_bytes(tar, TRANSFORM_FILE, body)
        _add_bytes(tar, "code/inference.py", (CODE_DIR / "inference.py").read_bytes())
        for src in sorted((CODE_DIR / "steplib").glob("*.py")):
            _add_bytes(tar, f"code/steplib/{src.name}", src.read_bytes())
    return tar_path


def load_transform(transform_dir: Path) -> dict:
    """Read the fitted transform from a directory holding ``transform.json`` or ``model.tar.gz``."""
    transform_dir = Path(transform_dir)
    direct = transform_dir / TRANSFORM_FILE
    if direct.is_file():
        return json.loads(direct.read_text(encoding="utf-8"))
    tar_path = transform_dir / TRANSFORM_TARBALL
    if not tar_path.is_file():
        raise DataError(
            transform_dir, None, f"neither {TRANSFORM_FILE} nor {TRANSFORM_TARBALL} found"
        )
    with tarfile.open(tar_path, "r:gz") as tar:
        member = _member(tar, TRANSFORM_FILE)
        if member is None:
            raise DataError(tar_path, None, f"{TRANSFORM_FILE} not found in the tarball")
        return json.loads(tar.extractfile(member).read().decode("utf-8"))


def _member(tar: tarfile.TarFile, name: str) -> tarfile.TarInfo | None:
    for m in tar.getmembers():
        if m.isfile() and m.name.lstrip("./") == name:
            return m
    return None


def write_model_tarball(model_file: Path, out_dir: Path) -> Path:
    """Package an XGBoost model file as ``model.tar.gz`` holding ``xgboost-model`` (built-in layout)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tar_path = out_dir / "model.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tar:
        _add_bytes(tar, XGBOOST_MODEL_FILE, Path(model_file).read_bytes())
    return tar_path


def load_booster(model_dir: Path):
    """Load the booster from ``model.tar.gz`` (or a bare ``xgboost-model``) in ``model_dir``."""
    import xgboost as xgb

    model_dir = Path(model_dir)
    booster = xgb.Booster()
    bare = model_dir / XGBOOST_MODEL_FILE
    if bare.is_file():
        booster.load_model(str(bare))
        return booster
    tar_path = model_dir / "model.tar.gz"
    if not tar_path.is_file():
        raise DataError(model_dir, None, "neither model.tar.gz nor xgboost-model found")
    with tarfile.open(tar_path, "r:gz") as tar:
        member = _member(tar, XGBOOST_MODEL_FILE)
        if member is None:
            raise DataError(tar_path, None, f"{XGBOOST_MODEL_FILE} not found in the tarball")
        booster.load_model(bytearray(tar.extractfile(member).read()))
    return booster
