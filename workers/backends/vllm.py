"""vLLM backends (optional ``[gpu]`` extra): an offline batched engine for captioning, and
option scoring with choice-constrained decoding and multi-LoRA.

Adapters get immutable names (``generalist@v7``) and monotonic integer ids: reloading under a
reused name can serve stale prefix-cache blocks (a reported vLLM pitfall).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workers.backends.base import BackendUnavailable, CaptionInput, Choice
from workers.backends.vlm import CONCISE


def _vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise BackendUnavailable(
            "the vllm backend needs vLLM and a GPU: pip install 'caslie-stream[gpu]' on a CUDA "
            "machine, or use the transformers/ocr backends"
        ) from None
    return vllm


class VllmCaptioner:
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
                        {"type": "text", "text": CONCISE + item.prompt},
                    ],
                }
            ]
            for item in items
        ]
        outputs = self.llm.chat(conversations, self.params, use_tqdm=False)
        return [out.outputs[0].text.strip() for out in outputs]


class VllmOptionScorer:
    """Greedy decoding constrained to the legal labels: every answer is legal."""

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

    def _params(self, labels: Sequence[str]) -> Any:
        vllm = self._vllm
        sampling = vllm.SamplingParams
        try:
            from vllm.sampling_params import GuidedDecodingParams

            return sampling(
                temperature=0.0,
                max_tokens=4,
                guided_decoding=GuidedDecodingParams(choice=list(labels)),
            )
        except ImportError:  # newer vLLM
            from vllm.sampling_params import StructuredOutputsParams

            return sampling(
                temperature=0.0,
                max_tokens=4,
                structured_outputs=StructuredOutputsParams(choice=list(labels)),
            )

    def choose(
        self, prompts: Sequence[str], labels: Sequence[Sequence[str]], adapter: str | None
    ) -> list[Choice]:
        conversations = [[{"role": "user", "content": p}] for p in prompts]
        params = [self._params(ls) for ls in labels]
        lora = self._adapters.get(adapter) if adapter else None
        outputs = self.llm.chat(conversations, params, lora_request=lora, use_tqdm=False)
        return [
            Choice(label=out.outputs[0].text.strip(), text=out.outputs[0].text) for out in outputs
        ]
