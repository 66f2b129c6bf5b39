"""The vLLM backend runs only where vLLM and a GPU are present."""

from __future__ import annotations

import importlib.util
import os

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
