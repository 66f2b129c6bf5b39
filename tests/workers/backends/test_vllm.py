"""The vLLM backend: its wiring (one engine, adapter names and ids, the engine's LoRA rank,
the prompts it gets) against a stand-in ``vllm`` package (tests/support/fake_vllm.py); the
real engine only where vLLM, a GPU and ``CASLIE_VLLM_TEST_MODEL`` are present."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from schemas.events import ClaimEvent, ProductEvent, parse_query
from schemas.records import Caption, EnrichedRecord, Prediction, SlotVerdict
from schemas.tasks.ae import DEFAULT_KEYS
from schemas.tasks.registry import get_task
from schemas.tasks.resolving import MemoryTables
from streams.stage import Emit, Inbound
from tests.support.fake_vllm import install, write_adapter
from tests.support.tiny_vlm import needs_smollm2
from training.lora import target_modules
from workers.backends.base import BackendUnavailable
from workers.models import smollm2_folder
from workers.predictor import PredictorStage


def _gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


HAS_VLLM = importlib.util.find_spec("vllm") is not None
#: A local causal-LM folder for the GPU test (no model hub is reachable).
GPU_MODEL = os.environ.get("CASLIE_VLLM_TEST_MODEL")
CACHE = Path.home() / ".cache" / "caslie"


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed: the missing-package error cannot be shown")
def test_clear_error_without_vllm() -> None:
    from workers.backends.vllm import LoraEngine

    with pytest.raises(BackendUnavailable, match=r"pip install 'caslie-stream\[gpu\]'"):
        LoraEngine("/models/anything")


class _Params:
    """Stands in for vLLM's SamplingParams: records its keywords."""

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs


class _New:
    """StructuredOutputsParams' shape (vLLM >= 0.10.2)."""

    def __init__(self, json: object = None, disable_any_whitespace: bool = False) -> None:
        self.json, self.disable_any_whitespace = json, disable_any_whitespace


class _Old:
    """GuidedDecodingParams before ``disable_any_whitespace`` existed (vLLM 0.6-0.7)."""

    def __init__(self, json: object = None, choice: object = None) -> None:
        self.json, self.choice = json, choice


@pytest.mark.parametrize(
    ("classes", "field"),
    [
        ({"StructuredOutputsParams": _New, "GuidedDecodingParams": _Old}, "structured_outputs"),
        ({"GuidedDecodingParams": _Old}, "guided_decoding"),
        ({}, None),
    ],
)
def test_constraint_goes_through_the_api_this_vllm_has(
    monkeypatch: pytest.MonkeyPatch, classes: dict[str, type], field: str | None
) -> None:
    from workers.backends.vllm import constrained_params

    monkeypatch.setitem(sys.modules, "vllm.sampling_params", types.SimpleNamespace(**classes))
    vllm = types.SimpleNamespace(SamplingParams=_Params, __version__="0.x")
    schema = {"type": "object"}
    if field is None:
        with pytest.raises(BackendUnavailable, match="neither StructuredOutputsParams"):
            constrained_params(vllm, 10, json=schema, disable_any_whitespace=True)
        return
    params = constrained_params(vllm, 10, json=schema, disable_any_whitespace=True)
    assert params.kwargs["temperature"] == 0.0 and params.kwargs["max_tokens"] == 10
    spec = params.kwargs[field]
    assert spec.json == schema
    # an option the installed version lacks is left out, not passed to a TypeError
    assert getattr(spec, "disable_any_whitespace", None) is (
        True if field == "structured_outputs" else None
    )


def test_max_lora_rank_rounds_up_to_a_value_vllm_accepts() -> None:
    from workers.backends.vllm import lora_rank_slot

    assert [lora_rank_slot(r) for r in (1, 8, 9, 16, 24, 48, 300, 512)] == [
        8, 8, 16, 16, 32, 64, 320, 512,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="exceeds vLLM's largest max_lora_rank 512"):
        lora_rank_slot(513)


def test_an_adapters_rank_is_its_largest_module_rank(tmp_path: Path) -> None:
    from workers.backends.vllm import adapter_rank

    assert adapter_rank(write_adapter(tmp_path / "plain", 16)) == 16
    assert adapter_rank(write_adapter(tmp_path / "mixed", 8, rank_pattern={"o_proj": 24})) == 24


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_folder(CACHE))


