"""Gateway bodies as the gateways send them (tests/fixtures/), and the wire encodings they may still hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parents[1] / "fixtures"
VERSIONS = ("2.3.6", "2.3.7", "2.4.0-rc2")  # the Evolution API versions tests/fixtures/evolution/ holds
SHAPES = ("image", "sticker", "document", "video", "voice", "location", "contact", "text_reply")


def fixture(name: str) -> dict[str, Any]:
    """A gateway body as the gateway sends it (the `_source` link dropped)."""
    body = json.loads((FIXTURES / f"{name}.json").read_text())
    body.pop("_source")
    return body


def encodings(value: Any, path: str = "") -> list[str]:
    """Paths still holding Evolution's wire encodings: byte objects ({"0":..}) or Longs ({low, high, unsigned})."""
    if isinstance(value, dict):
        if (value and all(k.isdigit() for k in value)) or value.keys() == {"low", "high", "unsigned"}:
            return [path]
        return [found for k, v in value.items() for found in encodings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [found for n, v in enumerate(value) for found in encodings(v, f"{path}[{n}]")]
    return []
