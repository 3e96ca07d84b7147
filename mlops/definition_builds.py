"""Pipeline definitions built on the second core while CDK synthesizes.

Importing the SageMaker SDK (~2 s) and rendering a definition (~0.05-0.3 s) is pure Python
work that needs nothing from CDK. :func:`start` forks one worker process of a stdlib
:class:`~concurrent.futures.ProcessPoolExecutor` before the app imports CDK, and the worker
imports the SDK while the app's main thread drives the jsii kernel (a thread would compete
with that main thread for the GIL; measured in docs/adr/0002). :func:`submit` returns a
future of :func:`mlops.pipeline_definition.build_definition`; equal inputs share one build.

The worker denies itself sockets and DNS before importing the SDK, so a synth that would
reach out fails loudly instead.

Without :func:`start` (tests, a process that imported CDK already, a platform without
``fork``), builds run in the calling process, when submitted.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from mlops.pipeline_definition import (
    BuiltDefinition,
    PipelineInputs,
    build_definition,
    lookup_image_uri,
)

__all__ = ["deny_network", "image_uri", "start", "stop", "submit"]

_EXECUTOR: ProcessPoolExecutor | None = None
_BUILDS: dict[str, Future[BuiltDefinition]] = {}
_IMAGES: dict[tuple[str, ...], Future[str]] = {}
_LOCK = threading.Lock()


def start() -> bool:
    """Starts the build worker if it is still safe to fork; returns whether it runs.

    Forking is safe only while this process has no other threads and has not started the
    jsii kernel (``aws_cdk`` not imported): call it first thing in ``app.py``.
    """
    global _EXECUTOR
    with _LOCK:
        if _EXECUTOR is not None:
            return True
        if not fork_is_safe():
            return False
        _EXECUTOR = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_prepare_worker,
        )
        # With fork, the worker process starts at the first submit: now.
        _EXECUTOR.submit(os.getpid)
        return True


def fork_is_safe() -> bool:
    """Whether this process may fork the worker: the platform has ``fork``, and there is
    no other thread and no jsii kernel yet (``aws_cdk`` not imported)."""
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and "aws_cdk" not in sys.modules
        and threading.active_count() == 1
    )


def stop() -> None:
    """Ends the worker now, without waiting for builds (a synth that stopped early, e.g.
    on a config error, would otherwise wait at exit for the SDK import to finish)."""
    global _EXECUTOR
    with _LOCK:
        executor, _EXECUTOR = _EXECUTOR, None
        _BUILDS.clear()
        _IMAGES.clear()
    if executor is None:
        return
    # ProcessPoolExecutor.terminate_workers() is Python 3.14+; its worker processes are
    # in _processes on every version this project supports.
    for process in list(getattr(executor, "_processes", {}).values()):
        process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


def submit(inputs: PipelineInputs) -> Future[BuiltDefinition]:
    """The definition of ``inputs``, built in the worker (or here, without one).

    Invalid inputs raise ``ValueError`` here, at once; every other error (SDK, size limit,
    a dead worker) is raised by the future's ``result()``.
    """
    problems = inputs.problems()
    if problems:
        raise ValueError("Invalid PipelineInputs:\n  - " + "\n  - ".join(problems))
    key = inputs.key()
    with _LOCK:
        if key not in _BUILDS:
            _BUILDS[key] = (
                _EXECUTOR.submit(build_definition, inputs)
                if _EXECUTOR is not None
                else _built_here(inputs)
            )
        return _BUILDS[key]


def image_uri(framework: str, region: str, version: str = "", scope: str = "") -> Future[str]:
    """A SageMaker image's URI from the SDK's offline tables, looked up in the worker (the
    SDK's import is the worker's; ``version``/``scope`` empty for images without them)."""
    key = (framework, region, version, scope)
    with _LOCK:
        if key not in _IMAGES:
            if _EXECUTOR is not None:
                _IMAGES[key] = _EXECUTOR.submit(lookup_image_uri, *key)
            else:
                future: Future[str] = Future()
                try:
                    future.set_result(lookup_image_uri(*key))
                except Exception as error:  # raised by result(), as from the worker
                    future.set_exception(error)
                _IMAGES[key] = future
        return _IMAGES[key]


def _built_here(inputs: PipelineInputs) -> Future[BuiltDefinition]:
    future: Future[BuiltDefinition] = Future()
    try:
        future.set_result(build_definition(inputs))
    except Exception as error:  # raised by result(), as from the worker
        future.set_exception(error)
    return future


def deny_network() -> None:
    """Makes every connection and DNS lookup of this process raise ``OSError``."""
    import socket

    def denied(*args: Any, **kwargs: Any) -> None:
        raise OSError(f"network access is disabled while building definitions: {args!r}")

    socket.socket.connect = denied  # type: ignore[method-assign]
    socket.socket.connect_ex = denied  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = denied  # type: ignore[assignment]
    socket.create_connection = denied  # type: ignore[assignment]


def _prepare_worker() -> None:
    """In the worker: no network, no cyclic GC (short-lived, allocation-heavy), SDK imported."""
    import importlib

    from mlops.pipeline_definition import SDK_MODULES
    from mlops.pipeline_sdk_env import offline_sdk

    deny_network()
    gc.disable()
    # Any region will do for the import; each build sets its own.
    with offline_sdk(os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"):
        for module in SDK_MODULES:
            importlib.import_module(module)
