"""How much of a synthetic set the OCR captioner can read back: Tesseract (via
:func:`workers.backends.ocr.ocr_lines`) on claim photos, per printed field, and whether the
pack's colour is the first of :func:`workers.backends.ocr.dominant_colours`.

A field counts as read when its canonical value, lower-cased with everything but letters and
digits removed ("500 ml" -> "500ml"), occurs in the photo's OCR text treated the same way. Only
fields the photo printed and damage left visible are scored.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image

from workers.backends.ocr import dominant_colours, ocr_lines

#: truth field name in ``shown`` -> key of the delivered product's facts.
FIELDS = {
    "brand": "brand",
    "type": "product_type",
    "size": "size",
    "count": "count",
    "gender": "gender",
    "expiry": "expiry",
}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _forms(name: str, value: Any) -> list[str]:
    """Normalised printed forms of a field's value (a count or gender alone is too short)."""
    if name == "count":
        return [f"{value}pack", f"x{value}", f"packof{value}", f"{value}count"]
    if name == "gender":
        return [f"for{_norm(str(value))}"]
    return [_norm(str(value))]


@dataclass
class ReadRate:
    """Per field: how many photos printed it and how many of those Tesseract read."""

    printed: Counter[str] = field(default_factory=Counter)
    read: Counter[str] = field(default_factory=Counter)
    photos: int = 0
    colour_first: int = 0
    colour_listed: int = 0

    def rate(self, name: str) -> float:
        return self.read[name] / self.printed[name] if self.printed[name] else 0.0

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"photos": self.photos}
        for name in FIELDS:
            if self.printed[name]:
                out[name] = f"{self.read[name]}/{self.printed[name]} ({self.rate(name):.0%})"
        if self.photos:
            out["colour_first"] = f"{self.colour_first}/{self.photos}"
            out["colour_in_top3"] = f"{self.colour_listed}/{self.photos}"
        return out


def _path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def readback(
    claims: Sequence[dict[str, Any]], truth: Sequence[dict[str, Any]], tesseract: str
) -> ReadRate:
    """OCR the first photo of each claim and score it against that claim's ``truth`` row.

    The score uses the first photo's own visible fields, re-derived from ``truth["shown"]``
    only when the claim has a single photo (with two photos the union could overstate).
    """
    rate = ReadRate()
    for claim, facts in zip(claims, truth, strict=True):
        if len(claim["images"]) != 1:
            continue
        image = Image.open(_path(claim["images"][0]["url"])).convert("RGB")
        text = _norm(" ".join(line.text for line in ocr_lines(image, tesseract)))
        delivered = facts["delivered"]
        rate.photos += 1
        for name in facts["shown"]:
            rate.printed[name] += 1
            if any(form in text for form in _forms(name, delivered[FIELDS[name]])):
                rate.read[name] += 1
        colours = dominant_colours(image)
        rate.colour_first += bool(colours) and colours[0] == delivered["colour"]
        rate.colour_listed += delivered["colour"] in colours
    return rate
