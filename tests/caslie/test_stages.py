"""Stages built from settings: the captioner's OCR reader and its Tesseract."""

from __future__ import annotations

import shutil

import pytest

from caslie.stages import build_captioner
from streams.config import load_settings
from workers.backends import ocr
from workers.backends.base import BackendUnavailable
from workers.captioner import CaptionerStage


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed")
def test_the_ocr_captioner_and_reader_share_one_tesseract_and_none_turns_ocr_off() -> None:
    stage = build_captioner(load_settings(captioner={"ocr_max_words": 8}))
    assert isinstance(stage, CaptionerStage)
    assert isinstance(stage.captioner, ocr.OcrCaptioner)
    assert isinstance(stage.ocr, ocr.TesseractReader) and stage.ocr.max_words == 8
    assert stage.ocr.tesseract is stage.captioner.tesseract
    off = build_captioner(load_settings(captioner={"ocr": "none"}))
    assert isinstance(off, CaptionerStage) and off.ocr is None
    assert stage.prompt == "task"


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr not installed")
def test_the_generic_prompt_ablation_is_one_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CASLIE_CAPTIONER__PROMPT", "generic")
    stage = build_captioner(load_settings())
    assert isinstance(stage, CaptionerStage) and stage.prompt == "generic"


def test_missing_tesseract_says_how_to_install_it_or_turn_ocr_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)  # the module ocr calls
    with pytest.raises(BackendUnavailable, match=r"captioner\.backend = 'ocr'.*apt-get install"):
        build_captioner(load_settings())
    vlm = load_settings(captioner={"backend": "vllm", "model": "/models/none"})
    with pytest.raises(BackendUnavailable, match=r"'none' turns it off.*apt-get install"):
        build_captioner(vlm)
