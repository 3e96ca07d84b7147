#!/usr/bin/env python3
"""Synth time of the platform against the jsii/Node floor, measured in one run.

Each case runs in a fresh Python process and is timed end to end:
  empty      an App with one empty Stack: the floor (Python + jsii + Node start-up, and
             CDK's own template validation)
  default    `python app.py` exactly as `cdk synth` runs it (context in CDK_CONTEXT_JSON,
             output in CDK_OUTDIR): every stage of cdk.json, cdk-nag included
  models=N   the same, one stage with N copies of the first model (1, 20, 100)
  release    `python app.py -c release=true`: the release pipeline and every stage it
             releases (cdk.json's stages, released from their own account through a
             CodeConnections source, prod promoted from staging)

For the largest model count it also prints the largest template by size and by resource
count, against CloudFormation's limits (the platform keeps 20% headroom).

The cases run interleaved, round after round, so that a slow spell of a shared machine
hits every case alike; each case keeps its best round. Prints seconds and ratios;
asserts nothing.
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


def run(argv: list[str], extra_env: dict[str, str] | None = None) -> float:
    env = {
        **os.environ,
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        **(extra_env or {}),
    }
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
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


#: The release section the release case adds to cdk.json's config (one account and region).
RELEASE = {
    "region": "us-east-1",
    "source": {
        "connectionArn": "arn:aws:codeconnections:us-east-1:111111111111:connection/"
        "0f3c1a2b-1234-4abc-8def-0123456789ab",
        "repository": "my-org/mlops",
    },
    "waves": [["dev"], ["staging"], ["prod"]],
    "promotions": {"prod": "staging"},
}


def release_context() -> dict:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["mlops"]["release"] = RELEASE
    context["release"] = "true"
    return context


def release_case() -> float:
    with tempfile.TemporaryDirectory() as outdir:
        return run(
            [sys.executable, str(ROOT / "app.py")],
            {"CDK_CONTEXT_JSON": json.dumps(release_context()), "CDK_OUTDIR": outdir},
        )


def empty_case() -> float:
    with tempfile.TemporaryDirectory() as outdir:
        return run([sys.executable, "-c", EMPTY.format(outdir=outdir)])


LARGEST: dict[str, tuple[str, int]] = {}


def platform_case(count: int | None) -> float:
    """`python app.py` with the context and output directory the CDK CLI would pass."""
    sys.path.insert(0, str(ROOT))
    from constructs.template_budget import measure

    with tempfile.TemporaryDirectory() as outdir:
        elapsed = run(
            [sys.executable, str(ROOT / "app.py")],
            {"CDK_CONTEXT_JSON": json.dumps(context_with_models(count)), "CDK_OUTDIR": outdir},
        )
        if count is not None:
            sizes = {p.name: measure(p) for p in Path(outdir).rglob("*.template.json")}
            for kind in ("bytes", "resources", "outputs", "parameters"):
                name = max(sizes, key=lambda n, kind=kind: sizes[n][kind])
                LARGEST[f"{count}:{kind}"] = (name, sizes[name][kind])
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each case keeps its best")
    parser.add_argument("--models", default="1,20,100", help="model counts for the scaling cases")
    args = parser.parse_args()
    counts = [int(c) for c in args.models.split(",") if c]

    cases = {"empty": empty_case, "default": lambda: platform_case(None), "release": release_case}
    cases.update({f"models={n}": (lambda n=n: platform_case(n)) for n in counts})
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, case in cases.items():
            elapsed = case()
            best[name] = min(elapsed, best.get(name, elapsed))

    empty = best["empty"]
    print(f"{'case':<22}{'seconds':>9}{'x empty':>10}")
    print(f"{'empty app (floor)':<22}{empty:>9.2f}{1.0:>10.2f}")
    print(f"{'default app':<22}{best['default']:>9.2f}{best['default'] / empty:>10.2f}")
    print(f"{'release app':<22}{best['release']:>9.2f}{best['release'] / empty:>10.2f}")
    for n in counts:
        seconds = best[f"models={n}"]
        print(f"{f'dev stage, {n} models':<22}{seconds:>9.2f}{seconds / empty:>10.2f}")
    if len(counts) >= 2:
        low, high = min(counts), max(counts)
        per_model = (best[f"models={high}"] - best[f"models={low}"]) / (high - low)
        print(f"each added model: {per_model:.3f} s (from {low} to {high} models)")
    if counts:
        from constructs.template_budget import LIMITS

        high = max(counts)
        print(f"\nlargest templates at {high} models (CloudFormation limit; 80% budget):")
        for kind in ("bytes", "resources", "outputs", "parameters"):
            name, value = LARGEST[f"{high}:{kind}"]
            share = value / LIMITS[kind]
            print(f"  {kind:<11}{value:>10,} of {LIMITS[kind]:>9,} ({share:5.1%})  {name}")


if __name__ == "__main__":
    main()
