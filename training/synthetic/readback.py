"""How much of a synthetic set the OCR captioner can read back: Tesseract (via
:func:`workers.backends.ocr.ocr_lines`) on claim photos (:func:`readback`) or listing photos
(:func:`listing_readback`), per printed field, and whether the item's colour is the first of
:func:`workers.backends.ocr.dominant_colours`.

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

from training.synthetic.items import CATEGORY_BY_NAME, print_text
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
        for name in [*FIELDS, *sorted(set(self.printed) - set(FIELDS))]:
            if self.printed[name]:
                out[name] = f"{self.read[name]}/{self.printed[name]} ({self.rate(name):.0%})"
        if self.photos:
            out["colour_first"] = f"{self.colour_first}/{self.photos}"
            out["colour_in_top3"] = f"{self.colour_listed}/{self.photos}"
        return out


def _path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def _ocr_text(url: str, tesseract: str) -> tuple[Image.Image, str]:
    image = Image.open(_path(url)).convert("RGB")
    return image, _norm(" ".join(line.text for line in ocr_lines(image, tesseract)))


def _count_colour(rate: ReadRate, image: Image.Image, colour: str) -> None:
    colours = dominant_colours(image)
    rate.colour_first += bool(colours) and colours[0] == colour
    rate.colour_listed += colour in colours


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
        image, text = _ocr_text(claim["images"][0]["url"], tesseract)
        delivered = facts["delivered"]
        rate.photos += 1
        for name in facts["shown"]:
            rate.printed[name] += 1
            if any(form in text for form in _forms(name, delivered[FIELDS[name]])):
                rate.read[name] += 1
        _count_colour(rate, image, delivered["colour"])
    return rate


def listing_readback(
    listings: Sequence[dict[str, Any]], references: Sequence[dict[str, Any]], tesseract: str
) -> ReadRate:
    """OCR the first photo of each listing and score its printed aspects (the brand and the
    shown ``print`` aspects, by their printed text) and its colour against its reference row;
    every photo of a listing prints the same aspects."""
    rate = ReadRate()
    for listing, ref in zip(listings, references, strict=True):
        image, text = _ocr_text(listing["images"][0]["url"], tesseract)
        category = CATEGORY_BY_NAME[ref["category"]]
        rate.photos += 1
        for name in ref["shown"]:
            if category.aspect(name).shown != "print":
                continue
            printed = print_text(name, ref["values"][name])
            rate.printed[name] += 1
            rate.read[name] += printed is not None and _norm(printed) in text
        _count_colour(rate, image, ref["values"]["Color"].lower())
    return rate
