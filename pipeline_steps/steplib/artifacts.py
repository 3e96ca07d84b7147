"""Model artifacts: the serving transform package, the XGBoost model tarball and the
single-container serving package."""

from __future__ import annotations

import ast
import gzip
import io
import json
import tarfile
from pathlib import Path

from steplib.contract import SINGLE_CONTAINER_ENVIRONMENT
from steplib.errors import DataError

TRANSFORM_FILE = "transform.json"
TRANSFORM_TARBALL = "model.tar.gz"
XGBOOST_MODEL_FILE = "xgboost-model"
SERVING_TARBALL = TRANSFORM_TARBALL  # every SageMaker model artifact is a model.tar.gz
CODE_DIR = Path(__file__).resolve().parent.parent
#: The single-container form's user module (a file next to this package's directory).
SERVING_PROGRAM = SINGLE_CONTAINER_ENVIRONMENT["SAGEMAKER_PROGRAM"]
#: The scripts the single-container ``code/`` directory holds; the steplib modules they
#: import (directly or through each other) are added by :func:`steplib_closure`.
SERVING_SCRIPTS = (SERVING_PROGRAM, "inference.py")


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # reproducible tarballs
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def _transform_bytes(spec: dict) -> bytes:
    return json.dumps(spec, indent=2, sort_keys=True).encode("utf-8")


def write_transform_package(spec: dict, out_dir: Path) -> Path:
    """Write ``transform.json`` and ``model.tar.gz`` (a SageMaker SKLearn serving artifact).

    The tarball holds ``transform.json`` at its root and ``code/inference.py`` with
    ``code/steplib/`` so the scikit-learn serving container runs ``inference.py``
    (``SAGEMAKER_PROGRAM=inference.py``) without any other upload.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    body = _transform_bytes(spec)
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


def booster_bytes(model_dir: Path) -> bytes:
    """The trained booster file as built-in XGBoost wrote it: a bare ``xgboost-model`` in
    ``model_dir``, else the ``xgboost-model`` inside its ``model.tar.gz``."""
    model_dir = Path(model_dir)
    bare = model_dir / XGBOOST_MODEL_FILE
    if bare.is_file():
        return bare.read_bytes()
    tar_path = model_dir / "model.tar.gz"
    if not tar_path.is_file():
        raise DataError(model_dir, None, "neither model.tar.gz nor xgboost-model found")
    with tarfile.open(tar_path, "r:gz") as tar:
        member = _member(tar, XGBOOST_MODEL_FILE)
        if member is None:
            raise DataError(tar_path, None, f"{XGBOOST_MODEL_FILE} not found in the tarball")
        return tar.extractfile(member).read()


def load_booster(model_dir: Path):
    """Load the booster from ``model.tar.gz`` (or a bare ``xgboost-model``) in ``model_dir``."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(booster_bytes(model_dir)))
    return booster


def steplib_closure(scripts: tuple[str, ...] = SERVING_SCRIPTS) -> list[str]:
    """The steplib modules (file names, ``__init__.py`` first) that ``scripts`` import,
    directly or through other steplib modules; found by reading their import statements."""
    steplib = CODE_DIR / "steplib"
    wanted = ["__init__"]
    queue = [CODE_DIR / script for script in scripts]
    while queue:
        tree = ast.parse(queue.pop().read_bytes())
        for name in _steplib_imports(tree):
            if name not in wanted and (steplib / f"{name}.py").is_file():
                wanted.append(name)
                queue.append(steplib / f"{name}.py")
    return ["__init__.py", *sorted(f"{name}.py" for name in wanted[1:])]


def _steplib_imports(tree: ast.AST) -> set[str]:
    """Names of the steplib modules a module imports (``from steplib import x``,
    ``from steplib.x import y``, ``import steplib.x``, and relative forms inside steplib)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            parts = [alias.name.split(".") for alias in node.names]
            found.update(p[1] for p in parts if p[0] == "steplib" and len(p) > 1)
        elif isinstance(node, ast.ImportFrom):
            module = node.module.split(".") if node.module else []
            if node.level == 0:
                if module[:1] != ["steplib"]:
                    continue
                module = module[1:]
            elif node.level != 1:
                continue
            # "from steplib.x import y" names module x; "from steplib import x, y" names x, y.
            found.update(module[:1] or [alias.name for alias in node.names])
    return found


def write_serving_package(model_dir: Path, spec: dict, out_dir: Path) -> Path:
    """Write ``<out_dir>/model.tar.gz``, a model version's single-container form.

    SageMaker Serverless Inference cannot serve the two-container inference pipeline, so a
    version also carries this artifact for the built-in XGBoost image in framework mode
    (environment :data:`~steplib.contract.SINGLE_CONTAINER_ENVIRONMENT`). It holds, at its root,
    the booster file (``xgboost-model``, the bytes training wrote) and ``transform.json``, and
    ``code/`` with ``serve_single.py``, ``inference.py`` and the steplib modules they import.

    The tarball is reproducible: members sorted by name, mtime 0, owner 0/0 without names,
    mode 0644, and a gzip header with mtime 0 and no file name.

    Args:
        model_dir: Holds the training job's ``model.tar.gz`` (or a bare ``xgboost-model``).
        spec: The fitted transform (what :func:`load_transform` returns).
        out_dir: Where the tarball is written (created if missing).
    """
    files = {XGBOOST_MODEL_FILE: booster_bytes(model_dir), TRANSFORM_FILE: _transform_bytes(spec)}
    for script in SERVING_SCRIPTS:
        files[f"code/{script}"] = (CODE_DIR / script).read_bytes()
    for module in steplib_closure():
        files[f"code/steplib/{module}"] = (CODE_DIR / "steplib" / module).read_bytes()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            _add_bytes(tar, name, files[name])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tar_path = out_dir / SERVING_TARBALL
    tar_path.write_bytes(gzip.compress(raw.getvalue(), compresslevel=9, mtime=0))
    return tar_path
