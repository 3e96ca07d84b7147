"""Byte-identical output across builds and processes; no network attempted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

import botocore.endpoint
import pytest
from pipeline_helpers import BINARY, REPO_ROOT
from pytest_socket import SocketBlockedError, disable_socket, enable_socket

from mlops.definition_worker import build_definition_in_background
from mlops.pipeline_definition import PipelineInputs, build_definition

# Runs in a fresh interpreter: blocks every connection and DNS lookup *before* the SDK is
# imported (the import itself is where a cold process would first reach out), builds the
# binary definition and prints it.
SUBPROCESS_SCRIPT = textwrap.dedent(
    """
    import socket, sys
    def _deny(*args, **kwargs):
        raise RuntimeError(f"network attempted: {args!r}")
    socket.socket.connect = _deny
    socket.socket.connect_ex = _deny
    socket.getaddrinfo = _deny
    socket.create_connection = _deny
    sys.path.insert(0, sys.argv[1])
    sys.path.insert(0, sys.argv[2])
    from pipeline_helpers import BINARY
    from mlops.pipeline_definition import build_definition
    sys.stdout.write(build_definition(BINARY).body)
    """
)


def test_two_builds_identical(built):
    assert build_definition(BINARY).body == built["binary"].body
    assert build_definition(BINARY).substitutions == built["binary"].substitutions


def test_build_in_fresh_process_identical_and_offline(built):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "SAGEMAKER_")) or k == "AWS_DEFAULT_REGION"
    }
    env.pop("AWS_DEFAULT_REGION", None)  # the builder must cope without one
    env["PYTHONHASHSEED"] = "12345"  # a different hash seed must not change the output
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SUBPROCESS_SCRIPT,
            str(REPO_ROOT),
            str(REPO_ROOT / "tests" / "pipeline"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == built["binary"].body


@pytest.fixture
def no_network(monkeypatch):
    """Block sockets (pytest-socket) and botocore's HTTP send."""
    sent = []

    def refuse_send(self, request):
        sent.append(request.url)
        raise AssertionError(f"botocore tried to send {request.method} {request.url}")

    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", refuse_send)
    disable_socket()
    try:
        yield sent
    finally:
        enable_socket()


def test_build_makes_no_network_call(no_network):
    inputs = PipelineInputs(
        **{**BINARY.__dict__, "region": "ap-southeast-2", "model_name": "offline-check"}
    )
    threads_before = {t.name for t in threading.enumerate()}
    built = build_definition(inputs)
    assert no_network == []
    assert "ap-southeast-2" in built.body
    new_threads = {t.name for t in threading.enumerate()} - threads_before
    assert not [name for name in new_threads if "telemetry" in name]


def test_guard_is_effective(no_network):
    import socket

    with pytest.raises(SocketBlockedError):
        socket.socket()


def test_environment_restored():
    before = {k: os.environ.get(k) for k in ("SAGEMAKER_VALIDATE_ROLE", "AWS_DEFAULT_REGION")}
    import boto3

    default_session = boto3.DEFAULT_SESSION
    build_definition(BINARY)
    after = {k: os.environ.get(k) for k in ("SAGEMAKER_VALIDATE_ROLE", "AWS_DEFAULT_REGION")}
    assert after == before
    assert boto3.DEFAULT_SESSION is default_session
    from sagemaker.mlops.workflow import steps

    assert isinstance(steps.LocalSagemakerClient, type)


def test_background_build_equals_the_direct_one(built):
    future = build_definition_in_background(BINARY)
    assert future.result(timeout=120) == built["binary"]
    # Equal inputs share one build; any difference builds again.
    same = PipelineInputs(**{**BINARY.__dict__, "hyperparameters": dict(BINARY.hyperparameters)})
    assert build_definition_in_background(same) is future
    other = PipelineInputs(**{**BINARY.__dict__, "quality_threshold": 0.5})
    assert build_definition_in_background(other) is not future
    assert '"DefaultValue":0.5' in build_definition_in_background(other).result(timeout=120).body


def test_background_build_rejects_bad_inputs_at_once():
    bad = PipelineInputs(**{**BINARY.__dict__, "model_name": "Not Kebab"})
    with pytest.raises(ValueError, match="model_name 'Not Kebab': must be kebab-case"):
        build_definition_in_background(bad)


def test_background_build_errors_keep_their_type():
    inputs = PipelineInputs(**{**BINARY.__dict__, "region": "ap-east-2"})
    with pytest.raises(ValueError, match="Unsupported region: ap-east-2"):
        build_definition_in_background(inputs).result(timeout=120)


def test_the_worker_builds_with_the_network_denied(built):
    """The worker process, as the app starts it, answers with no network at all."""
    request = {
        "id": 7,
        "inputs": {**BINARY.__dict__, "hyperparameters": dict(BINARY.hyperparameters)},
    }
    result = subprocess.run(
        [sys.executable, "-m", "mlops.definition_worker"],
        input=json.dumps(request) + "\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["id"] == 7 and reply["body"] == built["binary"].body


def test_the_worker_network_guard_is_effective():
    code = (
        "from mlops.definition_worker import deny_network\n"
        "deny_network()\n"
        "import socket\n"
        "socket.create_connection(('192.0.2.1', 443), timeout=1)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert result.returncode != 0
    assert "network access is disabled in the definition worker" in result.stderr


def test_a_dead_worker_fails_its_builds_instead_of_hanging():
    from mlops.definition_worker import DefinitionWorker, WorkerError

    worker = DefinitionWorker()
    pending = worker.submit(BINARY)  # the worker is still importing the SDK
    worker._process.kill()
    with pytest.raises(WorkerError, match="exited with code -9"):
        pending.result(timeout=30)
    with pytest.raises(WorkerError, match="exited with code -9"):
        worker.submit(BINARY).result(timeout=30)
    worker.close()
