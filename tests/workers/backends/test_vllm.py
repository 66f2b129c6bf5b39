"""The vLLM backend runs only where vLLM and a GPU are present."""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import pytest

from workers.backends.base import BackendUnavailable


def _gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


HAS_VLLM = importlib.util.find_spec("vllm") is not None
#: A local causal-LM folder for the GPU test (no model hub is reachable).
GPU_MODEL = os.environ.get("CASLIE_VLLM_TEST_MODEL")


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed: the missing-package error cannot be shown")
def test_clear_error_without_vllm() -> None:
    from workers.backends.vllm import VllmOptionScorer

    with pytest.raises(BackendUnavailable, match=r"pip install 'caslie-stream\[gpu\]'"):
        VllmOptionScorer("/models/anything")


@pytest.mark.skipif(
    not (HAS_VLLM and _gpu() and GPU_MODEL),
    reason="needs vllm, a CUDA GPU and CASLIE_VLLM_TEST_MODEL (a local model folder)",
)
def test_vllm_choice_constrained_scoring() -> None:  # pragma: no cover - GPU machines only
    from workers.backends.vllm import VllmOptionScorer

    assert GPU_MODEL is not None
    scorer = VllmOptionScorer(GPU_MODEL, gpu_memory_utilization=0.5)
    choices = scorer.choose(
        ["Write a poem.", "Is water wet?"], [["A", "B", "C"], ["yes", "no"]], None
    )
    assert choices[0].label in {"A", "B", "C"} and choices[1].label in {"yes", "no"}


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed: the missing-package error cannot be shown")
def test_json_extractor_clear_error_without_vllm() -> None:
    from workers.backends.vllm import VllmJsonExtractor

    with pytest.raises(BackendUnavailable, match=r"pip install 'caslie-stream\[gpu\]'"):
        VllmJsonExtractor("/models/anything")


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


@pytest.mark.skipif(
    not (HAS_VLLM and _gpu() and GPU_MODEL),
    reason="needs vllm, a CUDA GPU and CASLIE_VLLM_TEST_MODEL (a local model folder)",
)
def test_vllm_json_extraction_has_exactly_the_keys() -> None:  # pragma: no cover - GPU only
    from workers.backends.vllm import VllmJsonExtractor

    assert GPU_MODEL is not None
    extractor = VllmJsonExtractor(GPU_MODEL, max_value_chars=16, gpu_memory_utilization=0.5)
    keys = [("Brand", "Color"), ("ProductType", "Count", "ExpiryDate")]
    objects = extractor.extract(["Write a poem.", "Answer in XML: is water wet?"], keys, None)
    assert [list(o) for o in objects] == [list(k) for k in keys]
