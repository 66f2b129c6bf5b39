"""vLLM backends (optional ``[gpu]`` extra): an offline batched engine for captioning, option
scoring with choice-constrained decoding, and attribute extraction with JSON-Schema-constrained
decoding, the last two on one :class:`LoraEngine` with multi-LoRA (``predictor.backend =
"vllm"``).

Adapters get immutable names (``generalist@v7``) and monotonic integer ids: reloading under a
reused name can serve stale prefix-cache blocks (a reported vLLM pitfall).

Adapters on ``lm_head`` (the paper's) load only where the vLLM version and the architecture
register ``lm_head`` as a LoRA module (``embedding_modules``) and skip the
``lm_head.base_layer`` weights peft saves beside it: refused in vllm-project/vllm#9280
(``lm_head.weight is unsupported LoRA weight``), #21500 (Qwen2.5-VL), #32599 (Llama-3.2,
``lm_head.base_layer.weight``), #48934 (Qwen3.5, fixed by #48850; Qwen2/3 in the open #33234).
Adapters for this backend are therefore trained on the projection layers only
(:func:`training.lora.target_modules`).

Constraints go through ``SamplingParams(structured_outputs=StructuredOutputsParams(...))`` on
vLLM versions that have it, ``SamplingParams(guided_decoding=GuidedDecodingParams(...))`` on
0.6-0.10; a vLLM with neither raises :class:`BackendUnavailable`.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas.tasks.prompts import concise_caption_prompt
from workers.backends.base import BackendUnavailable, CaptionInput, Choice
from workers.backends.prompt_form import DEFAULT_CUTOFF, prompt_ids, render, resolve_form
from workers.backends.structured import (
    attribute_schema,
    max_json_tokens,
    max_schema_tokens,
    parse_exact,
)


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


#: The ``max_lora_rank`` values vLLM accepts (``MaxLoRARanks`` in ``vllm/config/lora.py``;
#: the 1 of recent versions is left out, so every value works on older ones too).
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def lora_rank_slot(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that serves adapters of rank ``rank``."""
    for slot in LORA_RANKS:
        if slot >= rank:
            return slot
    raise ValueError(f"LoRA rank {rank} exceeds vLLM's largest max_lora_rank {LORA_RANKS[-1]}")


def adapter_rank(folder: Path) -> int:
    """A peft adapter's LoRA rank: ``r`` of its ``adapter_config.json``, or the largest
    per-module rank of its ``rank_pattern``."""
    config = json.loads((folder / "adapter_config.json").read_text())
    return max([int(config["r"]), *(int(r) for r in (config.get("rank_pattern") or {}).values())])


class LoraEngine:
    """One vLLM engine with multi-LoRA, shared by a predictor's option scorer and JSON
    extractor (one copy of the weights, one KV cache).

    Adapters go by immutable name (``generalist@v7``), each with a fresh id. vLLM sizes its
    LoRA buffers by ``max_lora_rank`` at start (rounded up to a value it accepts): an adapter
    of a larger rank is refused at :meth:`load_adapter` with the setting that serves it.
    """

    def __init__(
        self,
        model: str,
        max_lora_rank: int = 16,
        max_loras: int = 4,
        prompt_format: str = "auto",
        cutoff: int = DEFAULT_CUTOFF,
        **engine: Any,
    ) -> None:
        """``prompt_format`` and ``cutoff`` as ``predictor.prompt_format`` and
        ``predictor.cutoff``: the prompt text and truncation of the transformers path
        (:mod:`workers.backends.prompt_form`)."""
        vllm = _vllm()
        self.vllm = vllm
        self.max_lora_rank = lora_rank_slot(max_lora_rank)
        # the tokenizer prompt_form renders with: vLLM's own Mistral tokenizer mode has
        # neither the chat template nor the encode() the transformers path uses
        engine.setdefault("tokenizer_mode", "hf")
        self.llm = vllm.LLM(
            model=model,
            enable_lora=True,
            max_lora_rank=self.max_lora_rank,
            max_loras=max_loras,
            **engine,
        )
        self.name = f"vllm:{Path(model).name}"
        config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        hf_config = getattr(config, "hf_config", None)
        self.prompt_form = resolve_form(
            prompt_format, getattr(hf_config, "model_type", None), Path(model).name
        )
        self.cutoff = cutoff
        self._ids = itertools.count(1)
        self._adapters: dict[str, Any] = {}

    def load_adapter(self, ref: str, path: Path) -> None:
        """Serve the adapter in ``path`` as ``ref`` (loading a known ref does nothing).
        vLLM reads the weights at the first request that names it."""
        from vllm.lora.request import LoRARequest

        if ref in self._adapters:
            return
        rank = adapter_rank(path)
        if rank > self.max_lora_rank:
            raise ValueError(
                f"{ref} has LoRA rank {rank} but this vLLM engine serves ranks up to "
                f"{self.max_lora_rank} (max_lora_rank, fixed at start): set "
                f"predictor.vllm_max_lora_rank = {lora_rank_slot(rank)} and restart"
            )
        self._adapters[ref] = LoRARequest(ref, next(self._ids), str(path))

    def unload_adapter(self, ref: str) -> None:
        """Forget a version: no request names it again, so vLLM's LoRA cache (``max_loras``
        slots, least recently used first) evicts it."""
        self._adapters.pop(ref, None)

    def generate(
        self,
        user_messages: Sequence[str],
        params: Sequence[Any],
        adapter: str | None,
        answer_budget: int,
    ) -> list[Any]:
        """The one way prompts reach the engine: each user message rendered in the
        predictor's prompt form and fitted to the cutoff with ``answer_budget`` tokens left for
        the answer, by the rule the transformers path uses
        (:func:`~workers.backends.prompt_form.render`,
        :func:`~workers.backends.prompt_form.prompt_ids`: token ids without added special
        tokens, the form wrote them), generated under its ``params`` with adapter ``adapter``
        (``None``: the bare base model). The budget is what the answer may take (a choice:
        :data:`CHOICE_TOKENS`; an object: its schema's bound), so a prompt cut here keeps a
        few tokens less than the transformers scorer's, whose budget is the one token it
        reads."""
        if adapter is not None and adapter not in self._adapters:
            raise KeyError(f"adapter {adapter} is not loaded")
        if not user_messages:
            return []
        tokenizer = self.llm.get_tokenizer()
        prompts = [
            {
                "prompt_token_ids": prompt_ids(
                    tokenizer,
                    render(tokenizer, message, self.prompt_form),
                    answer_budget,
                    self.cutoff,
                )
            }
            for message in user_messages
        ]
        lora = self._adapters[adapter] if adapter is not None else None
        outputs: list[Any] = self.llm.generate(
            prompts, list(params), lora_request=lora, use_tqdm=False
        )
        return outputs


