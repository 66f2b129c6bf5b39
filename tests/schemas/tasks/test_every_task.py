"""Every registered task, from an example query: it resolves against the tables, every slot
has the values its caption and CQE templates need, the sample renders, and a training target
parses back to its label. A task without an example here fails the first test."""

from __future__ import annotations

import pytest

from schemas.events import (
    AspectSchemaEvent,
    ClaimEvent,
    ListingEvent,
    ProductEvent,
    ReviewEvent,
    parse_query,
)
from schemas.tasks import all_tasks, get_task
from schemas.tasks.resolving import MemoryTables

IMAGE = [{"url": "https://cdn.example/x.png"}]
TABLES = MemoryTables(
    {
        pid: ProductEvent(product_id=pid, title=f"{pid} title", brand="Acme", images=IMAGE)
        for pid in ("p1", "p2", "p3")
    },
    {"p1": [ReviewEvent(review_id="r1", product_id="p1", text="Lovely.", images=IMAGE)]},
    {"c1": ClaimEvent(claim_id="c1", product_id="p1", text="Torn box.", images=IMAGE * 2)},
    {"l1": ListingEvent(listing_id="l1", category="mugs", images=IMAGE, seller_text="Unused.")},
    {
        "mugs": AspectSchemaEvent(
            category="mugs",
            aspects=[{"name": "Brand", "required": True}, {"name": "Colour", "values": ["Red"]}],
        )
    },
)
EXAMPLES: dict[str, dict[str, object]] = {
    "AP": {"product_id": "p1", "question": "Is it steel?"},
    "CC": {"product_id": "p1", "options": ["Mugs", "Cups"]},
    "PRP": {"product_id": "p1", "other_product_id": "p2"},
    "PSI": {"product_id": "p1", "query": "mug"},
    "MPC": {"product_id": "p1", "query": "mug"},
    "SA": {"review_id": "r1", "product_id": "p1"},
    "SR": {"history_product_ids": ["p1"], "candidate_product_ids": ["p2", "p3"]},
    "DD": {"claim_id": "c1"},
    "PM": {"claim_id": "c1"},
    "AE": {"claim_id": "c1"},
    "LG": {"listing_id": "l1"},
}
#: Gold answers of tasks whose answer is not the first label or an all-Unanswerable object.
GOLD = {"LG": '{"title":"Acme red mug","aspects":{"Brand":"Acme","Colour":"Red"}}'}


def test_every_builtin_task_has_an_example() -> None:
    assert sorted(t.code for t in all_tasks()) == sorted(EXAMPLES)


@pytest.mark.parametrize("code", sorted(EXAMPLES))
def test_a_task_resolves_renders_and_round_trips_its_answer(code: str) -> None:
    task = get_task(code)
    query = parse_query({"request_id": f"q-{code}", "task": code, **EXAMPLES[code]})
    request = task.resolve(query, TABLES)
    assert request.slots, f"{code} has image slots for these tables"
    for slot in request.slots:
        assert task.caption_prompt(slot.caption_vars)
        assert "a caption" in task.judge_prompt(slot.judge_vars, "a caption")
    kept = {slot.slot: "a caption" for slot in request.slots}
    ocr = {slot.slot: "ACME 500 ml" for slot in request.slots}
    prompt = task.assemble(request, kept, ocr).user_message()
    assert "a caption" in prompt and task.instruction in prompt
    if task.ocr_tokens:
        assert "ACME 500 ml" in prompt
    labels = task.labels(request.options)
    assert labels
    if code in GOLD:
        gold = GOLD[code]
    elif task.answer == "json":
        gold = "{" + ",".join(f'"{k}":"Unanswerable"' for k in labels) + "}"
    else:
        gold = labels[0]  # yes, or option A
    assert task.is_legal(gold, request.options)
    target = task.target(gold, request.options)
    assert task.label_of(target) == gold
    assert task.parse(target, labels) == gold
    assert task.score([gold], [gold]) == 1.0