@needs_smollm2
def test_adapters_get_immutable_names_and_fresh_ids_within_the_engines_rank(
    monkeypatch: pytest.MonkeyPatch, tokenizer: Any, tmp_path: Path
) -> None:
    from workers.backends.vllm import LoraEngine

    fake = install(monkeypatch, tokenizer)
    engine = LoraEngine(str(tmp_path), max_lora_rank=24)
    [(kwargs, _llm)] = fake.engines
    assert (kwargs["enable_lora"], kwargs["max_lora_rank"]) == (True, 32)
    engine.load_adapter("g@v1", write_adapter(tmp_path / "g1", 16))
    engine.load_adapter("g@v2", write_adapter(tmp_path / "g2", 32))
    engine.load_adapter("g@v1", tmp_path / "g2")  # a ref names one version for good
    engine.unload_adapter("g@v1")
    engine.load_adapter("g@v1", tmp_path / "g1")  # back after an unload: a new id
    with pytest.raises(ValueError, match=r"rank 48 .* predictor.vllm_max_lora_rank = 64"):
        engine.load_adapter("big@v1", write_adapter(tmp_path / "big", 48))
    requests = {ref: engine._adapters[ref] for ref in ("g@v1", "g@v2")}
    assert [(r.lora_name, r.lora_int_id) for r in requests.values()] == [("g@v1", 3), ("g@v2", 2)]
    assert requests["g@v1"].lora_path == str(tmp_path / "g1")


@needs_smollm2
def test_scorer_and_extractor_send_the_chat_prompt_through_one_engine(
    monkeypatch: pytest.MonkeyPatch, tokenizer: Any, tmp_path: Path
) -> None:
    """Both prompt the engine with the tokens the transformers path reads (the chat prompt,
    no special tokens added twice) and name the adapter's request; ``None`` is the base."""
    from workers.backends.causal_lm import CausalLM
    from workers.backends.vllm import LoraEngine, VllmJsonExtractor, VllmOptionScorer

    fake = install(monkeypatch, tokenizer)
    engine = LoraEngine(str(tmp_path))
    engine.load_adapter("g@v1", write_adapter(tmp_path / "g1", 8))
    scorer, extractor = VllmOptionScorer(engine), VllmJsonExtractor(engine, max_value_chars=8)
    choices = scorer.choose(["Pick one.", "Is it?"], [["B", "C"], ["yes", "no"]], "g@v1")
    objects = extractor.extract(["Read the brand."], [("Brand", "Color")], None)
    assert [c.label for c in choices] == ["B", "yes"]
    assert objects == [{"Brand": "x", "Color": "x"}]
    assert len(fake.engines) == 1
    assert fake.engines[0][0]["tokenizer_mode"] == "hf"  # the tokenizer prompt_form renders with
    scored, extracted = fake.calls
    chat = CausalLM("smollm2", CACHE, model=object(), tokenizer=tokenizer).chat_prompt
    assert scored.prompts == [
        {"prompt_token_ids": tokenizer.encode(chat(m), add_special_tokens=False)}
        for m in ("Pick one.", "Is it?")
    ]
    assert scored.lora_request is not None and scored.lora_request.lora_name == "g@v1"
    assert [p.kwargs["structured_outputs"].choice for p in scored.params] == [
        ["B", "C"],
        ["yes", "no"],
    ]
    assert extracted.lora_request is None
    assert extracted.params[0].kwargs["structured_outputs"].json["required"] == ["Brand", "Color"]
    with pytest.raises(KeyError, match="g@v2 is not loaded"):
        scorer.choose(["Pick one."], [["A", "B"]], "g@v2")


