"""Stages built from settings: the captioner's OCR reader and its Tesseract; the vLLM
predictor's one engine and its adapters (on the stand-in ``vllm`` of tests/support)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from caslie.stages import _served_lora_rank, build_captioner, build_predictor
from streams.artifacts.registry import AdapterRegistry, AdapterVersion
from streams.artifacts.storage import LocalStorage
from streams.config import PredictorSettings, Settings, load_settings
from tests.support.fake_vllm import install, write_adapter
from tests.support.tiny_vlm import needs_smollm2
from training.retrain import announce
from workers.adapters import AdapterWatcher
from workers.backends import ocr
from workers.backends.base import BackendUnavailable
from workers.captioner import CaptionerStage
from workers.models import smollm2_folder
from workers.predictor import PredictorStage

CACHE = Path.home() / ".cache" / "caslie"


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


def _publish(registry: AdapterRegistry, folder: Path, name: str, r: int) -> AdapterVersion:
    return registry.publish(name, write_adapter(folder, r), "smollm2")


@needs_smollm2
@pytest.mark.kafka
def test_the_vllm_predictor_serves_registry_versions_on_one_engine(
    kafka_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One ``vllm.LLM`` behind both the option scorer and the JSON extractor, built for the
    largest rank of the served adapters' current versions (24 -> max_lora_rank 32); the
    watcher loads the announced versions into it as ``name@vN`` with fresh ids."""
    from transformers import AutoTokenizer

    from workers.backends.vllm import LoraEngine, VllmJsonExtractor, VllmOptionScorer

    fake = install(monkeypatch, AutoTokenizer.from_pretrained(smollm2_folder(CACHE)))
    registry = AdapterRegistry(LocalStorage(tmp_path / "registry"))
    _publish(registry, tmp_path / "g1", "generalist", 8)
    generalist = _publish(registry, tmp_path / "g2", "generalist", 24)
    registry.set_current("generalist", generalist.version)
    sa = _publish(registry, tmp_path / "s1", "sa", 16)
    registry.set_current("sa", sa.version)
    announce(kafka_settings, generalist)
    announce(kafka_settings, sa)
    settings = kafka_settings.model_copy(
        update={
            "cache_dir": tmp_path / "cache",
            "predictor": PredictorSettings(
                model=str(tmp_path),  # the stand-in engine reads no weights
                backend="vllm",
                registry=str(tmp_path / "registry"),
                task_adapters={"SA": "sa"},
            ),
        }
    )
    stage = build_predictor(settings)
    assert isinstance(stage, PredictorStage) and isinstance(stage.adapters, AdapterWatcher)
    try:
        assert stage.ready(60)
        [(kwargs, _llm)] = fake.engines
        assert (kwargs["model"], kwargs["max_lora_rank"]) == (str(tmp_path), 32)
        assert isinstance(stage.scorer, VllmOptionScorer)
        assert isinstance(stage.extractor, VllmJsonExtractor)
        engine = stage.scorer.engine
        assert isinstance(engine, LoraEngine)
        assert stage.extractor.engine is engine and stage.adapters.lm is engine
        requests = [engine._adapters[ref] for ref in ("generalist@v2", "sa@v1")]
        assert sorted(r.lora_int_id for r in requests) == [1, 2]
        assert [r.lora_name for r in requests] == ["generalist@v2", "sa@v1"]
    finally:
        stage.adapters.stop.set()


def test_a_vllm_engine_takes_its_rank_from_the_setting_over_the_registry(
    tmp_path: Path,
) -> None:
    registry = AdapterRegistry(LocalStorage(tmp_path / "registry"))
    version = _publish(registry, tmp_path / "g1", "generalist", 24)
    registry.set_current("generalist", version.version)
    cache = tmp_path / "cache"
    served = load_settings(predictor={"backend": "vllm"})
    assert _served_lora_rank(served, registry, cache) == 24
    fixed = load_settings(predictor={"backend": "vllm", "vllm_max_lora_rank": 64})
    assert _served_lora_rank(fixed, registry, cache) == 64
    bare = load_settings(predictor={"backend": "vllm", "default_adapter": "base"})
    assert _served_lora_rank(bare, registry, cache) == 16  # nothing published to serve


def test_the_vllm_predictor_refuses_the_free_decoding_paths() -> None:
    for free in ({"decoding": "generate"}, {"json_decoding": "free"}):
        with pytest.raises(ValueError, match="decodes under constraints only"):
            load_settings(predictor={"backend": "vllm", **free})
