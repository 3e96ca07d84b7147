#!/usr/bin/env python3
"""What each patch of SageMaker SDK internals saves, measured in one run.

``mlops/pipeline_sdk_env.py`` patches two SDK internals for the span of a build. Each
case runs in a fresh process with some patches replaced by no-ops, imports the SDK and
builds the three reference definitions (binary, multiclass, regression) of
tests/pipeline twice over (the second round shows the cost of a further model). Prints
seconds per case; asserts nothing. The cases run interleaved, each keeps its best round.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATCHES = (
    "_memoised_config_validation",
    "_no_throwaway_local_sessions",
    "_cached_endpoint_resolver",
)

CASE = """
import contextlib, json, sys, time
sys.path[:0] = [{root!r}, {helpers!r}]
from mlops import pipeline_sdk_env
for name in {disabled!r}:
    setattr(pipeline_sdk_env, name, contextlib.nullcontext)
t0 = time.perf_counter()
from mlops.pipeline_definition import SDK_MODULES, build_definition
import importlib
with pipeline_sdk_env.offline_sdk("us-east-1"):
    for module in SDK_MODULES:
        importlib.import_module(module)
t1 = time.perf_counter()
from pipeline_helpers import ALL_INPUTS
import dataclasses
times = []
for round_ in range(2):
    for key, inputs in ALL_INPUTS.items():
        inputs = dataclasses.replace(inputs, model_name=f"{{inputs.model_name}}-{{round_}}")
        start = time.perf_counter()
        build_definition(inputs)
        times.append(time.perf_counter() - start)
print(json.dumps({{"import": t1 - t0, "first": times[0], "further": sum(times[3:]) / 3}}))
"""


def run(disabled: tuple[str, ...]) -> dict[str, float]:
    code = CASE.format(root=str(ROOT), helpers=str(ROOT / "tests" / "pipeline"), disabled=disabled)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    cases = {"all patches": ()}
    cases.update({f"without {p.strip('_')}": (p,) for p in PATCHES})
    cases["no patches"] = PATCHES
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        for name, disabled in cases.items():
            measured = run(disabled)
            if name not in best or measured["further"] < best[name]["further"]:
                best[name] = measured
    print(f"{'case':<42}{'SDK import':>11}{'1st build':>11}{'each further':>14}")
    for name, m in best.items():
        print(f"{name:<42}{m['import']:>10.2f}s{m['first']:>10.2f}s{m['further']:>13.3f}s")


if __name__ == "__main__":
    main()
