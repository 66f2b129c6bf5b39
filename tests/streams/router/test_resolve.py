from __future__ import annotations

import pytest

from schemas import ProductEvent, ReviewEvent, parse_query
from schemas.tasks.registry import get_task
from schemas.tasks.resolving import MemoryTables
from streams.router.resolve import MissingData, resolve

PRODUCTS = {
    "p1": ProductEvent(
        product_id="p1",
        title="Acme kettle",
        brand="Acme",
        category="Kitchen",
        images=[{"url": "file:///img/p1.png"}],
        category_options=["Kettles", "Pots"],
    ),
    "p2": ProductEvent(product_id="p2", title="Tea cups", images=[{"url": "https://cdn/p2.png"}]),
    "p3": ProductEvent(product_id="p3", title="No image thing"),
}
REVIEWS = {
    "p1": [
        ReviewEvent(
            review_id="rv1",
            product_id="p1",
            text="Boils fast, sturdy lid.",
            images=[{"url": "file:///img/rv1.png"}],
        )
    ]
}


def _resolve(raw: dict[str, object]):  # type: ignore[no-untyped-def]
    return resolve(parse_query(raw), MemoryTables(PRODUCTS, REVIEWS))


@pytest.mark.parametrize(
    ("raw", "slots", "inputs"),
    [
        (
            {"task": "AP", "product_id": "p1", "question": "Is it steel?"},
            ["product"],
            {"question": "Is it steel?", "document": "Boils fast, sturdy lid."},
        ),
        (
            {"task": "AP", "product_id": "p2", "question": "Q?", "document": "Doc."},
            ["product"],
            {"question": "Q?", "document": "Doc."},
        ),
        (
            {"task": "CC", "product_id": "p1", "options": ["Kettles", "Pots"]},
            ["product"],
            {"title": "Acme kettle"},
        ),
        (
            {"task": "PRP", "product_id": "p1", "other_product_id": "p2"},
            ["product1", "product2"],
            {"title1": "Acme kettle", "title2": "Tea cups"},
        ),
        (
            {"task": "PSI", "product_id": "p1", "query": "kettle"},
            ["product"],
            {"query": "kettle", "title": "Acme kettle"},
        ),
        (
            {"task": "MPC", "product_id": "p3", "query": "thing"},
            [],
            {"query": "thing", "title": "No image thing"},
        ),
        (
            {"task": "SA", "review_id": "rv1", "product_id": "p1"},
            ["review"],
            {"review": "Boils fast, sturdy lid."},
        ),
        ({"task": "SA", "review": "meh"}, [], {"review": "meh"}),
        (
            {
                "task": "SR",
                "history_product_ids": ["p1", "p3"],
                "candidate_product_ids": ["p2", "p3"],
            },
            ["history/0", "option/A"],
            {
                "history": ["Acme kettle", "No image thing"],
                "candidates": ["Tea cups", "No image thing"],
            },
        ),
    ],
)
def test_every_task_resolves(
    raw: dict[str, object], slots: list[str], inputs: dict[str, object]
) -> None:
    request = _resolve({"request_id": "r1", **raw})
    assert request.request_id == "r1"
    assert request.task == raw["task"]
    assert [s.slot for s in request.slots] == slots
    assert request.inputs == inputs
    assert request.timestamps["router"] > 0
    # the request is complete enough to render every prompt of the method
    from schemas.tasks import get_task

    spec = get_task(request.task)
    for slot in request.slots:
        assert spec.caption_prompt(slot.caption_vars)
        assert spec.judge_prompt(slot.judge_vars, caption="a caption")
    assert get_task(request.task).assemble(request, {}).instruction == spec.instruction


def test_prp_captions_each_product_from_its_own_side() -> None:
    request = _resolve(
        {"request_id": "r", "task": "PRP", "product_id": "p1", "other_product_id": "p2"}
    )
    first, second = request.slots
    assert first.caption_vars == {"title": "Acme kettle", "other_title": "Tea cups"}
    assert second.caption_vars == {"title": "Tea cups", "other_title": "Acme kettle"}
    spec = get_task("PRP")
    assert "this product and Acme kettle" in spec.caption_prompt(second.caption_vars)
    # each judge sees the titles in input order and is told which product the caption is of
    for slot, number in ((first, "1"), (second, "2")):
        prompt = spec.judge_prompt(slot.judge_vars, "a red kettle")
        assert "title of product 1: Acme kettle, and product 2: Tea cups." in prompt
        assert f"about product {number} extracted from its image: a red kettle," in prompt


def test_sr_options_and_judge_items() -> None:
    request = _resolve(
        {
            "request_id": "r",
            "task": "SR",
            "history_product_ids": ["p1"],
            "candidate_product_ids": ["p2", "p1"],
        }
    )
    assert request.options == ["A: Tea cups", "B: Acme kettle"]
    assert request.slots[0].judge_vars == {"item": "Acme kettle, Kitchen, Acme"}


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        ({"task": "PSI", "product_id": "nope", "query": "x"}, "unknown product(s): nope"),
        (
            {
                "task": "SR",
                "history_product_ids": ["p1", "x1"],
                "candidate_product_ids": ["x2", "p2"],
            },
            "unknown product(s): x1, x2",
        ),
        (
            {"task": "AP", "product_id": "p2", "question": "Q?"},
            "no document given and no reviews of p2",
        ),
        ({"task": "SA", "review_id": "zz", "product_id": "p1"}, "review zz of p1 not known"),
    ],
)
def test_missing_data_is_named(raw: dict[str, object], what: str) -> None:
    with pytest.raises(MissingData) as info:
        _resolve({"request_id": "r", **raw})
    assert info.value.what == what


def test_deleted_product_counts_as_missing() -> None:
    gone = PRODUCTS["p2"].model_copy(update={"deleted": True})
    with pytest.raises(MissingData):
        resolve(
            parse_query({"request_id": "r", "task": "PSI", "product_id": "p2", "query": "q"}),
            MemoryTables({"p2": gone}),
        )


def test_auto_requests() -> None:
    cc = get_task("CC").for_product(PRODUCTS["p1"])
    assert cc is not None and cc.options == ["A: Kettles", "B: Pots"]
    assert get_task("CC").for_product(PRODUCTS["p2"]) is None
    sa = get_task("SA").for_review(REVIEWS["p1"][0])
    assert sa is not None and sa.request_id == "auto-sa:rv1" and sa.slots[0].slot == "review"
