"""The OCR captioner and OCR reader on real drawn images with Tesseract."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from caslie.demo_data import draw_product
from workers.backends.base import CaptionInput
from workers.backends.ocr import (
    OcrCaptioner,
    OcrLine,
    Tesseract,
    TesseractReader,
    dominant_colours,
    reading_order,
)

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr not installed"
)


def test_caption_mentions_drawn_text_dark_on_light_and_light_on_dark(tmp_path) -> None:  # type: ignore[no-untyped-def]
    captioner = OcrCaptioner()
    items = []
    for name, bg, fg in (
        ("light", (250, 250, 250), (10, 10, 10)),
        ("dark", (20, 30, 90), (250, 250, 250)),
    ):
        path = tmp_path / f"{name}.png"
        draw_product(path, "ACME", "STEEL KETTLE", bg, fg)
        items.append(
            CaptionInput(Image.open(path).convert("RGB"), "caption it", {"title": "Acme kettle"})
        )
    light, dark = captioner.caption(items)
    for caption in (light, dark):
        assert "ACME" in caption and "STEEL KETTLE" in caption
        assert len(caption.split()) <= 50
    assert "navy" in dark


def test_lines_relevant_to_the_context_come_first(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.png"
    draw_product(path, "VOLTIX", "USB-C 65W", (250, 250, 250), (10, 10, 10))
    image = Image.open(path).convert("RGB")
    captioner = OcrCaptioner(max_lines=1)
    [about_brand] = captioner.caption([CaptionInput(image, "p", {"title": "Voltix charger"})])
    [about_power] = captioner.caption([CaptionInput(image, "p", {"query": "65w usb-c charger"})])
    assert "VOLTIX" in about_brand and "65W" not in about_brand
    assert "65W" in about_power and "VOLTIX" not in about_power


def test_dominant_colours() -> None:
    assert dominant_colours(Image.new("RGB", (50, 50), (200, 30, 30))) == ["red"]


def test_reader_tokens_are_the_drawn_words_once_each(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Both readings (dark-on-light, inverted) find "500 ml"; one reads its zeros as "O".
    path = tmp_path / "p.png"
    draw_product(path, "ACME", "500 ml", (250, 250, 250), (10, 10, 10))
    image = Image.open(path).convert("RGB")
    blank = Image.new("RGB", (200, 100), (250, 250, 250))
    tesseract = Tesseract()
    assert TesseractReader(tesseract=tesseract).read([image, blank]) == ["ACME 500 ml", ""]
    assert TesseractReader(max_words=2, tesseract=tesseract).read([image]) == ["ACME 500"]


def test_reading_order_is_rows_top_to_bottom_then_left_to_right() -> None:
    right = OcrLine("RIGHT", 90, (300, 22, 400, 58))
    left = OcrLine("LEFT", 90, (20, 20, 120, 60))
    below = OcrLine("BELOW", 90, (10, 100, 110, 140))
    assert [ln.text for ln in reading_order([below, right, left])] == ["LEFT", "RIGHT", "BELOW"]


def test_captioner_and_reader_sharing_tesseract_run_it_once_per_image(
    tmp_path: Path, tesseract_runs: list[list[str]]
) -> None:
    path = tmp_path / "p.png"
    draw_product(path, "ACME", "500 ml", (250, 250, 250), (10, 10, 10))
    image = Image.open(path).convert("RGB")
    item = CaptionInput(image, "caption it", {"title": "Acme water"})
    runs = tesseract_runs
    shared = Tesseract()
    [caption] = OcrCaptioner(tesseract=shared).caption([item])
    [tokens] = TesseractReader(tesseract=shared).read([image])
    assert "ACME" in caption and tokens == "ACME 500 ml"
    assert len(runs) == 2  # one reading of the image: dark-on-light and inverted
    OcrCaptioner().caption([item])
    TesseractReader().read([image])
    assert len(runs) == 6  # apart, each reads it again
