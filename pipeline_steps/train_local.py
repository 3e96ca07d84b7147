"""Local stand-in for the built-in XGBoost training job (used by ``make local-run`` only).

In the cloud the pipeline trains with the built-in XGBoost algorithm image (see
containers.json) on the ``train`` and ``validation`` channels (CSV, label first, no header).
Here the xgboost package of the same version trains with the same hyperparameters and
writes the same layout: ``<model-dir>/xgboost-model``, and ``model.tar.gz`` holding it (what
SageMaker uploads as the job's model artifact).

Paths follow the training container contract (``/opt/ml/input/data/<channel>``,
``/opt/ml/model``, ``SM_CHANNEL_*``, ``SM_MODEL_DIR``) as defaults only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from steplib import artifacts, rawio
from steplib.errors import DataError, run_main

LOG = logging.getLogger("pipeline_steps.train_local")
#: Hyperparameters the built-in algorithm handles itself rather than passing to xgboost.train.
TRAINING_CONTROL = (
    "num_round",
    "early_stopping_rounds",
    "csv_weights",
    "save_model_on_termination",
)


def _value(text: object) -> object:
    if isinstance(text, (int, float)):
        return text
    s = str(text).strip()
    for cast in (int, float):
        try:
            return cast(s)
        except ValueError:
            pass
    return s


def xgboost_params(hyperparameters: dict[str, object]) -> tuple:
    """Split built-in hyperparameters (string or number values) into xgboost.train arguments.

    Returns:
        (params for xgboost.train, num_boost_round, early_stopping_rounds or None).
        ``eval_metric`` may be a comma-separated list, as the built-in algorithm accepts.
    """
    hp = {k: _value(v) for k, v in hyperparameters.items()}
    if "num_round" not in hp:
        raise DataError(
            "hyperparameters", "num_round", "is required by the built-in XGBoost algorithm"
        )
    params = {k: v for k, v in hp.items() if k not in TRAINING_CONTROL}
    if isinstance(params.get("eval_metric"), str) and "," in params["eval_metric"]:
        params["eval_metric"] = [m.strip() for m in params["eval_metric"].split(",")]
    params.setdefault("seed", 0)
    params.setdefault("nthread", os.cpu_count() or 1)
    esr = hp.get("early_stopping_rounds")
    return params, int(hp["num_round"]), (int(esr) if esr is not None else None)


def train(
    train_dir: Path,
    validation_dir: Path | None,
    hyperparameters: dict[str, object],
    model_dir: Path,
    tarball_dir: Path | None = None,
) -> dict:
    """Train and write ``xgboost-model`` (and ``model.tar.gz`` when ``tarball_dir`` is set)."""
    import xgboost as xgb

    params, rounds, esr = xgboost_params(hyperparameters)

    def load(d: Path) -> xgb.DMatrix:
        files = [f for f in rawio.list_data_files(d)]
        mats = [rawio.read_matrix_csv(f) for f in files]
        import numpy as np

        m = np.vstack(mats)
        return xgb.DMatrix(m[:, 1:], label=m[:, 0])

    dtrain = load(train_dir)
    evals = [(dtrain, "train")]
    if validation_dir is not None and Path(validation_dir).exists():
        evals.append((load(validation_dir), "validation"))
    history: dict = {}
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=rounds,
        evals=evals,
        evals_result=history,
        early_stopping_rounds=esr,
        verbose_eval=False,
    )
    model_dir.mkdir(parents=True, exist_ok=True)
    model_file = model_dir / artifacts.XGBOOST_MODEL_FILE
    # The built-in algorithm saves to "xgboost-model", which xgboost writes as UBJSON; the
    # explicit .ubj name gives the same bytes without xgboost's "no extension" warning.
    staged = model_dir / (artifacts.XGBOOST_MODEL_FILE + ".ubj")
    booster.save_model(str(staged))
    os.replace(staged, model_file)
    result = {
        "model_file": str(model_file),
        "num_round": rounds,
        "final_eval": {
            f"{ds}-{m}": vals[-1] for ds, ms in history.items() for m, vals in ms.items()
        },
    }
    if tarball_dir is not None:
        result["model_tarball"] = str(artifacts.write_model_tarball(model_file, tarball_dir))
    LOG.info("training done: %s", json.dumps(result))
    return result


def main(argv: Sequence[str] | None = None) -> None:
    env = os.environ
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train-dir", default=env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument(
        "--validation-dir",
        default=env.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"),
    )
    p.add_argument("--model-dir", default=env.get("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument(
        "--hyperparameters-file",
        default="/opt/ml/input/config/hyperparameters.json",
        help="JSON object of built-in XGBoost hyperparameters (string values, as SageMaker writes it)",
    )
    p.add_argument(
        "--hyperparameters",
        default=None,
        help="the same as an inline JSON object; wins over the file",
    )
    p.add_argument(
        "--tarball-dir",
        default=None,
        help="also write model.tar.gz here (the job's S3 model artifact)",
    )
    args = p.parse_args(argv)
    if args.hyperparameters:
        hp = json.loads(args.hyperparameters)
    else:
        try:
            hp = json.loads(Path(args.hyperparameters_file).read_text())
        except FileNotFoundError:
            raise DataError(
                args.hyperparameters_file, None, "hyperparameters file not found"
            ) from None
    train(
        Path(args.train_dir),
        Path(args.validation_dir),
        hp,
        Path(args.model_dir),
        Path(args.tarball_dir) if args.tarball_dir else None,
    )


if __name__ == "__main__":
    sys.exit(run_main(main))
