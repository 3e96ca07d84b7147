"""The test environment is pinned to the images the scripts run in (containers.json)."""

from __future__ import annotations

import json
from importlib import metadata

from steps_helpers import REPO


def pins() -> dict:
    out = {}
    for line in (REPO / "requirements-steps.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[name] = version
    return out


def test_requirements_match_container_libraries():
    images = json.loads((REPO / "pipeline_steps/containers.json").read_text())["images"]
    p = pins()
    for lib, version in images["sklearn"]["libraries"].items():
        assert p[lib] == version, lib
    assert p["xgboost-cpu"] == images["xgboost"]["libraries"]["xgboost"]


def test_installed_versions_are_the_pins():
    for name, version in pins().items():
        assert metadata.version(name) == version, name


def test_the_default_models_use_existing_schemas():
    models = json.loads((REPO / "cdk.json").read_text())["context"]["mlops"]["models"]
    for m in models:
        schema = json.loads((REPO / m["schemaFile"]).read_text())
        assert schema["target"]["name"] == m["targetColumn"]
