"""JSON answers that always parse, for attribute extraction (AE) and listing drafts (LG):
greedy decoding held to a JSON Schema by xgrammar (the grammar engine vLLM uses by default, so
both paths agree).

Contract:

- :func:`attribute_schema`: an object with exactly ``keys``, all required, in that order, no
  other property, each value a string of at most ``max_value_chars`` characters.
- :func:`max_json_tokens`: the most tokens an object of that schema can take, stop token
  included. xgrammar's compact grammar (``","`` and ``":"`` separators: the form of
  :func:`schemas.tasks.answers.canonical_json`, so the text decoded is the text an adapter was
  trained on; no other whitespace,
  no escapes in bounded strings) gives at most ``len(skeleton) + keys * chars * 4`` UTF-8
  bytes, and every token of a byte-level tokenizer writes at least one byte: capped there,
  greedy decoding always finishes the object.
- :class:`LlmJsonExtractor` ``constrained=True``: every result is a dict with exactly the
  schema's keys whatever the prompt says; a broken invariant raises (a bug, never a model's
  failure). One grammar per key tuple, compiled once.
- ``constrained=False``: the paper's way, free greedy generation then :func:`parse_attributes`
  (lenient); ``{}`` where the text holds no object with every key, so the gain is measurable.
- :meth:`LlmJsonExtractor.generate_json`: the same decoding under any bounded schema
  (:func:`max_schema_tokens`), e.g. LG's :func:`listing_json_schema` of a category: the text
  of one JSON object that validates against it (constrained), or the free text.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.tasks.lg import listing_json_schema
from workers.backends.causal_lm import CausalLM

__all__ = [
    "LlmJsonExtractor",
    "attribute_schema",
    "listing_json_schema",
    "max_json_tokens",
    "max_schema_tokens",
    "parse_attributes",
    "parse_exact",
]

#: The most UTF-8 bytes one character takes.
_MAX_CHAR_BYTES = 4


def attribute_schema(keys: Sequence[str], max_value_chars: int = 64) -> dict[str, Any]:
    """JSON Schema of an attribute object: exactly ``keys``, string values bounded."""
    if not keys:
        raise ValueError("an attribute schema needs at least one key")
    if any(not isinstance(k, str) or not k for k in keys):
        raise ValueError(f"attribute keys must be non-empty strings: {list(keys)!r}")
    if len(set(keys)) != len(keys):
        raise ValueError(f"attribute keys repeat: {list(keys)!r}")
    if max_value_chars < 1:
        raise ValueError(f"max_value_chars must be positive, not {max_value_chars}")
    return {
        "type": "object",
        "properties": {k: {"type": "string", "maxLength": max_value_chars} for k in keys},
        "required": list(keys),
        "additionalProperties": False,
    }


def max_json_tokens(keys: Sequence[str], max_value_chars: int) -> int:
    """Upper bound on the tokens of an :func:`attribute_schema` object, stop token included."""
    # ensure_ascii: an escaped key (\\u00e9, 6 bytes) is never shorter than its UTF-8 form
    skeleton = json.dumps(dict.fromkeys(keys, ""), ensure_ascii=True, separators=(",", ":"))
    return len(skeleton.encode()) + len(keys) * max_value_chars * _MAX_CHAR_BYTES + 1


def max_schema_tokens(schema: Mapping[str, Any]) -> int:
    """Upper bound on the tokens of a compact JSON value of ``schema``, stop token included.
    Takes the bounded subset the extractors build: objects of known properties (every one
    counted present), strings with ``maxLength``, ``enum`` values; ``ValueError`` otherwise."""
    return _value_bytes(schema) + 1


def _value_bytes(schema: Mapping[str, Any]) -> int:
    if "enum" in schema:
        return max(
            len(json.dumps(v, ensure_ascii=True, separators=(",", ":"))) for v in schema["enum"]
        )
    if schema.get("type") == "string" and "maxLength" in schema:
        return 2 + int(schema["maxLength"]) * _MAX_CHAR_BYTES
    if schema.get("type") == "object" and schema.get("additionalProperties") is False:
        properties: Mapping[str, Any] = schema.get("properties", {})
        members = [
            len(json.dumps(k, ensure_ascii=True)) + 1 + _value_bytes(v)
            for k, v in properties.items()
        ]
        return 2 + sum(members) + max(len(members) - 1, 0)
    raise ValueError(f"not a bounded schema: {dict(schema)!r}")


def parse_exact(text: str, keys: Sequence[str]) -> dict[str, str]:
    """The object constrained decoding wrote; raises if it is not exactly ``keys`` -> str."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if (
        not isinstance(value, dict)
        or list(value) != list(keys)
        or not all(isinstance(v, str) for v in value.values())
    ):
        raise RuntimeError(f"constrained decoding broke its schema {list(keys)}: {text!r}")
    return value


