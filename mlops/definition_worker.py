"""Pipeline definitions built in a worker process, in parallel with the CDK app.

Importing the SageMaker SDK (~2 s) and rendering (~0.1-0.3 s a model) is pure Python
work that needs nothing from CDK. A worker process (``python -m mlops.definition_worker``)
does it on the second core while the app's main thread drives the jsii kernel; a thread
would compete with that main thread for the GIL. The worker starts importing the SDK as
soon as it is spawned, then answers one request per line:

    request   {"id": 3, "inputs": {<PipelineInputs fields>}}
    response  {"id": 3, "body": "...", "substitutions": {...}}
           or {"id": 3, "error": "DefinitionTooLargeError", "message": "..."}

The worker cannot open network connections: it disables socket connections and DNS
before importing anything (on top of the SDK's own offline set-up), so a synth that
would reach out fails loudly instead.

:func:`build_definition_in_background` is the client: it returns a future, and equal
inputs share one build.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

from mlops.pipeline_definition import (
    BuiltDefinition,
    DefinitionTooLargeError,
    PipelineInputs,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: Errors the worker re-raises in the app with their own type; others become RuntimeError.
_ERRORS: Mapping[str, type[Exception]] = {
    "DefinitionTooLargeError": DefinitionTooLargeError,
    "ValueError": ValueError,
}


class WorkerError(RuntimeError):
    """The worker process failed (not a build error: those keep their own type)."""


class DefinitionWorker:
    """One worker process and the futures of the builds it was asked for."""

    def __init__(self) -> None:
        paths = [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "mlops.definition_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            cwd=PROJECT_ROOT,
        )
        self._pending: dict[int, Future[BuiltDefinition]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._reader = threading.Thread(target=self._read, name="definition-worker", daemon=True)
        self._reader.start()

    def submit(self, inputs: PipelineInputs) -> Future[BuiltDefinition]:
        future: Future[BuiltDefinition] = Future()
        fields = {**inputs.__dict__, "hyperparameters": dict(inputs.hyperparameters)}
        with self._lock:
            if self._process.poll() is not None:
                future.set_exception(WorkerError(self._exit_message()))
                return future
            request_id = next(self._ids)
            self._pending[request_id] = future
            assert self._process.stdin is not None
            try:
                self._process.stdin.write(json.dumps({"id": request_id, "inputs": fields}) + "\n")
                self._process.stdin.flush()
            except BrokenPipeError:  # died since the check; the reader fails the rest
                self._pending.pop(request_id)
                future.set_exception(WorkerError(self._exit_message()))
        return future

    def close(self) -> None:
        """Ends the worker: it exits when its input closes."""
        if self._process.stdin and not self._process.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self._process.stdin.close()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            reply = json.loads(line)
            with self._lock:
                future = self._pending.pop(reply["id"])
            if "error" in reply:
                if reply["error"] in _ERRORS:
                    future.set_exception(_ERRORS[reply["error"]](reply["message"]))
                else:  # keep the builder's own error name in the message
                    future.set_exception(WorkerError(f"{reply['error']}: {reply['message']}"))
            else:
                future.set_result(BuiltDefinition(reply["body"], reply["substitutions"]))
        self._process.wait()
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            future.set_exception(WorkerError(self._exit_message()))

    def _exit_message(self) -> str:
        return (
            f"the pipeline definition worker exited with code {self._process.poll()}; "
            "its error is printed above"
        )


_WORKER: DefinitionWorker | None = None
_BUILDS: dict[str, Future[BuiltDefinition]] = {}
_STATE_LOCK = threading.Lock()


def start_worker() -> None:
    """Starts the worker (idempotent), so the SDK import begins before the first build."""
    global _WORKER
    with _STATE_LOCK:
        if _WORKER is None:
            _WORKER = DefinitionWorker()
            atexit.register(_WORKER.close)


def build_definition_in_background(inputs: PipelineInputs) -> Future[BuiltDefinition]:
    """:func:`mlops.pipeline_definition.build_definition` in the worker; same inputs share
    one build.

    Invalid inputs raise here, at once; every other error (SDK, size limit) is raised by
    the future's ``result()``.
    """
    problems = inputs.problems()
    if problems:
        raise ValueError("Invalid PipelineInputs:\n  - " + "\n  - ".join(problems))
    start_worker()
    key = inputs.key()
    with _STATE_LOCK:
        if key not in _BUILDS:
            assert _WORKER is not None
            _BUILDS[key] = _WORKER.submit(inputs)
        return _BUILDS[key]


# --------------------------------------------------------------------------- worker side


def deny_network() -> None:
    """Makes every connection and DNS lookup of this process raise."""
    import socket

    def denied(*args: Any, **kwargs: Any) -> None:
        raise OSError(f"network access is disabled in the definition worker: {args!r}")

    socket.socket.connect = denied  # type: ignore[method-assign]
    socket.socket.connect_ex = denied  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = denied  # type: ignore[assignment]
    socket.create_connection = denied  # type: ignore[assignment]


def serve(requests: IO[str], replies: IO[str]) -> None:
    """Answers build requests until ``requests`` ends."""
    import gc
    import importlib

    from mlops.pipeline_definition import SDK_MODULES, build_definition
    from mlops.pipeline_sdk_env import offline_sdk

    gc.disable()  # short-lived, allocation-heavy, no cycles worth collecting
    # Any region will do for the import; each build sets its own.
    with offline_sdk(os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"):
        for module in SDK_MODULES:
            importlib.import_module(module)
    for line in requests:
        request = json.loads(line)
        reply: dict[str, Any] = {"id": request["id"]}
        try:
            built = build_definition(PipelineInputs(**request["inputs"]))
            reply.update(body=built.body, substitutions=built.substitutions)
        except Exception as error:  # sent back, raised in the app
            reply.update(error=type(error).__name__, message=str(error))
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    deny_network()
    serve(sys.stdin, sys.stdout)
    sys.stdout.flush()
    os._exit(0)  # skip the interpreter's teardown of the SDK's objects (~0.6 s)
