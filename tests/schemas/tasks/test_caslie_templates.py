"""Pins every prompt template and option set against the method reference text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas.tasks import CASLIE_TASKS, get_task, letter_options, ordinal
from schemas.tasks.mpc import MPC_OPTIONS
from schemas.tasks.prompts import REFERENCE_SLOT_NAMES
from schemas.tasks.prp import PRP_OPTIONS
from schemas.tasks.sa import SA_OPTIONS

DATA = Path(__file__).parents[2] / "data" / "caslie-method.md"
SHARED = Path(__file__).parents[4] / "shared" / "reference" / "caslie-method.md"


def _reference_text() -> str:
    return " ".join(DATA.read_text().split())


def _reference_templates() -> dict[str, tuple[str, str, str]]:
    text = _reference_text()
    found = {}
    for code in CASLIE_TASKS:
        match = re.search(rf'\*\*{code}\.\*\* Caption: "(.*?)" CQE: "(.*?)" Task: "(.*?)"', text)
        assert match, f"reference has no templates for {code}"
        found[code] = match.groups()
    return found


def _as_fields(reference: str, names: dict[str, str] | None = None) -> str:
    slot_names = {**REFERENCE_SLOT_NAMES, **(names or {})}

    def repl(m: re.Match[str]) -> str:
        return "{" + slot_names[m.group(1)] + "}"

    return re.sub(r"\{\{(.*?)\}\}", repl, reference)


#: PRP's CQE is written from product 1's side; ours judges either product with the titles in
#: input order and the judged product's number as a field (the authors' scripts do so).
PRP_JUDGE_NAMES = {"title of the product": "title1", "title of another product": "title2"}
PRP_JUDGED = "about product 1 extracted from its image"


def test_reference_copy_matches_shared() -> None:
    if not SHARED.is_file():
        pytest.skip(f"{SHARED} not present beside this checkout")
    assert DATA.read_text() == SHARED.read_text()


@pytest.mark.parametrize("code", CASLIE_TASKS)
def test_templates_match_reference(code: str) -> None:
    caption, judge, task = _reference_templates()[code]
    spec = get_task(code)
    assert spec.caption_template == _as_fields(caption)
    if code == "PRP":
        assert judge.count(PRP_JUDGED) == 1
        judge = judge.replace(PRP_JUDGED, PRP_JUDGED.replace("1", "{number}"))
        assert spec.judge_template == _as_fields(judge, PRP_JUDGE_NAMES)
    else:
        assert spec.judge_template == _as_fields(judge)
    assert spec.instruction == task


def test_option_sets_match_reference() -> None:
    text = _reference_text()
    for option in SA_OPTIONS:
        assert f"`{option}`" in text
    for option in PRP_OPTIONS:
        assert f"`{option}`" in text
    assert '("relevant to the query, and satisfies all the query specifications")' in text
    assert MPC_OPTIONS[0].endswith(
        "relevant to the query, and satisfies all the query specifications."
    )
    assert MPC_OPTIONS[3] == "D: The product is irrelevant to the query."


def test_metrics_and_answer_kinds() -> None:
    expected = {
        "AP": ("f1_yes", "binary"),
        "CC": ("recall_at_1", "lettered"),
        "PRP": ("macro_f1", "lettered"),
        "PSI": ("f1_yes", "binary"),
        "MPC": ("accuracy", "lettered"),
        "SA": ("macro_f1", "lettered"),
        "SR": ("recall_at_1", "lettered"),
        "DD": ("accuracy", "binary"),
        "PM": ("accuracy", "binary"),
        "AE": ("attribute_match", "json"),
    }
    assert {c: (get_task(c).metric, get_task(c).answer) for c in expected} == expected


def test_render_refuses_missing_values() -> None:
    with pytest.raises(KeyError, match="question"):
        get_task("AP").caption_prompt({})
    prompt = get_task("AP").caption_prompt({"question": "is it steel?"})
    assert "question: is it steel?, is answerable" in prompt


def test_unknown_task() -> None:
    with pytest.raises(KeyError, match="unknown task 'XX'"):
        get_task("XX")


def test_letters_and_ordinals() -> None:
    assert letter_options(["a", "b"]) == ["A: a", "B: b"]
    with pytest.raises(ValueError):
        letter_options([str(i) for i in range(21)])
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "13th",
        "21st",
        "22nd",
        "101st",
    ]
    assert get_task("SA").labels(list(SA_OPTIONS)) == ["A", "B", "C", "D", "E"]
    assert get_task("AP").labels([]) == ["yes", "no"]
