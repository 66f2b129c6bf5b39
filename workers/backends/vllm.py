"""vLLM backends (optional ``[gpu]`` extra): an offline batched engine for captioning, option
scoring with choice-constrained decoding, and attribute extraction with JSON-Schema-constrained
decoding, both with multi-LoRA.

Adapters get immutable names (``generalist@v7``) and monotonic integer ids: reloading under a
reused name can serve stale prefix-cache blocks (a reported vLLM pitfall).

Constraints go through ``SamplingParams(structured_outputs=StructuredOutputsParams(...))`` on
vLLM versions that have it, ``SamplingParams(guided_decoding=GuidedDecodingParams(...))`` on
0.6-0.10; a vLLM with neither raises :class:`BackendUnavailable`.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schemas.tasks.prompts import concise_caption_prompt
from workers.backends.base import BackendUnavailable, CaptionInput, Choice
from workers.backends.structured import attribute_schema, max_json_tokens, parse_exact


def _vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise BackendUnavailable(
            "the vllm backend needs vLLM and a GPU: pip install 'caslie-stream[gpu]' on a CUDA "
            "machine, or use the transformers/ocr backends"
        ) from None
    return vllm


def constrained_params(vllm: Any, max_tokens: int, **constraint: Any) -> Any:
    """Greedy ``SamplingParams`` held to ``constraint`` (``choice=...``, ``json=...``), in the
    API this vLLM has. Options the installed version does not know
    (``disable_any_whitespace``) are left out."""
    params = importlib.import_module("vllm.sampling_params")
    for cls_name, field in (
        ("StructuredOutputsParams", "structured_outputs"),
        ("GuidedDecodingParams", "guided_decoding"),
    ):
        cls = getattr(params, cls_name, None)
        if cls is not None:
            known = inspect.signature(cls).parameters
            spec = {k: v for k, v in constraint.items() if k in known}
            return vllm.SamplingParams(
                temperature=0.0, max_tokens=max_tokens, **{field: cls(**spec)}
            )
    raise BackendUnavailable(
        f"vLLM {getattr(vllm, '__version__', '?')} has neither StructuredOutputsParams "
        "(structured_outputs=) nor GuidedDecodingParams (guided_decoding=): constrained "
        "decoding needs vLLM 0.6 or newer"
    )


class VllmCaptioner:
    """One image per prompt, with :func:`concise_caption_prompt`'s instruction. ``LLM.chat``
    renders and tokenizes the conversation itself: a BOS doubled there is vLLM's to avoid
    (fixed for multimodal chat in vllm-project/vllm#55288; older versions may double it)."""

    def __init__(self, model: str, max_new_tokens: int = 128, **engine: Any) -> None:
        vllm = _vllm()
        self.llm = vllm.LLM(model=model, limit_mm_per_prompt={"image": 1}, **engine)
        self.params = vllm.SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        self.name = f"vllm:{Path(model).name}"

    def caption(self, items: Sequence[CaptionInput]) -> list[str]:
        conversations = [
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_pil", "image_pil": item.image},
                        {"type": "text", "text": concise_caption_prompt(item.prompt)},
                    ],
                }
            ]
            for item in items
        ]
        outputs = self.llm.chat(conversations, self.params, use_tqdm=False)
        return [out.outputs[0].text.strip() for out in outputs]


class _LoraEngine:
    """A vLLM engine with multi-LoRA: adapters by immutable name, each with a fresh id."""

    def __init__(
        self, model: str, max_lora_rank: int = 16, max_loras: int = 4, **engine: Any
    ) -> None:
        vllm = _vllm()
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=model,
            enable_lora=True,
            max_lora_rank=max_lora_rank,
            max_loras=max_loras,
            **engine,
        )
        self.name = f"vllm:{Path(model).name}"
        self._ids = itertools.count(1)
        self._adapters: dict[str, Any] = {}

    def load_adapter(self, ref: str, path: Path) -> None:
        from vllm.lora.request import LoRARequest

        if ref not in self._adapters:
            self._adapters[ref] = LoRARequest(ref, next(self._ids), str(path))

    def unload_adapter(self, ref: str) -> None:
        """Forget a version: no request names it again, so vLLM's LoRA cache (``max_loras``
        slots, least recently used first) evicts it."""
        self._adapters.pop(ref, None)

    def _chat(self, prompts: Sequence[str], params: Sequence[Any], adapter: str | None) -> Any:
        conversations = [[{"role": "user", "content": p}] for p in prompts]
        lora = self._adapters.get(adapter) if adapter else None
        return self.llm.chat(conversations, list(params), lora_request=lora, use_tqdm=False)


class VllmOptionScorer(_LoraEngine):
    """Greedy decoding constrained to the legal labels: every answer is legal."""

    def choose(
        self, prompts: Sequence[str], labels: Sequence[Sequence[str]], adapter: str | None
    ) -> list[Choice]:
        params = [constrained_params(self._vllm, 4, choice=list(ls)) for ls in labels]
        outputs = self._chat(prompts, params, adapter)
        return [
            Choice(label=out.outputs[0].text.strip(), text=out.outputs[0].text) for out in outputs
        ]


class VllmJsonExtractor(_LoraEngine):
    """Attribute extraction with vLLM's JSON-Schema-constrained decoding (xgrammar by
    default, as :class:`~workers.backends.structured.LlmJsonExtractor` on transformers):
    every result has exactly the schema's keys. ``max_tokens`` is the schema's bound."""

    def __init__(
        self,
        model: str,
        max_value_chars: int = 64,
        max_lora_rank: int = 16,
        max_loras: int = 4,
        **engine: Any,
    ) -> None:
        super().__init__(model, max_lora_rank=max_lora_rank, max_loras=max_loras, **engine)
        self.max_value_chars = max_value_chars
        self._params: dict[tuple[str, ...], Any] = {}

    def params(self, keys: Sequence[str]) -> Any:
        """The sampling parameters of one key tuple, built once."""
        key = tuple(keys)
        if key not in self._params:
            self._params[key] = constrained_params(
                self._vllm,
                max_json_tokens(key, self.max_value_chars),
                json=attribute_schema(key, self.max_value_chars),
                disable_any_whitespace=True,
            )
        return self._params[key]

    def extract(
        self, prompts: Sequence[str], keys: Sequence[Sequence[str]], adapter: str | None
    ) -> list[dict[str, str]]:
        if len(prompts) != len(keys):
            raise ValueError(f"{len(prompts)} prompts but {len(keys)} key sets")
        outputs = self._chat(prompts, [self.params(k) for k in keys], adapter)
        results = []
        for out, k in zip(outputs, keys, strict=True):
            if out.outputs[0].finish_reason == "length":
                raise RuntimeError(
                    "vLLM cut an object at max_tokens: its grammar is not bounded as the schema's "
                    f"bound assumes (a backend other than xgrammar?): {out.outputs[0].text!r}"
                )
            results.append(parse_exact(out.outputs[0].text, k))
        return results