def _norm(key: str) -> str:
    return re.sub(r"[^0-9a-z]", "", key.lower())


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def parse_attributes(text: str, keys: Sequence[str]) -> dict[str, str] | None:
    """Lenient parse of free text: the first JSON object in it (code fences, prose around it
    and key spelling ``product_type``/``Product Type`` forgiven) that has every key, values as
    text; extra keys dropped. ``None`` when there is none."""
    decoder = json.JSONDecoder()
    wanted = {_norm(k): k for k in keys}
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            value, _end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if not isinstance(value, dict):
            continue
        found = {wanted[_norm(k)]: _as_text(v) for k, v in value.items() if _norm(k) in wanted}
        if len(found) == len(keys):
            return {k: found[k] for k in keys}
    return None


class _GrammarRows:
    """xgrammar matchers for the rows of one micro-batch: ``mask`` (a logits processor) lets
    through only the tokens the grammar allows next; ``advance`` (a stopping criterion) feeds
    each row the token it chose and says which rows have finished their object."""

    def __init__(self, grammars: Sequence[Any], vocab_size: int) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        self.matchers = [xgr.GrammarMatcher(g) for g in grammars]
        self.bitmask = xgr.allocate_token_bitmask(len(grammars), vocab_size)

    def mask(self, input_ids: Any, scores: Any) -> Any:
        for i, matcher in enumerate(self.matchers):
            if not matcher.is_terminated():  # a finished row keeps its stop-token-only mask
                matcher.fill_next_token_bitmask(self.bitmask, i)
        self._xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device))
        return scores

    def advance(self, input_ids: Any, scores: Any, **_: Any) -> Any:
        import torch

        done = []
        for i, matcher in enumerate(self.matchers):
            if not matcher.is_terminated():
                token = int(input_ids[i, -1])
                if not matcher.accept_token(token):
                    raise RuntimeError(f"row {i}: token {token} is outside the grammar")
            done.append(matcher.is_terminated())
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def unfinished(self) -> list[int]:
        return [i for i, m in enumerate(self.matchers) if not m.is_terminated()]