#: Most tokens a choice-constrained answer takes (an option letter or yes/no).
CHOICE_TOKENS = 4


class VllmOptionScorer:
    """Greedy decoding constrained to the legal labels: every answer is legal."""

    def __init__(self, engine: LoraEngine) -> None:
        self.engine = engine
        self.name = engine.name

    def choose(
        self, prompts: Sequence[str], labels: Sequence[Sequence[str]], adapter: str | None
    ) -> list[Choice]:
        params = [
            constrained_params(self.engine.vllm, CHOICE_TOKENS, choice=list(ls)) for ls in labels
        ]
        outputs = self.engine.generate(prompts, params, adapter, CHOICE_TOKENS)
        return [
            Choice(label=out.outputs[0].text.strip(), text=out.outputs[0].text) for out in outputs
        ]


class VllmJsonExtractor:
    """Attribute extraction with vLLM's JSON-Schema-constrained decoding (xgrammar by
    default, as :class:`~workers.backends.structured.LlmJsonExtractor` on transformers):
    every result has exactly the schema's keys. ``max_tokens`` is the schema's bound."""

    def __init__(self, engine: LoraEngine, max_value_chars: int = 64) -> None:
        self.engine = engine
        self.name = engine.name
        self.max_value_chars = max_value_chars
        self._params: dict[tuple[str, ...], Any] = {}

    def params(self, keys: Sequence[str]) -> Any:
        """The sampling parameters of one key tuple, built once."""
        key = tuple(keys)
        if key not in self._params:
            self._params[key] = constrained_params(
                self.engine.vllm,
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
        budget = max((max_json_tokens(k, self.max_value_chars) for k in keys), default=1)
        outputs = self.engine.generate(prompts, [self.params(k) for k in keys], adapter, budget)
        results = []
        for out, k in zip(outputs, keys, strict=True):
            if out.outputs[0].finish_reason == "length":
                raise RuntimeError(
                    "vLLM cut an object at max_tokens: its grammar is not bounded as the schema's "
                    f"bound assumes (a backend other than xgrammar?): {out.outputs[0].text!r}"
                )
            results.append(parse_exact(out.outputs[0].text, k))
        return results

    def generate_json(
        self, prompts: Sequence[str], schemas: Sequence[Mapping[str, Any]], adapter: str | None
    ) -> list[str]:
        """One JSON text per prompt under its schema (LG's drafts): vLLM's guided JSON with
        the schema as it is, ``max_tokens`` its bound (:func:`max_schema_tokens`)."""
        if len(prompts) != len(schemas):
            raise ValueError(f"{len(prompts)} prompts but {len(schemas)} schemas")
        if not prompts:
            return []
        params = [
            constrained_params(
                self.engine.vllm, max_schema_tokens(s), json=dict(s), disable_any_whitespace=True
            )
            for s in schemas
        ]
        budget = max(max_schema_tokens(s) for s in schemas)
        outputs = self.engine.generate(prompts, params, adapter, budget)
        texts = [out.outputs[0].text for out in outputs]
        if cut := [
            t
            for out, t in zip(outputs, texts, strict=True)
            if out.outputs[0].finish_reason == "length"
        ]:
            raise RuntimeError(f"vLLM cut {len(cut)} drafts at max_tokens: {cut[0]!r}")
        return texts