@needs_smollm2
def test_the_engine_prompts_in_the_predictors_form_and_cutoff(
    monkeypatch: pytest.MonkeyPatch, tokenizer: Any, tmp_path: Path
) -> None:
    """``mistral_raw`` and the cutoff reach vLLM as they reach the transformers path: the
    same rendered text, cut from the left by the same rule."""
    from workers.backends.prompt_form import prompt_ids, render
    from workers.backends.vllm import CHOICE_TOKENS, LoraEngine, VllmOptionScorer

    fake = install(monkeypatch, tokenizer)
    engine = LoraEngine(str(tmp_path), prompt_format="mistral_raw", cutoff=12)
    VllmOptionScorer(engine).choose(["### Instruction:\nPick one."], [["A", "B"]], None)
    [call] = fake.calls
    text = render(tokenizer, "### Instruction:\nPick one.", "mistral_raw")
    assert "[INST] Below is an instruction" in text
    expected = prompt_ids(tokenizer, text, CHOICE_TOKENS, 12)
    assert call.prompts == [{"prompt_token_ids": expected}]
    assert len(expected) == 12 - CHOICE_TOKENS  # cut: the whole prompt is longer


def _claim_record(task: str) -> Inbound:
    product = ProductEvent(product_id="p1", title="Acme shampoo 500 ml")
    claim = ClaimEvent(
        claim_id="c1",
        product_id="p1",
        text="The bottle leaked.",
        images=[{"url": "https://cdn.example/c1.png"}],
    )
    query = parse_query({"request_id": f"r-{task}", "task": task, "claim_id": "c1"})
    request = get_task(task).resolve(query, MemoryTables({"p1": product}, claims={"c1": claim}))
    record = EnrichedRecord.model_validate(
        {
            **request.model_dump(),
            "captions": [Caption(slot="claim/0", text="a blue bottle", ocr_tokens="ACME 500 ml")],
            "verdicts": [SlotVerdict(slot="claim/0", keep=True, mode="uia")],
        }
    )
    return Inbound("caslie.enriched", 0, 0, None, record, b"")


@pytest.mark.skipif(
    not (HAS_VLLM and _gpu() and GPU_MODEL),
    reason="needs vllm, a CUDA GPU and CASLIE_VLLM_TEST_MODEL (a local model folder)",
)
def test_vllm_predictor_answers_on_one_engine_with_an_adapter(
    tmp_path: Path,
) -> None:  # pragma: no cover - GPU machines only
    """Choice-constrained scoring and JSON extraction on one engine, bare and then through the
    predictor with an adapter of rank 24 on the projections (what ``caslie retrain`` trains
    for vLLM): every answer legal, every object exactly its keys."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from workers.backends.vllm import LoraEngine, VllmJsonExtractor, VllmOptionScorer

    assert GPU_MODEL is not None
    engine = LoraEngine(GPU_MODEL, max_lora_rank=24, gpu_memory_utilization=0.5)
    assert engine.max_lora_rank == 32
    scorer, extractor = VllmOptionScorer(engine), VllmJsonExtractor(engine, max_value_chars=16)
    choices = scorer.choose(
        ["Write a poem.", "Is water wet?"], [["A", "B", "C"], ["yes", "no"]], None
    )
    assert choices[0].label in {"A", "B", "C"} and choices[1].label in {"yes", "no"}
    keys = [("Brand", "Color"), ("ProductType", "Count", "ExpiryDate")]
    objects = extractor.extract(["Write a poem.", "Answer in XML: is water wet?"], keys, None)
    assert [list(o) for o in objects] == [list(k) for k in keys]

    base = AutoModelForCausalLM.from_pretrained(GPU_MODEL)
    lora = LoraConfig(r=24, target_modules=list(target_modules("vllm")), init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(str(tmp_path / "g"))
    engine.load_adapter("g@v1", tmp_path / "g")
    stage = PredictorStage(
        scorer, resolve_adapter=lambda _name: "g@v1", default_adapter="g", extractor=extractor
    )
    dd, ae = stage.process([_claim_record("DD"), _claim_record("AE")])
    assert isinstance(dd, Emit) and isinstance(ae, Emit)
    yes_no, obj = dd.outputs[0].value, ae.outputs[0].value
    assert isinstance(yes_no, Prediction) and isinstance(obj, Prediction)
    assert yes_no.label in {"yes", "no"} and yes_no.adapter == "g@v1"
    assert list(obj.answer or {}) == list(DEFAULT_KEYS) and obj.adapter == "g@v1"
