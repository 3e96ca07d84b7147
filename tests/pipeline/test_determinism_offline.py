"""Byte-identical output across builds and processes; no network attempted."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import botocore.endpoint
import pytest
from pipeline_helpers import BINARY, REPO_ROOT
from pytest_socket import SocketBlockedError, disable_socket, enable_socket

from mlops import definition_builds
from mlops.pipeline_definition import PipelineInputs, build_definition


def test_two_builds_identical(built):
    assert build_definition(BINARY).body == built["binary"].body
    assert build_definition(BINARY).substitutions == built["binary"].substitutions


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


def test_submitted_builds_are_shared_and_equal_the_direct_one(built):
    """In the worker (tests/conftest.py starts it) or in-process: equal inputs share one
    build, which equals the direct one."""
    future = definition_builds.submit(BINARY)
    assert future.result(timeout=120) == built["binary"]
    same = PipelineInputs(**{**BINARY.__dict__, "hyperparameters": dict(BINARY.hyperparameters)})
    assert definition_builds.submit(same) is future
    other = PipelineInputs(**{**BINARY.__dict__, "quality_threshold": 0.5})
    assert definition_builds.submit(other) is not future
    assert '"RightValue":0.5' in definition_builds.submit(other).result(timeout=120).body


def test_submit_rejects_bad_inputs_at_once():
    bad = PipelineInputs(**{**BINARY.__dict__, "model_name": "Not Kebab"})
    with pytest.raises(ValueError, match="model_name 'Not Kebab': must be kebab-case"):
        definition_builds.submit(bad)


def test_build_errors_keep_their_type():
    inputs = PipelineInputs(**{**BINARY.__dict__, "region": "ap-east-2"})
    with pytest.raises(ValueError, match="Unsupported region: ap-east-2"):
        definition_builds.submit(inputs).result(timeout=120)


def test_forking_is_refused_once_cdk_is_loaded():
    import aws_cdk  # noqa: F401 - the point of the test

    assert definition_builds.fork_is_safe() is False


# Runs as app.py does, in a fresh interpreter with no AWS settings and another hash seed:
# start() first, then the build in the forked worker. The network is denied in the parent
# before anything is imported (the worker inherits that, and denies it again itself).
WORKER_SCRIPT = textwrap.dedent(
    """
    import socket, sys
    def _deny(*args, **kwargs):
        raise RuntimeError(f"network attempted: {args!r}")
    socket.socket.connect = socket.socket.connect_ex = _deny
    socket.getaddrinfo = socket.create_connection = _deny
    sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
    from mlops import definition_builds
    assert definition_builds.start(), "the worker did not start"
    import os, socket
    from pipeline_helpers import BINARY
    pool = definition_builds._EXECUTOR
    assert pool.submit(os.getpid).result() != os.getpid(), "not built in another process"
    probe = pool.submit(exec, "import socket; socket.create_connection(('192.0.2.1', 443), 1)")
    probe = probe.exception()
    assert "network access is disabled" in str(probe), probe
    sys.stdout.write(definition_builds.submit(BINARY).result(timeout=300).body)
    """
)


def test_a_fresh_process_builds_the_same_body_in_its_worker_with_no_network(built):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_"))}
    env["PYTHONHASHSEED"] = "12345"  # a different hash seed must not change the output
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            WORKER_SCRIPT,
            str(REPO_ROOT),
            str(REPO_ROOT / "tests" / "pipeline"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == built["binary"].body


DEAD_WORKER_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
    from mlops import definition_builds
    definition_builds.start()
    from concurrent.futures.process import BrokenProcessPool
    from pipeline_helpers import BINARY
    pool = definition_builds._EXECUTOR
    os.kill(pool.submit(os.getpid).result(), signal.SIGKILL)
    try:
        definition_builds.submit(BINARY).result(timeout=60)
    except BrokenProcessPool as error:
        print("broken:", error)
    """
)


def test_a_dead_worker_fails_its_builds_instead_of_hanging():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            DEAD_WORKER_SCRIPT,
            str(REPO_ROOT),
            str(REPO_ROOT / "tests" / "pipeline"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("broken:")
