"""Real Tesseract on a few generated claim photos: most brand names must read back."""

import shutil
from pathlib import Path

import pytest

from training.synthetic import generate
from training.synthetic.readback import readback

TESSERACT = shutil.which("tesseract")


@pytest.mark.skipif(TESSERACT is None, reason="tesseract-ocr not installed")
def test_tesseract_reads_most_brands_and_sizes_back(tmp_path: Path) -> None:
    assert TESSERACT is not None
    s = generate(tmp_path / "ocr", 8, seed=11, second_photo=0.0)
    rate = readback(s.claims, s.truth, TESSERACT)
    assert rate.photos == 8
    assert rate.printed["brand"] >= 6
    assert rate.rate("brand") >= 0.6, rate.summary()
    assert rate.rate("size") >= 0.5, rate.summary()
    assert rate.colour_listed >= 7, rate.summary()
