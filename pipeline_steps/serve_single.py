"""Serving handlers of a model version's single-container form (what serverless endpoints run).

A registered version is a two-container inference pipeline (inference.py in the scikit-learn
image, then built-in XGBoost). SageMaker Serverless Inference cannot serve an inference
pipeline, so evaluate.py (``--serving-dir``) also packages the version for one container:
the built-in XGBoost image in framework mode, running this file with the environment
:data:`steplib.contract.SINGLE_CONTAINER_ENVIRONMENT` (``SAGEMAKER_PROGRAM=serve_single.py``,
``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code``). Its ``model.tar.gz`` holds
``xgboost-model`` and ``transform.json`` at the root and ``code/`` with this file,
inference.py and the steplib modules they import (see ``artifacts.write_serving_package``).

In one process it does what the two containers do: inference.py's handlers parse and
validate the raw rows and apply the fitted transform, then the booster scores the matrix,
as evaluate.py scores the test split. The response body is the one the built-in XGBoost
container (algorithm mode) returns as container 2 of the pipeline, byte for byte:

* Accept ``text/csv``: ``",".join(str(p) for p in predictions.tolist())`` with no trailing
  newline: one score per row (positive-class probability, or the value), and for
  multiclass one ``[p0, p1, ...]`` list per row; with ``SAGEMAKER_BATCH`` set, one row a
  line with a trailing newline;
* Accept ``application/json``: ``json.dumps(predictions.tolist())``.

The framework container leaves Accept ``*/*`` or absent to the toolkit's default
(``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``, else ``application/json``), as in the pipeline.

Errors: a malformed payload gets HTTP 400 with inference.py's JSON body
(``{"error": "<what is wrong>"}``); an Accept type other than the two above gets 415. The
XGBoost image serves a user module with sagemaker-inference's ``Transformer`` on the
multi-model server, which answers 500 to any exception except the toolkit's own
``BaseInferenceToolkitError`` (it answers that exception's status code, with the message
followed by the traceback as the body). So output_fn sets the status on the request
context when the toolkit passes one (sagemaker-inference 1.10 hands it to a handler that
takes a ``context`` argument; 1.5 does not), which gives exactly inference.py's body; with
a toolkit that passes none it raises ``GenericInferenceToolkitError(400, ...)``: still a 400
(``ModelError`` with ``OriginalStatusCode`` 400), its body the same JSON and a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import inference
import numpy as np
from steplib import artifacts

#: Accept values the built-in XGBoost container answers (it compares them lower-cased).
CSV_ACCEPTS = (inference.CSV, "csv")
JSON_ACCEPTS = (inference.JSON, "json")


class SingleContainerModel:
    """The fitted transform (as inference.py loads it) and the booster, loaded once per worker."""

    def __init__(self, transform: inference.ServingModel, booster) -> None:
        self.transform = transform
        self.booster = booster


class Reply(NamedTuple):
    """What output_fn returns. The toolkit reads a tuple as (body, content type); ``status``
    is for local runs and tests (inside the container it is set on the request context)."""

    body: bytes
    content_type: str
    status: int = 200


def model_fn(model_dir: str) -> SingleContainerModel:
    """Load ``transform.json`` (through inference.py) and ``xgboost-model`` from ``model_dir``."""
    return SingleContainerModel(inference.model_fn(model_dir), artifacts.load_booster(model_dir))


def input_fn(request_body, request_content_type: str):
    """inference.py's input_fn: typed raw rows, or an ``inference.BadRequest``."""
    return inference.input_fn(request_body, request_content_type)


def predict_fn(input_data, model: SingleContainerModel):
    """The fitted transform, then the booster's scores; passes a ``BadRequest`` through."""
    import xgboost as xgb

    matrix = inference.predict_fn(input_data, model.transform)
    if isinstance(matrix, inference.BadRequest):
        return matrix
    return model.booster.predict(xgb.DMatrix(matrix))


def output_fn(prediction, accept: str, context=None) -> Reply:
    """The built-in XGBoost container's response body for ``accept``, or a 400/415 error.

    ``context`` is the model server's request context, which sagemaker-inference passes
    because this function takes a third argument; None with older toolkits and locally.
    """
    if isinstance(prediction, inference.BadRequest):
        return _error(400, "Bad Request", prediction.message, context)
    body = encode_predictions(prediction, accept)
    if body is None:
        return _error(
            415,
            "Unsupported Media Type",
            f"accept type {accept!r} is not supported; use text/csv or application/json",
            context,
        )
    return Reply(body, accept)


def encode_predictions(prediction: np.ndarray, accept: str) -> bytes | None:
    """Scores encoded as the built-in XGBoost container encodes them; None for another Accept."""
    accept_type = (accept or "").lower()
    if accept_type in CSV_ACCEPTS:
        if os.environ.get("SAGEMAKER_BATCH"):  # batch transform: one row a line
            return ("\n".join(map(str, prediction.tolist())) + "\n").encode("utf-8")
        return ",".join(map(str, prediction.tolist())).encode("utf-8")
    if accept_type in JSON_ACCEPTS:
        return json.dumps(prediction.tolist()).encode("utf-8")
    return None


def _error(status: int, phrase: str, message: str, context) -> Reply:
    body = json.dumps({"error": message})  # the body inference.py answers a bad payload with
    if context is not None:
        context.set_response_status(code=status, phrase=phrase)
        return Reply(body.encode("utf-8"), inference.JSON, status)
    try:  # inside the XGBoost image, with a toolkit that passes no context
        from sagemaker_inference.errors import GenericInferenceToolkitError
    except ImportError:  # local runs and tests
        return Reply(body.encode("utf-8"), inference.JSON, status)
    raise GenericInferenceToolkitError(status, body, phrase)


def handle(model: SingleContainerModel, body, content_type: str, accept: str) -> Reply:
    """Run input_fn, predict_fn and output_fn as the serving toolkit does (local runs, tests)."""
    return output_fn(predict_fn(input_fn(body, content_type), model), accept)
