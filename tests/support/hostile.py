"""The hostile record corpus (tests/data/hostile/records.json) and hostile image URLs."""

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


#: Image URLs that pass the schema but that no fetch may act on; ``reason`` is in the error.
IMAGE_URLS: list[dict[str, str]] = [
    {
        "name": "port-out-of-range",
        "url": "http://127.0.0.1:99999/a.png",
        "reason": "malformed port",
    },
    {"name": "port-not-a-number", "url": "http://example.com:8o/a.png", "reason": "malformed port"},
    {"name": "negative-port", "url": "https://example.com:-1/a.png", "reason": "malformed port"},
    {
        "name": "label-over-63",
        "url": f"http://{'a' * 64}.example.com/a.png",
        "reason": "not valid",
    },
    {
        "name": "name-over-253",
        "url": "http://" + "a" * 60 + (".b" + "c" * 58) * 4 + ".com/a.png",
        "reason": "not valid",
    },
    {"name": "empty-label", "url": "http://a..example.com/a.png", "reason": "not valid"},
    {"name": "idna-invalid", "url": "http://\u200eexample.com/a.png", "reason": "not valid"},
    {
        "name": "nat64-metadata",
        "url": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "reason": "169.254.169.254",
    },
    {
        "name": "ipv4-compatible-metadata",
        "url": "http://[::a9fe:a9fe]/",
        "reason": "169.254.169.254",
    },
]
