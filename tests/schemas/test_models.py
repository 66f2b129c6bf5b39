from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from schemas import (
    CaptionedRecord,
    DlqEnvelope,
    ImageRef,
    LabelEvent,
    Prediction,
    ProductEvent,
    TaskRequest,
    parse_query,
)
from schemas.base import MAX_FIELD_NAME, MAX_UNKNOWN_FIELDS, SCHEMA_VERSION
from schemas.records import is_split_tag
from schemas.tasks.registry import get_task


def test_product_round_trip_is_lossless() -> None:
    raw = {
        "product_id": "p1",
        "title": "Kettle",
        "brand": "Acme",
        "images": [{"url": "s3://bucket/k.png", "sha256": "a" * 64}],
    }
    product = ProductEvent.from_obj(raw)
    again = ProductEvent.from_json(product.to_json())
    assert again == product
    assert orjson.loads(product.to_json())["version"] == 1


@pytest.mark.parametrize(
    "url", ["ftp://x/y.png", "gopher://a/b", "s3:///nobucket", "javascript:alert(1)", "http:///x"]
)
def test_image_refs_refuse_bad_urls(url: str) -> None:
    with pytest.raises(ValidationError):
        ImageRef(url=url)


def test_image_ref_checks_sha_format() -> None:
    with pytest.raises(ValidationError):
        ImageRef(url="https://a/b.png", sha256="xyz")
    assert ImageRef(url="file:///tmp/a.png").sha256 is None


def test_a_field_added_before_the_schema_knows_it_is_kept_not_refused() -> None:
    """A producer that adds a field ahead of a version bump (a rolling upgrade) must not break
    consumers: the field is ignored by this reader and written back when passed on."""
    product = ProductEvent.from_obj({"product_id": "p", "title": "t", "colour": "red"})
    assert product.unknown_fields == {"colour": "red"}
    assert orjson.loads(product.to_json())["colour"] == "red"
    with pytest.raises(ValidationError, match="title"):  # a required field misspelt: missing
        ProductEvent.from_obj({"product_id": "p", "titel": "t"})


def test_a_record_from_a_future_version_is_read_and_keeps_its_new_fields() -> None:
    raw = {"product_id": "p", "title": "t", "version": SCHEMA_VERSION + 1, "colour": "red"}
    product = ProductEvent.from_obj(raw)
    assert (product.product_id, product.title) == ("p", "t")
    assert product.unknown_fields == {"colour": "red"}
    again = orjson.loads(product.to_json())
    assert again["colour"] == "red" and again["version"] == SCHEMA_VERSION + 1


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({f"f{i}": i for i in range(MAX_UNKNOWN_FIELDS + 1)}, "at most"),
        ({"x" * (MAX_FIELD_NAME + 1): 1}, "field name of"),
    ],
    ids=["too-many", "name-too-long"],
)
def test_future_fields_are_bounded(extra: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        ProductEvent.from_obj({"product_id": "p", "title": "t", "version": 2, **extra})


@pytest.mark.parametrize("version", [0, -1, 1.5, "x"])
def test_a_version_is_a_positive_integer(version: object) -> None:
    with pytest.raises(ValidationError):
        ProductEvent.from_obj({"product_id": "p", "title": "t", "version": version})


QUERIES = [
    {"request_id": "1", "task": "AP", "product_id": "p", "question": "q?"},
    {"request_id": "2", "task": "CC", "product_id": "p", "options": ["a", "b"]},
    {"request_id": "3", "task": "PRP", "product_id": "p", "other_product_id": "q"},
    {"request_id": "4", "task": "PSI", "product_id": "p", "query": "x"},
    {"request_id": "5", "task": "MPC", "product_id": "p", "query": "x"},
    {"request_id": "6", "task": "SA", "review": "great"},
    {
        "request_id": "7",
        "task": "SR",
        "history_product_ids": ["p"],
        "candidate_product_ids": ["q", "r"],
    },
]


@pytest.mark.parametrize("raw", QUERIES, ids=[q["task"] for q in QUERIES])
def test_every_query_kind_parses(raw: dict[str, object]) -> None:
    query = parse_query(raw)
    assert query.task == raw["task"]
    assert query.request_id == raw["request_id"]


def test_query_product_ids() -> None:
    def ids(raw: dict[str, object]) -> list[str]:
        query = parse_query(raw)
        return get_task(query.task).product_ids(query)

    assert ids(QUERIES[2]) == ["p", "q"]
    assert ids(QUERIES[5]) == []
    assert ids(QUERIES[6]) == ["p", "q", "r"]


def test_sa_query_needs_text_or_review_id() -> None:
    with pytest.raises(ValidationError, match="review"):
        parse_query({"request_id": "x", "task": "SA"})
    parse_query({"request_id": "x", "task": "SA", "review_id": "r", "product_id": "p"})


def test_cc_needs_two_options() -> None:
    with pytest.raises(ValidationError):
        parse_query({"request_id": "x", "task": "CC", "product_id": "p", "options": ["one"]})


def test_oversized_title_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ProductEvent.from_obj({"product_id": "p", "title": "x" * 5000})


def test_request_validates_inputs_and_slots_against_task() -> None:
    with pytest.raises(ValidationError, match="missing inputs"):
        TaskRequest(request_id="r", task="AP", inputs={"question": "q"})
    with pytest.raises(ValidationError, match="prompt values"):
        TaskRequest.model_validate(
            {
                "request_id": "r",
                "task": "PSI",
                "inputs": {"query": "q", "title": "t"},
                "slots": [
                    {
                        "slot": "product",
                        "image": {"url": "file:///a.png"},
                        "caption_vars": {"title": "t"},
                        "judge_vars": {},
                    }
                ],
            }
        )
    with pytest.raises(ValidationError, match="two options"):
        TaskRequest(request_id="r", task="SA", inputs={"review": "ok"})


def test_pipeline_records_extend_each_other() -> None:
    request = TaskRequest(request_id="r", task="AP", inputs={"question": "q", "document": "d"})
    captioned = CaptionedRecord.model_validate(
        {**request.model_dump(), "captions": [{"slot": "product", "error": "fetch failed"}]}
    )
    assert captioned.request_id == "r"
    assert captioned.captions[0].text is None


def test_other_records() -> None:
    Prediction(request_id="r", task="SA", label="A", option="A: very positive", adapter="base")
    LabelEvent(request_id="r", task="SA", label="B")
    DlqEnvelope(
        stage="s",
        topic="t",
        partition=0,
        offset=1,
        error_kind="schema",
        message="m",
        payload="{}",
        payload_bytes=2,
        failed_at=0.0,
    )
    with pytest.raises(ValidationError):
        DlqEnvelope(
            stage="s",
            topic="t",
            partition=0,
            offset=1,
            error_kind="nope",
            message="m",
            payload="{}",
            payload_bytes=2,
            failed_at=0.0,
        )


@pytest.mark.parametrize("tag", ["train", "val", "test", "test-brands2", "ood-new_brands"])
def test_label_split_takes_evaluation_tags(tag: str) -> None:
    assert LabelEvent(request_id="r", task="SA", label="A", split=tag).split == tag
    assert is_split_tag(tag)


@pytest.mark.parametrize("tag", ["holdout", "test-", "ood-", "OOD-x", "train-x", "ood-a b"])
def test_label_split_refuses_other_tags(tag: str) -> None:
    with pytest.raises(ValidationError, match="split"):
        LabelEvent(request_id="r", task="SA", label="A", split=tag)
    assert not is_split_tag(tag)
