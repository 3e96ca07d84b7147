#!/usr/bin/env python3
"""Synth time of the platform against the jsii/Node floor, measured in one run.

Each case runs in a fresh Python process (as `cdk synth` does) and is timed end to end:
  empty      an App with one empty Stack: the floor (Python + jsii + Node start-up)
  default    the default app from cdk.json: every stage, cdk-nag included
  models=N   one stage with N copies of the first model (1, 5, 20)

Prints seconds (best of --repeat) and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

EMPTY = """
import aws_cdk as cdk
app = cdk.App(outdir={outdir!r})
cdk.Stack(app, "Empty", env=cdk.Environment(region="us-east-1"))
app.synth()
"""

PLATFORM = """
import json, sys
sys.path.insert(0, {root!r})
import aws_cdk as cdk
import app as platform_app
context = json.loads({context!r})
app = cdk.App(context=context, outdir={outdir!r},
              post_cli_context={{platform_app.FAIL_ON_FINDINGS: True}})
platform_app.build(app)
app.synth()
"""


def run(code: str) -> float:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"benchmark case failed:\n{result.stderr[-3000:]}")
    return elapsed


def context_with_models(count: int | None) -> dict:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    if count is None:
        return context
    mlops = context["mlops"]
    first = mlops["models"][0]
    mlops["models"] = [{**first, "name": f"{first['name']}-{i}"} for i in range(count)]
    mlops["featureGroups"] = []
    context["stages"] = "dev"
    return context


def best(code_for_outdir, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as outdir:
            times.append(run(code_for_outdir(outdir)))
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; the best is kept")
    parser.add_argument("--models", default="1,5,20", help="model counts for the scaling cases")
    args = parser.parse_args()

    def platform(count: int | None):
        context = json.dumps(context_with_models(count))
        return lambda outdir: PLATFORM.format(root=str(ROOT), context=context, outdir=outdir)

    empty = best(lambda outdir: EMPTY.format(outdir=outdir), args.repeat)
    default = best(platform(None), args.repeat)
    print(f"{'case':<22}{'seconds':>9}{'x empty':>10}")
    print(f"{'empty app (floor)':<22}{empty:>9.2f}{1.0:>10.2f}")
    print(f"{'default app':<22}{default:>9.2f}{default / empty:>10.2f}")
    counts = [int(c) for c in args.models.split(",") if c]
    timings = {}
    for count in counts:
        timings[count] = best(platform(count), args.repeat)
        print(f"{f'dev stage, {count} models':<22}{timings[count]:>9.2f}{timings[count] / empty:>10.2f}")
    if len(counts) >= 2:
        low, high = min(counts), max(counts)
        per_model = (timings[high] - timings[low]) / (high - low)
        print(f"each added model: {per_model:.3f} s (from {low} to {high} models)")


if __name__ == "__main__":
    main()
