#!/bin/sh
# Entry point of every processing step on SageMaker. The step's code arrives as the zipped
# pipeline_steps/ directory (a CDK asset, stored under its hash) in
# /opt/ml/processing/input/source/; this unpacks it and runs the named script with the
# remaining arguments, so sibling modules (steplib/) import as they do locally.
#   usage: run_step.sh <script.py> [script arguments...]
# STEP_SOURCE_DIR replaces that directory when the step runs outside a container (tests).
set -eu
script="${1:?usage: run_step.sh <script.py> [arguments...]}"
shift
source_dir="${STEP_SOURCE_DIR:-/opt/ml/processing/input/source}"
work_dir=$(mktemp -d)
found=0
for archive in "$source_dir"/*.zip; do
    [ -e "$archive" ] || continue
    found=$((found + 1))
    python3 -m zipfile -e "$archive" "$work_dir"
done
if [ "$found" -ne 1 ]; then
    echo "run_step.sh: expected exactly one .zip in $source_dir, found $found" >&2
    exit 2
fi
if [ ! -f "$work_dir/$script" ]; then
    echo "run_step.sh: $script is not in the step source (have: $(ls "$work_dir" | tr '\n' ' '))" >&2
    exit 2
fi
cd "$work_dir"
exec python3 "$work_dir/$script" "$@"
