"""Run the SageMaker Python SDK v3 offline, for the span of one definition build.

Measured rules (see shared TECH_NOTES and docs/adr/0002):

* ``AWS_DEFAULT_REGION`` must be set before the first import of a v3 module (the
  import itself raises ``NoRegionError`` otherwise);
* ``SAGEMAKER_VALIDATE_ROLE=false`` stops ``iam:SimulatePrincipalPolicy``;
* telemetry is opted out through the session's SDK config (``TelemetryOptOut``);
* the boto session gets static dummy credentials, so botocore never walks the
  credential chain (IMDS, container endpoint) and never signs a real request;
* ``AWS_EC2_METADATA_DISABLED=true`` covers the SDK's own import-time sessions.

:func:`offline_sdk` sets the environment variables for the duration of the ``with``
block and restores the previous values afterwards, so nothing leaks into the caller
(the CDK app) beyond the SDK modules staying imported.

Two patches of SDK internals make a build fast enough for many models per stage; each is
scoped to the ``with`` block, restored afterwards, measured by
``benchmarks/definition_bench.py`` and pinned by ``tests/pipeline/test_sdk_patches.py``
(which fails when an SDK upgrade changes what they rely on):

* :func:`_memoised_config_validation`: the SDK re-validates its config dict with
  jsonschema on every config lookup (a further model: 6.8 s without, 0.07 s with);
* :func:`_no_throwaway_local_sessions`: each processing step builds a local-mode session
  only to read a method name (0.8 s a model without, 0.07 s with).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from typing import Any

_ENV = {
    "SAGEMAKER_VALIDATE_ROLE": "false",
    "AWS_EC2_METADATA_DISABLED": "true",
}
_LOCK = threading.RLock()

#: SDK config the build session uses: telemetry off, nothing else.
SDK_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


@contextlib.contextmanager
def offline_sdk(region: str) -> Iterator[None]:
    """Set up the process so the SDK can build a definition with no network.

    Inside the block: the environment variables above are set, ``boto3.DEFAULT_SESSION``
    is a cached session with dummy credentials (the SDK creates throwaway sessions,
    e.g. ``LocalSagemakerClient()`` in ``ProcessingStep.__init__``), and the SDK's
    config validation is memoised. Everything is restored on exit.

    Args:
        region: concrete region; used as ``AWS_DEFAULT_REGION`` unless one is set
            already (the build itself never relies on the ambient region).

    Builds are serialised with a lock: the SDK keeps the step being built in
    module-level state.
    """
    with _LOCK:
        wanted = dict(_ENV)
        if not os.environ.get("AWS_DEFAULT_REGION"):
            wanted["AWS_DEFAULT_REGION"] = region
        saved = {k: os.environ.get(k) for k in wanted}
        os.environ.update(wanted)
        try:
            import boto3

            saved_default_session = boto3.DEFAULT_SESSION
            boto3.DEFAULT_SESSION = offline_boto_session(region)
            try:
                with (
                    _memoised_config_validation(),
                    _no_throwaway_local_sessions(),
                    _quiet_sdk(),
                ):
                    yield
            finally:
                boto3.DEFAULT_SESSION = saved_default_session
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@functools.cache
def offline_boto_session(region: str) -> Any:
    """A boto3 session with static dummy credentials: clients never look for real ones.

    Cached per region: botocore caches the data files it loads (service models,
    endpoints) per session, and re-reading them is most of the cost of a build after
    the first. (One botocore session cannot back several boto3 sessions: boto3
    registers its S3 handlers twice and fails.)
    """
    import boto3

    return boto3.Session(
        aws_access_key_id="AKIAOFFLINEPLACEHOLDER",
        aws_secret_access_key="offline-placeholder-secret",
        region_name=region,
    )


_validated: set[str] = set()


@contextlib.contextmanager
def _memoised_config_validation() -> Iterator[None]:
    """Validate each distinct SDK config dict once instead of on every lookup.

    The SDK runs ``jsonschema.validate(config, SAGEMAKER_PYTHON_SDK_CONFIG_SCHEMA)``
    every time it resolves a value from its config (dozens of times per step; each
    call also re-checks the schema itself). The dict passed by the builder never
    changes, so a dict already validated (compared by canonical JSON) is not validated
    again. Invalid configs are not remembered and still raise. The three module
    attributes through which the SDK reaches the function are replaced for the span
    of the ``with`` block and restored afterwards.
    """
    from sagemaker.core.config import config as config_module
    from sagemaker.core.config import config_manager
    from sagemaker.core.helper import session_helper

    original = config_module.validate_sagemaker_config

    def validate_once(sagemaker_config: dict | None = None) -> None:
        try:
            key = json.dumps(sagemaker_config, sort_keys=True)
        except (TypeError, ValueError):  # not plain JSON: validate as the SDK would
            original(sagemaker_config)
            return
        if key not in _validated:
            original(sagemaker_config)
            _validated.add(key)

    targets = [
        (config_module, "validate_sagemaker_config", validate_once),
        (session_helper, "validate_sagemaker_config", validate_once),
        (
            config_manager.SageMakerConfig,
            "validate_sagemaker_config",
            staticmethod(validate_once),
        ),
    ]
    saved = [(owner, name, owner.__dict__[name]) for owner, name, _ in targets]
    for owner, name, replacement in targets:
        setattr(owner, name, replacement)
    try:
        yield
    finally:
        for owner, name, previous in saved:
            setattr(owner, name, previous)


@contextlib.contextmanager
def _no_throwaway_local_sessions() -> Iterator[None]:
    """Stop ``ProcessingStep``/``TransformStep`` building a local-mode session per step.

    ``sagemaker.mlops.workflow.steps`` instantiates ``LocalSagemakerClient()`` only to
    read a method name (``LocalSagemakerClient().create_processing_job.__name__``);
    the instance builds a ``LocalSession`` with a fresh ``boto3.Session()`` and reloads
    botocore's data files (~0.3 s a step). The class has the same method names, so for
    the span of the ``with`` block the module's name returns the class itself.
    """
    from sagemaker.mlops.workflow import steps

    real = steps.LocalSagemakerClient
    steps.LocalSagemakerClient = lambda *_a, **_k: real  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        steps.LocalSagemakerClient = real  # type: ignore[misc]


@contextlib.contextmanager
def _quiet_sdk() -> Iterator[None]:
    """Silence the SDK's expected chatter during a build (restored afterwards).

    Under a PipelineSession the SDK warns on every step ("No Job being started",
    "Popping out 'ProcessingJobName'...") and logs INFO lines through loggers with
    their own levels. None of it is actionable for a definition build and it would
    flood ``cdk synth``. Records of level WARNING and below are dropped for the span
    of the build; ERROR and above still show.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"sagemaker\.")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"sagemaker\.")
            yield
    finally:
        logging.disable(previous)
