"""Serving handlers of the preprocessing container of the inference pipeline model.

The endpoint is a SageMaker inference pipeline model of two containers:

1. the SageMaker scikit-learn image running this file (``SAGEMAKER_PROGRAM=inference.py``)
   with the ``transform/model.tar.gz`` that preprocess wrote: it accepts raw feature rows
   (CSV or JSON, as in the raw data without the target), validates them against the
   schema saved with the transform, applies the fitted transform and passes a header-less
   CSV matrix on;
2. the built-in XGBoost image with the trained ``model.tar.gz``: it scores that CSV.

A malformed payload gets HTTP 400 from container 1 with a JSON body that says what is
wrong; SageMaker returns it to the caller (``ModelError`` with ``OriginalStatusCode`` 400).
"""

from __future__ import annotations

import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
from steplib import artifacts, transform
from steplib.payload import PayloadError, coerce_features, parse_payload
from steplib.schema import parse_schema

LOG = logging.getLogger("pipeline_steps.inference")
CSV = "text/csv"
JSON = "application/json"


_MODEL_CACHE: dict = {}


class ServingModel:
    """The fitted transform and its schema, loaded once per worker."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.schema = parse_schema(spec["schema"], "transform.json")


class BadRequest:
    """A payload problem carried from input_fn to output_fn, which answers 400."""

    def __init__(self, message: str) -> None:
        self.message = message


def model_fn(model_dir: str) -> ServingModel:
    """Load ``transform.json`` from the model directory (the unpacked model.tar.gz).

    The model is also kept module-wide because the toolkit calls ``input_fn(body,
    content_type)`` without it, and input_fn needs the schema.
    """
    model = ServingModel(artifacts.load_transform(model_dir))
    _MODEL_CACHE["model"] = model
    return model


def input_fn(request_body, request_content_type: str, model: ServingModel = None):
    """Parse raw feature rows; a bad payload becomes a :class:`BadRequest`, not an exception.

    The serving toolkit answers 500 to any exception raised here, so the problem is handed
    to output_fn to answer 400 instead. ``model`` is None inside the container (the toolkit
    calls ``input_fn(body, content_type)``), so the schema comes from the loaded model there.
    """
    model = model or _MODEL_CACHE.get("model")
    try:
        raw = parse_payload(request_body, request_content_type, model.schema)
        typed, bad = coerce_features(raw, model.schema)
    except PayloadError as err:
        return BadRequest(str(err))
    if bad:
        name, rows = next(iter(bad.items()))
        value = raw[name].iloc[rows[0]]
        return BadRequest(
            f"row {rows[0] + 1}, feature '{name}': value {value!r} is not numeric ({len(rows)} such rows)"
        )
    return typed


def predict_fn(input_data, model: ServingModel):
    """Apply the fitted transform; passes a :class:`BadRequest` through untouched."""
    if isinstance(input_data, BadRequest):
        return input_data
    return transform.apply_transform(model.spec, input_data)


def output_fn(prediction, accept: str):
    """Header-less CSV of the transformed matrix for the XGBoost container, or a 400 error.

    Values are written with 17 significant digits so the XGBoost container reads exactly the
    float64 values evaluate used.
    """
    if isinstance(prediction, BadRequest):
        return _response(json.dumps({"error": prediction.message}), JSON, 400)
    return _response(matrix_to_csv(prediction), CSV, 200)


def matrix_to_csv(matrix: np.ndarray) -> str:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in matrix) + "\n"


def _response(body: str, content_type: str, status: int):
    try:  # inside the SageMaker scikit-learn serving image
        from sagemaker_containers.beta.framework import worker

        return worker.Response(response=body, status=status, mimetype=content_type)
    except ImportError:  # local runs and tests
        return LocalResponse(body, content_type, status)


class LocalResponse:
    """What output_fn returns outside the container: body, content type, HTTP status."""

    def __init__(self, body: str, content_type: str, status: int) -> None:
        self.body, self.content_type, self.status = body, content_type, status


def handle(model: ServingModel, body, content_type: str, accept: str = CSV) -> LocalResponse:
    """Run the three handlers the way the serving toolkit does (for local runs and tests)."""
    _MODEL_CACHE["model"] = model
    return output_fn(predict_fn(input_fn(body, content_type, model), model), accept)
