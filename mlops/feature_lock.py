"""What synth knows of deployed feature groups: ``feature-groups.lock.json``.

CloudFormation replaces a feature group (a new, empty group; the old one's records gone
with it, or kept orphaned under RETAIN with a name clash) when its record identifier,
event time, stores or an existing feature change. Synth cannot ask AWS what is deployed,
so the project keeps a lock file, committed, of each stage's deployed definitions:

    {"dev": {"breast-cancer-features": {"recordIdentifier": "record_id", ...}}}

``mlops lock-feature-groups [--stage NAME]`` writes it from the current config, after a
deploy. Config validation compares every configured group with its locked definition and
refuses a change that would replace it, naming the change and the way that keeps the data:
add features (new names) instead of renaming or retyping, or create a new group (a new
``name``) and retire the old one. A group or stage not in the lock is new: anything goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipeline_steps.steplib import contract

#: The lock file, relative to the project root.
LOCK_FILE = "feature-groups.lock.json"


def definition(
    schema: contract.Schema, *, online_store: bool, online_storage_type: str, offline_store: bool
) -> dict[str, Any]:
    """The parts of a feature group that CloudFormation can only change by replacing it."""
    return {
        "recordIdentifier": schema.record_id_column,
        "eventTime": schema.event_time_column,
        "features": contract.feature_definitions(schema),
        "onlineStore": online_store,
        "onlineStorageType": online_storage_type if online_store else None,
        "offlineStore": offline_store,
    }


def replacing_changes(deployed: Mapping[str, Any], proposed: Mapping[str, Any]) -> list[str]:
    """Each change from ``deployed`` to ``proposed`` that would replace the group."""
    changes = []
    for key, what in (
        ("recordIdentifier", "record identifier"), ("eventTime", "event time feature"),
        ("onlineStore", "online store"), ("onlineStorageType", "online storage type"),
        ("offlineStore", "offline store"),
    ):  # fmt: skip
        if deployed.get(key) != proposed.get(key):
            changes.append(f"{what} {deployed.get(key)!r} -> {proposed.get(key)!r}")
    old, new = deployed.get("features", {}), proposed.get("features", {})
    removed = [n for n in old if n not in new]
    retyped = [f"{n} {old[n]} -> {new[n]}" for n in old if n in new and old[n] != new[n]]
    if removed:
        changes.append(f"features removed or renamed: {removed}")
    if retyped:
        changes.append(f"features retyped: {retyped}")
    return changes


def read(path: Path) -> dict[str, dict[str, Any]]:
    """The lock's stages; empty when there is no lock file (nothing deployed yet)."""
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def write(path: Path, locked: Mapping[str, Mapping[str, Any]]) -> None:
    text = json.dumps(locked, indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
