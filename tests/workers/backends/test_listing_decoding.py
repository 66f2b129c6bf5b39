"""LG's drafts decoded under the category's schema on SmolLM2-135M-Instruct: whatever the
prompt asks, every draft validates against its category's aspect schema."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from schemas.events import AspectSpec
from schemas.tasks import get_task
from tests.workers.backends.test_structured import BAD_PROMPTS, needs_smollm2, smollm2  # noqa: F401
from workers.backends.causal_lm import CausalLM
from workers.backends.structured import (
    LlmJsonExtractor,
    listing_json_schema,
    max_schema_tokens,
)

SHOES = [
    AspectSpec(name="Brand", required=True),
    AspectSpec(name="Colour", required=True, values=["Black", "White", "Off-white"]),
    AspectSpec(name="Size", values=["UK 5", "UK 6"]),
    AspectSpec(name="Material"),
]
MUGS = [
    AspectSpec(name="Capacity", required=True),
    AspectSpec(name="Dishwasher safe", values=["Yes", "No"]),
]
#: Two categories in one batch: each row gets its own grammar.
CATEGORIES = [SHOES if i % 2 == 0 else MUGS for i in range(len(BAD_PROMPTS))]


def test_the_token_bound_covers_the_longest_draft_the_grammar_allows(smollm2: CausalLM) -> None:  # noqa: F811
    import xgrammar as xgr

    extractor = LlmJsonExtractor(smollm2, max_value_chars=4)
    schema = listing_json_schema(SHOES, max_value_chars=4)
    grammar = extractor.schema_grammar(schema)
    assert extractor.schema_grammar(json.loads(json.dumps(schema))) is grammar
    tokenizer = smollm2.tokenizer

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(grammar)
        ids = tokenizer.encode(text, add_special_tokens=False)
        return all(matcher.accept_token(t) for t in ids) and matcher.accept_token(
            tokenizer.eos_token_id
        )

    face = "\N{GRINNING FACE}"
    longest = {
        "title": face * 80,
        "aspects": {"Brand": face * 4, "Colour": "Off-white", "Size": "UK 5", "Material": face * 4},
    }
    text = json.dumps(longest, ensure_ascii=False, separators=(",", ":"))
    assert accepts(text)
    assert max_schema_tokens(schema) == len(text.encode()) + 1
    required_only = {"title": "t", "aspects": {"Brand": "b", "Colour": "Black"}}
    assert accepts(json.dumps(required_only, separators=(",", ":")))
    for bad in (
        {"title": "t", "aspects": {"Brand": "b"}},
        {"title": "t", "aspects": {"Brand": "b", "Colour": "Red"}},
        {"title": "t", "aspects": {"Brand": "b", "Colour": "Black", "Heel": "x"}},
        {"aspects": {"Brand": "b", "Colour": "Black"}, "title": "t"},
    ):
        assert not accepts(json.dumps(bad, separators=(",", ":"))), bad
    with pytest.raises(ValueError, match="not a bounded schema"):
        max_schema_tokens({"type": "string"})


@needs_smollm2
def test_badly_prompted_drafts_validate_against_their_category(smollm2: CausalLM) -> None:  # noqa: F811
    """Prompts that ask for anything but a listing: every constrained draft still has the
    required aspects, only allowed ones, listed values where listed; free text mostly not."""
    extractor = LlmJsonExtractor(smollm2, max_value_chars=12)
    schemas = [listing_json_schema(aspects, 12) for aspects in CATEGORIES]
    texts = extractor.generate_json(BAD_PROMPTS, schemas, None)
    task = get_task("LG")
    for text, schema, aspects in zip(texts, schemas, CATEGORIES, strict=True):
        draft = json.loads(text)
        Draft202012Validator(schema).validate(draft)
        names = [a.name for a in aspects]
        assert {a.name for a in aspects if a.required} <= set(draft["aspects"]) <= set(names)
        for a in aspects:
            if a.values and a.name in draft["aspects"]:
                assert draft["aspects"][a.name] in a.values
        assert task.parse(text, names) == text, "the decoded text is already canonical"
    free = LlmJsonExtractor(smollm2, constrained=False, max_new_tokens=48)
    raw = free.generate_json(BAD_PROMPTS, schemas, None)
    valid = [_valid(t, s) for t, s in zip(raw, schemas, strict=True)]
    assert sum(valid) < len(raw), "free generation should miss the schema here"


def _valid(text: str, schema: dict[str, object]) -> bool:
    try:
        return Draft202012Validator(schema).is_valid(json.loads(text))
    except ValueError:
        return False
