"""Tesseract on CPU: the OCR captioner (text lines plus dominant colours, ranked by the task
context) and the OCR reader (the OCR tokens of an image, in reading order).

The caption stays context-conditioned: OCR lines that share words with the task context
(title, query, question, review) come first, and only the most relevant are kept.

Both read an image through :class:`Tesseract`, which keeps the lines of the images it read
last: a captioner and a reader built on one :class:`Tesseract` run it once per image.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps

from workers.backends.base import BackendUnavailable, CaptionInput
from workers.lru import LruCache
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
#: Lines whose mean word confidence (0-100) is below this are dropped.
MIN_LINE_CONFIDENCE = 45.0
#: Two readings of one place (dark-on-light and inverted) overlap at least this much (IoU).
SAME_PLACE_IOU = 0.5
#: Who needs the binary, in the message when it is missing.
READER_NEEDS = "the OCR reader (captioner.ocr = 'tesseract'; 'none' turns it off)"
#: A word of digits in which Tesseract read some zeros as the letter O ("5OO", "1O.5").
_DIGITS_WITH_OS = re.compile(r"[0-9Oo.,]*[0-9][0-9Oo.,]*")


@dataclass(frozen=True)
class OcrLine:
    text: str
    confidence: float
    #: (left, top, right, bottom) in pixels of the image given (not the upscaled copy read).
    box: tuple[int, int, int, int]


def _tesseract(who: str = "the ocr captioner") -> str:
    path = shutil.which("tesseract")
    if path is None:
        raise BackendUnavailable(
            f"{who} needs Tesseract: apt-get install tesseract-ocr (Debian/Ubuntu)"
        )
    return path


def _word(text: str) -> str:
    return text.replace("O", "0").replace("o", "0") if _DIGITS_WITH_OS.fullmatch(text) else text


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def ocr_lines(image: Image.Image, binary: str) -> list[OcrLine]:
    """Lines of text with mean word confidence; reads dark-on-light and light-on-dark.

    One line per place: where both readings found a line (same text, or boxes overlapping by
    :data:`SAME_PLACE_IOU`), the more confident one is kept. Digits read as "O" become "0".
    """
    gray = ImageOps.autocontrast(image.convert("L"))
    scale = 1
    if max(gray.size) < 1000:
        scale = 2
        gray = gray.resize((gray.width * 2, gray.height * 2), Image.Resampling.LANCZOS)
    found: list[OcrLine] = []
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
        lines: dict[tuple[str, ...], list[tuple[str, float, tuple[int, int, int, int]]]] = {}
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
            left, top = int(row["left"]) // scale, int(row["top"]) // scale
            box = (left, top, left + int(row["width"]) // scale, top + int(row["height"]) // scale)
            lines.setdefault(key, []).append((_word(text), conf, box))
        for parts in lines.values():
            text = " ".join(t for t, _, _ in parts)
            conf = sum(c for _, c, _ in parts) / len(parts)
            if conf < MIN_LINE_CONFIDENCE or sum(ch.isalnum() for ch in text) < 2:
                continue
            boxes = [b for _, _, b in parts]
            line = OcrLine(
                text,
                conf,
                (
                    min(b[0] for b in boxes),
                    min(b[1] for b in boxes),
                    max(b[2] for b in boxes),
                    max(b[3] for b in boxes),
                ),
            )
            same = next(
                (
                    i
                    for i, seen in enumerate(found)
                    if seen.text.lower() == text.lower()
                    or _iou(seen.box, line.box) >= SAME_PLACE_IOU
                ),
                None,
            )
            if same is None:
                found.append(line)
            elif found[same].confidence < conf:
                found[same] = line
    return found


def reading_order(lines: Sequence[OcrLine]) -> list[OcrLine]:
    """Top to bottom, left to right: a line joins the row of the line above it when its
    vertical centre falls within that row's first line."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.box[1], ln.box[0])):
        centre = (line.box[1] + line.box[3]) / 2
        if rows and rows[-1][0].box[1] <= centre <= rows[-1][0].box[3]:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda ln: ln.box[0])]


def _digest(image: Image.Image) -> bytes:
    h = hashlib.sha256(f"{image.mode} {image.width}x{image.height}".encode())
    h.update(image.tobytes())
    return h.digest()


class Tesseract:
    """The Tesseract binary and the lines of the ``memo_size`` images it read last (keyed by
    pixel content), so every user of one instance runs Tesseract once per image."""

    def __init__(self, memo_size: int = 1024, who: str = "the ocr captioner") -> None:
        self.binary = _tesseract(who)
        self._memo: LruCache[bytes, tuple[OcrLine, ...]] = LruCache(memo_size)
        self._lock = threading.Lock()

    def lines(self, image: Image.Image) -> list[OcrLine]:
        key = _digest(image)
        with self._lock:
            known = self._memo.get(key)
        if known is not None:
            return list(known)
        lines = ocr_lines(image, self.binary)
        with self._lock:
            self._memo.put(key, tuple(lines))
        return lines

    def forget(self) -> None:
        """Drop the remembered lines (a timed run must not profit from an earlier one)."""
        with self._lock:
            self._memo.clear()


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

    def __init__(self, max_lines: int = 4, tesseract: Tesseract | None = None) -> None:
        self.tesseract = tesseract or Tesseract()
        self.max_lines = max_lines

    def caption(self, items: Sequence[CaptionInput]) -> list[str]:
        return [self._caption_one(item) for item in items]

    def forget(self) -> None:
        self.tesseract.forget()

    def _caption_one(self, item: CaptionInput) -> str:
        lines = self.tesseract.lines(item.image)
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


class TesseractReader:
    """OCR tokens: the confident, de-duplicated lines' words in reading order, at most
    ``max_words``; an image without readable text gives ``""``."""

    name = "tesseract"

    def __init__(self, max_words: int = 64, tesseract: Tesseract | None = None) -> None:
        if max_words < 1:
            raise ValueError("max_words must be at least 1")
        self.tesseract = tesseract or Tesseract(who=READER_NEEDS)
        self.max_words = max_words

    def read(self, images: Sequence[Image.Image]) -> list[str]:
        return [self._read_one(image) for image in images]

    def forget(self) -> None:
        self.tesseract.forget()

    def _read_one(self, image: Image.Image) -> str:
        lines = reading_order(self.tesseract.lines(image))
        words = [word for line in lines for word in line.text.split()]
        return " ".join(words[: self.max_words])
