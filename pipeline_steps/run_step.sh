#!/bin/sh
# Entry point of every processing step on SageMaker. The step's code arrives as the zipped
# pipeline_steps/ directory (a CDK asset, stored under its hash) in <source-dir>, a
# processing input; this unpacks it and runs the named script with the remaining
# arguments, so sibling modules (steplib/) import as they do locally.
#   usage: run_step.sh <source-dir> <script.py> [script arguments...]
# The pipeline definition passes <source-dir> (/opt/ml/processing/input/source), so every
# container path a step uses is written in the definition itself.
set -eu
source_dir="${1:?usage: run_step.sh <source-dir> <script.py> [arguments...]}"
script="${2:?usage: run_step.sh <source-dir> <script.py> [arguments...]}"
shift 2
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
