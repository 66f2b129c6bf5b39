"""A stand-in for the ``vllm`` package (a collaborator mock for machines without vLLM or a
GPU): ``LLM`` records how it was built and what it was asked to generate, and answers each
prompt within its constraint (the first legal choice; a JSON object with every required key).
:func:`install` puts it into ``sys.modules`` for one test."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


class SamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


class StructuredOutputsParams:
    """vLLM >= 0.10.2's constraint."""

    def __init__(
        self,
        choice: list[str] | None = None,
        json: dict[str, Any] | None = None,
        disable_any_whitespace: bool = False,
    ) -> None:
        self.choice, self.json, self.disable_any_whitespace = choice, json, disable_any_whitespace


@dataclass(frozen=True)
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class Call:
    prompts: list[Any]
    params: list[SamplingParams]
    lora_request: LoRARequest | None


@dataclass
class FakeVllm:
    tokenizer: Any
    #: Every ``LLM`` built, in order, as ``(kwargs, llm)``.
    engines: list[tuple[dict[str, Any], Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)


def _answer(params: SamplingParams) -> str:
    spec = params.kwargs["structured_outputs"]
    if spec.choice:
        return str(spec.choice[0])
    return json.dumps(dict.fromkeys(spec.json["required"], "x"), separators=(",", ":"))


def install(monkeypatch: pytest.MonkeyPatch, tokenizer: Any) -> FakeVllm:
    """Put the fake ``vllm`` (with ``sampling_params`` and ``lora.request``) into
    ``sys.modules``; its engines hand out ``tokenizer``."""
    fake = FakeVllm(tokenizer)

    class LLM:
        def __init__(self, **kwargs: Any) -> None:
            fake.engines.append((kwargs, self))

        def get_tokenizer(self) -> Any:
            return fake.tokenizer

        def generate(
            self,
            prompts: Sequence[Any],
            sampling_params: Sequence[SamplingParams],
            lora_request: LoRARequest | None = None,
            use_tqdm: bool = True,
        ) -> list[Any]:
            fake.calls.append(Call(list(prompts), list(sampling_params), lora_request))
            return [
                types.SimpleNamespace(
                    outputs=[types.SimpleNamespace(text=_answer(p), finish_reason="stop")]
                )
                for p in sampling_params
            ]

    vllm = types.ModuleType("vllm")
    vllm.LLM = LLM  # type: ignore[attr-defined]
    vllm.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    vllm.__version__ = "0.0.fake"  # type: ignore[attr-defined]
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = StructuredOutputsParams  # type: ignore[attr-defined]
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = LoRARequest  # type: ignore[attr-defined]
    for name, module in (
        ("vllm", vllm),
        ("vllm.sampling_params", sampling),
        ("vllm.lora", lora),
        ("vllm.lora.request", request),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    return fake


def write_adapter(folder: Path, r: int, **config: Any) -> Path:
    """A peft-shaped adapter folder of rank ``r`` (config only: the fake never reads weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": r, **config}))
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    return folder
