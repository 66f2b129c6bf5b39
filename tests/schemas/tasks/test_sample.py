"""The uniM3 sample is the authors' MMECInstruct form (CASLIE's load_data.py, template.py and
eCeLLM's prompter): their input keys, json.dumps text, null for a rejected caption, SR's
``item + ' ' + caption``, the options as their JSON list."""

from __future__ import annotations

import json

import pytest

from schemas import TaskRequest
from schemas.tasks import CASLIE_TASKS
from schemas.tasks.registry import get_task
from schemas.tasks.sa import SA_OPTIONS
from schemas.tasks.sample import CAPTION_KEY, InstructionSample


def build_sample(request, kept, captioned=()):  # type: ignore[no-untyped-def]
    return get_task(request.task).assemble(request, kept, None, captioned)


def _sa(review: str = "love it") -> TaskRequest:
    return TaskRequest(
        request_id="r", task="SA", inputs={"review": review}, options=list(SA_OPTIONS)
    )


#: One request per CASLIE task, and the keys of the authors' input (template.py, eCeLLM's AP).
REQUESTS = {
    "AP": ({"question": "q", "document": "d"}, [], ["question", "document"]),
    "CC": ({"title": "t"}, ["A: Mugs", "B: Cups"], ["title"]),
    "PRP": ({"title1": "a", "title2": "b"}, ["A: x", "B: y", "C: z"], ["product 1", "product 2"]),
    "PSI": ({"query": "mug", "title": "t"}, [], ["query", "product title"]),
    "MPC": ({"query": "mug", "title": "t"}, ["A: e", "B: s"], ["query", "product title"]),
    "SA": ({"review": "love it"}, list(SA_OPTIONS), ["review"]),
}


def _request(code: str) -> TaskRequest:
    inputs, options, _ = REQUESTS[code]
    return TaskRequest(request_id="r", task=code, inputs=inputs, options=options)


@pytest.mark.parametrize("code", sorted(REQUESTS))
def test_inputs_use_the_authors_keys(code: str) -> None:
    sample = build_sample(_request(code), {})
    assert isinstance(sample.input, dict)
    assert list(sample.input) == REQUESTS[code][2]


def test_kept_caption_is_merged_rejected_is_null_and_uncaptioned_adds_nothing() -> None:
    caption = "a smiling customer holding a mug"
    kept = build_sample(_sa(), {"review": caption}, {"review"})
    assert kept.input == {"review": "love it", CAPTION_KEY: caption}
    rejected = build_sample(_sa(), {}, {"review"})
    assert rejected.input_text() == f'{{"review": "love it", "{CAPTION_KEY}": null}}'
    assert build_sample(_sa(), {}).input == {"review": "love it"}


def test_input_text_is_json_dumps_with_its_defaults() -> None:
    sample = build_sample(_sa('café "best" mug'), {})
    assert sample.input_text() == json.dumps({"review": 'café "best" mug'})
    assert sample.input_text() == '{"review": "caf\\u00e9 \\"best\\" mug"}'


def test_mistral_prompt_form() -> None:
    prompt = build_sample(_sa(), {}).mistral_prompt()
    assert prompt.startswith("[INST] Below is an instruction that describes a task")
    assert "### Input:\n" + json.dumps({"review": "love it"}) + "\n\n" in prompt
    assert "### Options:\n" + json.dumps(list(SA_OPTIONS)) + "\n\n [/INST]" in prompt
    assert prompt.endswith(" [/INST] ### Response:\n")
    assert "### Options" not in build_sample(_request("AP"), {}).mistral_prompt()


def test_prp_captions_each_product_under_its_own_key() -> None:
    sample = build_sample(_request("PRP"), {"product2": "blue"}, {"product1", "product2"})
    assert sample.input == {
        "product 1": "a",
        "product 2": "b",
        "product 1 information extracted from image": None,
        "product 2 information extracted from image": "blue",
    }


def _sr() -> TaskRequest:
    return TaskRequest(
        request_id="r",
        task="SR",
        inputs={"history": ["h1", "h2"], "candidates": ["c1", "c2"]},
        options=["A: c1", "B: c2"],
    )


def test_sr_is_a_bare_list_with_kept_captions_appended() -> None:
    captioned = {"history/0", "history/1", "option/A", "option/B"}
    sample = build_sample(_sr(), {"history/1": "red", "option/B": "green"}, captioned)
    assert sample.input == ["1st: h1", "2nd: h2 red"]
    assert sample.options == ["A: c1", "B: c2 green"]
    assert sample.input_text() == '["1st: h1", "2nd: h2 red"]'
    assert get_task("SR").caption_slots(sample.input, sample.options) == [
        "history/0",
        "history/1",
        "option/A",
        "option/B",
    ]


@pytest.mark.parametrize("code", CASLIE_TASKS)
def test_without_captions_undoes_with_captions(code: str) -> None:
    request = _sr() if code == "SR" else _request(code)
    task = get_task(code)
    text_only = build_sample(request, {})
    slots = task.caption_slots(text_only.input, text_only.options)
    kept = {slot: f"caption of {slot}" for slot in slots[1:]}  # the first one rejected
    merged = build_sample(request, kept, slots)
    assert merged != text_only
    assert task.without_captions(merged, kept) == text_only
    again = task.with_captions(text_only.input, text_only.options, kept, slots)
    assert again == merged and isinstance(again, InstructionSample)
