"""The hostile record corpus (tests/data/hostile/records.json)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

CORPUS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "data/hostile/records.json").read_text()
)["cases"]


def raw_value(case: dict[str, Any]) -> bytes:
    """A case's record value: ``text`` (UTF-8), ``b64`` (raw bytes) or ``repeat``."""
    if "b64" in case:
        return base64.b64decode(case["b64"])
    if "repeat" in case:
        r = case["repeat"]
        return (r["prefix"] + r["unit"] * r["times"] + r["suffix"]).encode()
    return str(case["text"]).encode()
