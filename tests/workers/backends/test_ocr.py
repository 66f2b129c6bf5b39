"""The OCR captioner on real drawn images with Tesseract."""

from __future__ import annotations

import shutil

import pytest
from PIL import Image

from caslie.demo_data import draw_product
from workers.backends.base import CaptionInput
from workers.backends.ocr import OcrCaptioner, dominant_colours

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
