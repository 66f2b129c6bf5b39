from __future__ import annotations

from schemas import TaskRequest
from schemas.tasks.registry import get_task
from schemas.tasks.sa import SA_OPTIONS
from schemas.tasks.sample import CAPTION_KEY


def build_sample(request, kept):  # type: ignore[no-untyped-def]
    return get_task(request.task).assemble(request, kept)


def _sa() -> TaskRequest:
    return TaskRequest(
        request_id="r", task="SA", inputs={"review": "love it"}, options=list(SA_OPTIONS)
    )


def test_kept_caption_goes_into_input_and_rejected_is_left_out() -> None:
    kept = build_sample(_sa(), {"review": "a smiling customer holding a mug"})
    assert kept.input == {"review": "love it", CAPTION_KEY: "a smiling customer holding a mug"}
    dropped = build_sample(_sa(), {})
    assert dropped.input == {"review": "love it"}


def test_mistral_prompt_form() -> None:
    prompt = build_sample(_sa(), {}).mistral_prompt()
    assert prompt.startswith("[INST] Below is an instruction that describes a task")
    assert "### Options:\nA: very positive\nB: positive" in prompt
    assert prompt.endswith(" [/INST] ### Response:\n")
    binary = TaskRequest(request_id="r", task="AP", inputs={"question": "q", "document": "d"})
    assert "### Options" not in build_sample(binary, {}).mistral_prompt()


def test_prp_and_sr_caption_placement() -> None:
    prp = TaskRequest(
        request_id="r",
        task="PRP",
        inputs={"title1": "a", "title2": "b"},
        options=["A: x", "B: y", "C: z"],
    )
    sample = build_sample(prp, {"product2": "blue"})
    assert sample.input == {
        "product 1 title": "a",
        "product 2 title": "b",
        "product 2 information extracted from image": "blue",
    }
    sr = TaskRequest(
        request_id="r",
        task="SR",
        inputs={"history": ["h1", "h2"], "candidates": ["c1", "c2"]},
        options=["A: c1", "B: c2"],
    )
    sample = build_sample(sr, {"history/1": "red", "option/B": "green"})
    assert sample.input == {"purchase history": ["1st: h1", f"2nd: h2 ({CAPTION_KEY}: red)"]}
    assert sample.options == ["A: c1", f"B: c2 ({CAPTION_KEY}: green)"]
