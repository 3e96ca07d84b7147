"""Fixtures for the pipeline-definition tests; shared helpers live in pipeline_helpers.py
(a unique module name: tests/infra has a conftest of its own)."""

from pipeline_helpers import *  # noqa: F403 - registers the fixtures
