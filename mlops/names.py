"""How config names become construct IDs (no CDK or config imports: constructs use it too)."""

from __future__ import annotations


def pascal_case(name: str) -> str:
    """Turns a kebab-case config name into the PascalCase used in construct IDs."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("-"))
