"""CPU captioner: Tesseract OCR lines plus dominant colours, ranked by the task context.

The caption stays context-conditioned: OCR lines that share words with the task context
(title, query, question, review) come first, and only the most relevant are kept.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps

from workers.backends.base import BackendUnavailable, CaptionInput
from workers.text import overlap

COLOURS = {
    "black": (20, 20, 20),
    "white": (245, 245, 245),
    "grey": (128, 128, 128),
    "red": (200, 30, 30),
    "orange": (240, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 200),
    "purple": (130, 50, 160),
    "pink": (240, 150, 190),
    "brown": (120, 75, 40),
    "navy": (20, 30, 90),
    "teal": (20, 140, 140),
    "beige": (225, 210, 170),
}
MAX_WORDS = 50


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float


def _tesseract() -> str:
    path = shutil.which("tesseract")
    if path is None:
        raise BackendUnavailable(
            "the ocr captioner needs Tesseract: apt-get install tesseract-ocr (Debian/Ubuntu)"
        )
    return path


def ocr_lines(image: Image.Image, binary: str) -> list[OcrLine]:
    """Lines of text with mean word confidence; reads dark-on-light and light-on-dark."""
    gray = ImageOps.autocontrast(image.convert("L"))
    if max(gray.size) < 1000:
        gray = gray.resize((gray.width * 2, gray.height * 2), Image.Resampling.LANCZOS)
    found: dict[str, OcrLine] = {}
    for variant in (gray, ImageOps.invert(gray)):
        buf = io.BytesIO()
        variant.save(buf, format="PNG")
        result = subprocess.run(
            [binary, "stdin", "stdout", "--psm", "11", "tsv"],
            input=buf.getvalue(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"tesseract failed: {result.stderr.decode(errors='replace')[:200]}")
        lines: dict[tuple[str, ...], list[tuple[str, float]]] = {}
        rows = csv.DictReader(
            io.StringIO(result.stdout.decode(errors="replace")),
            delimiter="\t",
            quoting=csv.QUOTE_NONE,
        )
        for row in rows:
            text = (row.get("text") or "").strip()
            conf = float(row.get("conf") or -1)
            if row.get("level") != "5" or not text or conf < 0:
                continue
            key = (row["block_num"], row["par_num"], row["line_num"])
            lines.setdefault(key, []).append((text, conf))
        for parts in lines.values():
            text = " ".join(t for t, _ in parts)
            conf = sum(c for _, c in parts) / len(parts)
            if conf >= 45 and sum(ch.isalnum() for ch in text) >= 2:
                key_text = text.lower()
                if key_text not in found or found[key_text].confidence < conf:
                    found[key_text] = OcrLine(text, conf)
    return list(found.values())


def dominant_colours(image: Image.Image, top: int = 3) -> list[str]:
    small = image.convert("RGB").resize((64, 64))
    quant = small.quantize(colors=6, method=Image.Quantize.MEDIANCUT)
    palette = quant.getpalette() or []
    counts = sorted(quant.getcolors() or [], reverse=True)
    names: list[str] = []
    total = 64 * 64
    for count, index in counts:
        if count / total < 0.08 or not isinstance(index, int):
            continue
        rgb = tuple(int(v) for v in palette[index * 3 : index * 3 + 3])
        name = min(
            COLOURS, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOURS[n], rgb, strict=True))
        )
        if name not in names:
            names.append(name)
        if len(names) == top:
            break
    return names


class OcrCaptioner:
    """Tesseract text + colours; lines ranked by overlap with the task context."""

    name = "ocr-tesseract"

    def __init__(self, max_lines: int = 4) -> None:
        self._binary = _tesseract()
        self.max_lines = max_lines

    def caption(self, items: Sequence[CaptionInput]) -> list[str]:
        return [self._caption_one(item) for item in items]

    def _caption_one(self, item: CaptionInput) -> str:
        lines = ocr_lines(item.image, self._binary)
        context = list(item.context.values())
        ranked = sorted(
            lines, key=lambda ln: (overlap(ln.text, context), ln.confidence), reverse=True
        )
        kept = ranked[: self.max_lines]
        parts = []
        if kept:
            parts.append("Text on the product: " + ", ".join(f'"{ln.text}"' for ln in kept) + ".")
        colours = dominant_colours(item.image)
        if colours:
            parts.append("Dominant colours: " + ", ".join(colours) + ".")
        if not parts:
            return "No readable text; no dominant colour."
        caption_words = " ".join(parts).split()
        return " ".join(caption_words[:MAX_WORDS])
