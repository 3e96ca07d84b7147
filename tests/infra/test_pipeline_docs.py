"""The committed pipeline diagrams match the definitions the app embeds."""

from __future__ import annotations

from typing import Any

from mlops.pipeline_docs import render


def test_pipeline_diagrams_are_current(default_stages: dict[str, Any]) -> None:
    pages = render(default_stages["dev"].training.pipelines)
    assert pages
    for path, text in pages.items():
        assert path.exists(), f"{path} is missing: run `make docs`"
        assert path.read_text() == text, f"{path} is stale: run `make docs`"
        for step in (
            "Preprocess",
            "Train",
            "Evaluate",
            "CheckQuality",
            "RegisterModel",
            "QualityFailed",
        ):
            assert step in text
