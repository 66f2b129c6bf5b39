"""VIT-Pro's claim tasks: resolution against the claims and the catalog, the paper's prompt
form with OCR tokens and numbered images, the answer spaces and the AE metric."""

from __future__ import annotations

import pytest

from schemas.events import ClaimEvent, ProductEvent, parse_query
from schemas.records import TaskRequest
from schemas.tasks.ae import DEFAULT_KEYS
from schemas.tasks.answers import parse_json_answer
from schemas.tasks.metrics import FAILED, attribute_match, attribute_scores
from schemas.tasks.registry import get_task
from schemas.tasks.resolving import MemoryTables, MissingData

LISTING = ProductEvent(
    product_id="p1",
    title="Acme shampoo 500 ml",
    description="For dry hair.",
    images=[{"url": "https://cdn.example/p1.png"}],
)
CLAIM = ClaimEvent(
    claim_id="c1",
    product_id="p1",
    text="The bottle arrived open and half empty.",
    images=[{"url": "https://cdn.example/c1-a.png"}, {"url": "https://cdn.example/c1-b.png"}],
)
TABLES = MemoryTables({"p1": LISTING}, claims={"c1": CLAIM})


def _request(task: str, **extra: object) -> TaskRequest:
    query = parse_query({"request_id": f"r-{task}", "task": task, "claim_id": "c1", **extra})
    return get_task(task).resolve(query, TABLES)


def test_dd_prompt_is_vitpros_form_with_ocr_tokens_and_numbered_photos() -> None:
    request = _request("DD")
    assert [s.slot for s in request.slots] == ["claim/0", "claim/1"]
    kept = {"claim/0": "an open bottle"}
    ocr = {"claim/0": "ACME 500 ml", "claim/1": ""}
    prompt = get_task("DD").assemble(request, kept, ocr).user_message()
    assert prompt == (
        "Instruction: provide an answer to the question in a single word. Use the image to "
        "answer. Customer text: The bottle arrived open and half empty. Image information: "
        "[1] an open bottle ### [2] no information Question: Is there a damage on the product "
        "in the image? OCR Tokens: [1] ACME 500 ml ### [2] none Answer:"
    )


def test_pm_compares_the_photo_with_the_listing_and_its_reference_image() -> None:
    request = _request("PM")
    assert [s.slot for s in request.slots] == ["claim/0", "claim/1", "reference"]
    assert request.slots[-1].image is not None and request.slots[-1].image.url.endswith("p1.png")
    prompt = get_task("PM").assemble(request, {}, {}).user_message()
    assert prompt.startswith(
        "Instruction: provide an answer to the question in a single word. Use the image to "
        "answer. Product Description: Acme shampoo 500 ml. For dry hair. Question: Does the "
        "image match to the product description? OCR Tokens: [1] none ### [2] none ### [3] none"
    )
    assert get_task("PM").labels(request.options) == ["yes", "no"]


def test_ae_asks_for_its_keys_and_parses_only_objects_with_exactly_them() -> None:
    request = _request("AE")
    assert request.options == list(DEFAULT_KEYS)
    custom = _request("AE", keys=["Brand", "Size"])
    prompt = get_task("AE").assemble(custom, {}, {"claim/0": "ACME"}).user_message()
    assert "What are the product's Brand, Size? Answer with a JSON object" in prompt
    assert parse_json_answer('{"Size": "500 ml", "Brand": "Acme"}', ["Brand", "Size"]) == (
        '{"Brand":"Acme","Size":"500 ml"}'
    )
    assert parse_json_answer('{"Brand": "Acme"}', ["Brand", "Size"]) is None
    assert parse_json_answer('{"Brand": "Acme", "Size": 5}', ["Brand", "Size"]) is None
    assert parse_json_answer("Brand: Acme", ["Brand", "Size"]) is None


def test_attribute_match_normalises_both_sides() -> None:
    gold = ['{"Brand":"Acme","Size":"500 ml","Color":"Unanswerable"}'] * 3
    pred = [
        '{"Brand":"ACME.","Size":" 500  ML","Color":"N/A"}',
        '{"Brand":"Acme","Size":"250 ml","Color":"red"}',
        FAILED,
    ]
    assert attribute_match(gold, pred) == pytest.approx(4 / 9)
    assert attribute_scores(gold, pred) == pytest.approx(
        {"Brand": 2 / 3, "Size": 1 / 3, "Color": 1 / 3}
    )


def test_a_claim_task_waits_for_its_claim_and_its_listing() -> None:
    query = parse_query({"request_id": "r", "task": "DD", "claim_id": "c9"})
    with pytest.raises(MissingData, match="unknown claim: c9"):
        get_task("DD").resolve(query, TABLES)
    orphan = CLAIM.model_copy(update={"claim_id": "c2", "product_id": "p9"})
    query = parse_query({"request_id": "r", "task": "PM", "claim_id": "c2"})
    with pytest.raises(MissingData, match="unknown product"):
        get_task("PM").resolve(query, MemoryTables(claims={"c2": orphan}))
