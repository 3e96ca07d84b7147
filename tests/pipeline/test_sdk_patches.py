"""The two patches of SageMaker SDK internals still do what they are there for.

Each would silently stop helping after an SDK upgrade that changes the internals it
relies on (synth would get slower, not fail): these tests count the expensive calls the
patches avoid during a real build, so an upgrade that routes around them fails here.
Figures: ``benchmarks/definition_bench.py``; reasons: ``mlops/pipeline_sdk_env.py``.
"""

from __future__ import annotations

import dataclasses

import pytest
from pipeline_helpers import BINARY

from mlops.pipeline_definition import build_definition


def _fresh(name: str):
    return dataclasses.replace(BINARY, model_name=name)


def test_the_sdk_config_is_validated_once_per_build(built, monkeypatch: pytest.MonkeyPatch) -> None:
    import jsonschema
    from sagemaker.core.config import config as config_module
    from sagemaker.core.config import config_manager
    from sagemaker.core.helper import session_helper

    # The patch replaces the SDK's validator under these three names.
    assert config_module.validate_sagemaker_config is session_helper.validate_sagemaker_config
    assert callable(config_manager.SageMakerConfig.validate_sagemaker_config)
    calls = []
    real = jsonschema.validate
    monkeypatch.setattr(jsonschema, "validate", lambda *a, **k: (calls.append(1), real(*a, **k)))
    build_definition(_fresh("patch-probe-one"))
    # Without the patch: hundreds of validations per build (every config lookup).
    assert len(calls) <= 1, f"{len(calls)} jsonschema validations in one build"
    # Restored afterwards.
    assert config_module.validate_sagemaker_config is session_helper.validate_sagemaker_config


def test_processing_steps_build_no_local_mode_session(
    built, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sagemaker.mlops.workflow import steps

    client = steps.LocalSagemakerClient
    assert isinstance(client, type), "the SDK no longer has steps.LocalSagemakerClient"
    made = []
    real_init = client.__init__
    monkeypatch.setattr(
        client, "__init__", lambda self, *a, **k: (made.append(1), real_init(self, *a, **k))[1]
    )
    build_definition(_fresh("patch-probe-two"))
    assert made == [], f"{len(made)} local-mode sessions built (about 0.3 s each)"
    assert steps.LocalSagemakerClient is client  # restored