class LlmJsonExtractor:
    """Attribute extraction on a transformers :class:`CausalLM`: batched greedy generation
    under the schema's grammar (``constrained``), or free generation parsed leniently."""

    def __init__(
        self,
        lm: CausalLM,
        constrained: bool = True,
        max_value_chars: int = 64,
        max_new_tokens: int | None = None,
    ) -> None:
        """``max_new_tokens``: the free path's cap (default: the schema's bound). The
        constrained path always takes the schema's bound, or it could cut an object short."""
        if constrained and max_new_tokens is not None:
            raise ValueError("constrained decoding takes its token budget from the schema")
        self.lm = lm
        self.name = lm.name
        self.constrained = constrained
        self.max_value_chars = max_value_chars
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()
        self._compiler: Any = None
        self._vocab_size = 0
        self._grammars: dict[str, Any] = {}

    def grammar(self, keys: Sequence[str]) -> Any:
        """xgrammar's compiled grammar of ``attribute_schema(keys)``, compiled once."""
        return self.schema_grammar(attribute_schema(tuple(keys), self.max_value_chars))

    def schema_grammar(self, schema: Mapping[str, Any]) -> Any:
        """xgrammar's compiled grammar of a JSON Schema, compiled once per schema (its text:
        the order of properties is the order the grammar writes them in)."""
        text = json.dumps(schema)
        with self._lock:
            if text not in self._grammars:
                self._grammars[text] = self._grammar_compiler().compile_json_schema(
                    text, any_whitespace=False, separators=(",", ":")
                )
            return self._grammars[text]

    def _grammar_compiler(self) -> Any:
        if self._compiler is None:
            import xgrammar as xgr

            # the logits' width, which may exceed the tokenizer's vocabulary (padding)
            self._vocab_size = int(self.lm.model.get_output_embeddings().weight.shape[0])
            info = xgr.TokenizerInfo.from_huggingface(
                self.lm.tokenizer, vocab_size=self._vocab_size
            )
            self._compiler = xgr.GrammarCompiler(info, max_threads=min(8, os.cpu_count() or 1))
        return self._compiler

    def texts(
        self, prompts: Sequence[str], keys: Sequence[Sequence[str]], adapter: str | None
    ) -> list[str]:
        """The raw generated texts (user messages ``prompts``, one key tuple each)."""
        if len(prompts) != len(keys):
            raise ValueError(f"{len(prompts)} prompts but {len(keys)} key sets")
        if not prompts:
            return []
        budget = max(max_json_tokens(k, self.max_value_chars) for k in keys)
        grammars = [self.grammar(k) for k in keys] if self.constrained else []
        return self._generate(prompts, grammars, budget, adapter)

    def generate_json(
        self, prompts: Sequence[str], schemas: Sequence[Mapping[str, Any]], adapter: str | None
    ) -> list[str]:
        """One JSON text per prompt (user messages ``prompts``, one bounded schema each):
        constrained, a single object that validates against its schema (raises otherwise: a
        bug); free, the generated text as it is."""
        if len(prompts) != len(schemas):
            raise ValueError(f"{len(prompts)} prompts but {len(schemas)} schemas")
        if not prompts:
            return []
        budget = max(max_schema_tokens(s) for s in schemas)
        grammars = [self.schema_grammar(s) for s in schemas] if self.constrained else []
        texts = self._generate(prompts, grammars, budget, adapter)
        if self.constrained:
            for text in texts:
                try:
                    value = json.loads(text)
                except ValueError:
                    value = None
                if not isinstance(value, dict):
                    raise RuntimeError(f"constrained decoding wrote no JSON object: {text!r}")
        return texts

    def _generate(
        self, prompts: Sequence[str], grammars: Sequence[Any], budget: int, adapter: str | None
    ) -> list[str]:
        """Greedy generation, under one grammar per prompt when ``constrained``."""
        full = [self.lm.prompt(p) for p in prompts]
        if not self.constrained:
            with self.lm.using(adapter):
                return self.lm.generate(full, self.max_new_tokens or budget)
        batches: list[_GrammarRows] = []

        def constrain(indices: Sequence[int]) -> Mapping[str, Any]:
            from transformers import LogitsProcessorList, StoppingCriteriaList

            rows = _GrammarRows([grammars[i] for i in indices], self._vocab_size)
            batches.append(rows)
            return {
                "logits_processor": LogitsProcessorList([rows.mask]),
                "stopping_criteria": StoppingCriteriaList([rows.advance]),
            }

        with self.lm.using(adapter):
            texts = self.lm.generate(full, budget, constrain=constrain)
        if cut := [i for rows in batches for i in rows.unfinished()]:
            raise RuntimeError(f"{len(cut)} objects unfinished after {budget} tokens")
        return texts

    def extract(
        self, prompts: Sequence[str], keys: Sequence[Sequence[str]], adapter: str | None
    ) -> list[dict[str, str]]:
        """One attribute object per prompt; ``{}`` where the free path's text did not parse."""
        texts = self.texts(prompts, keys, adapter)
        if self.constrained:
            return [parse_exact(t, k) for t, k in zip(texts, keys, strict=True)]
        return [parse_attributes(t, k) or {} for t, k in zip(texts, keys, strict=True)]
