"""The predictor answers each task in its answer space: AE as a JSON object with exactly the
asked keys (constrained decoding on the real SmolLM2), yes/no tasks by option scoring, in one
batch; free decoding's unparsed objects become visible failures, and a JSON task without an
extractor fails its record with the reason."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas.dlq import ErrorKind
from schemas.events import AspectSchemaEvent, ClaimEvent, ListingEvent, ProductEvent, parse_query
from schemas.records import Caption, EnrichedRecord, Prediction, SlotVerdict
from schemas.tasks.ae import DEFAULT_KEYS
from schemas.tasks.lg import listing_json_schema
from schemas.tasks.registry import get_task
from schemas.tasks.resolving import MemoryTables
from streams.stage import Emit, Inbound, Reject
from tests.support.tiny_vlm import needs_smollm2
from workers.backends.causal_lm import CausalLM, LlmOptionScorer
from workers.backends.structured import LlmJsonExtractor
from workers.predictor import FAILED, PredictorStage

pytestmark = needs_smollm2
CACHE = Path.home() / ".cache" / "caslie"


@pytest.fixture(scope="module")
def smollm2() -> CausalLM:
    return CausalLM("smollm2", CACHE)


def _record(task: str, **extra: object) -> Inbound:
    product = ProductEvent(product_id="p1", title="Acme shampoo 500 ml")
    claim = ClaimEvent(
        claim_id="c1",
        product_id="p1",
        text="The bottle leaked.",
        images=[{"url": "https://cdn.example/c1.png"}],
    )
    query = parse_query({"request_id": f"r-{task}", "task": task, "claim_id": "c1", **extra})
    request = get_task(task).resolve(query, MemoryTables({"p1": product}, claims={"c1": claim}))
    record = EnrichedRecord.model_validate(
        {
            **request.model_dump(),
            "captions": [Caption(slot="claim/0", text="a blue bottle", ocr_tokens="ACME 500 ml")],
            "verdicts": [SlotVerdict(slot="claim/0", keep=True, mode="uia")],
        }
    )
    return Inbound("caslie.enriched", 0, 0, None, record, b"")


def _prediction(result: object) -> Prediction:
    assert isinstance(result, Emit)
    value = result.outputs[0].value
    assert isinstance(value, Prediction)
    return value


def test_ae_is_an_object_with_exactly_its_keys_beside_option_tasks(smollm2: CausalLM) -> None:
    stage = PredictorStage(
        LlmOptionScorer(smollm2), default_adapter="base", extractor=LlmJsonExtractor(smollm2)
    )
    ae, dd, custom = stage.process(
        [_record("AE"), _record("DD"), _record("AE", keys=["Brand", "Size"])]
    )
    object_answer = _prediction(ae)
    assert object_answer.answer is not None
    assert list(object_answer.answer) == list(DEFAULT_KEYS)
    assert orjson.loads(object_answer.label) == object_answer.answer
    assert stage.extractor is not None and stage.extractor.name in object_answer.models
    assert _prediction(dd).label in ("yes", "no")
    assert list(_prediction(custom).answer or {}) == ["Brand", "Size"]


def test_free_decodings_unparsed_object_is_a_visible_failure(smollm2: CausalLM) -> None:
    class Nothing:
        name = "free"

        def extract(self, prompts, keys, adapter):  # type: ignore[no-untyped-def]
            return [{} for _ in prompts]  # what the free path returns when nothing parses

    stage = PredictorStage(LlmOptionScorer(smollm2), default_adapter="base", extractor=Nothing())
    [result] = stage.process([_record("AE")])
    prediction = _prediction(result)
    assert prediction.label == FAILED and prediction.answer is None


def test_a_json_task_without_an_extractor_fails_with_the_reason(smollm2: CausalLM) -> None:
    stage = PredictorStage(LlmOptionScorer(smollm2), default_adapter="base")
    [result] = stage.process([_record("AE")])
    assert isinstance(result, Reject) and result.kind == ErrorKind.PROCESSING
    assert "no JSON extractor" in result.message


SHOES = AspectSchemaEvent(
    category="womens-shoes",
    aspects=[
        {"name": "Brand", "required": True},
        {"name": "Colour", "required": True, "values": ["Black", "White"]},
        {"name": "Heel height"},
    ],
)


def _listing_record() -> Inbound:
    listing = ListingEvent(
        listing_id="l1", category="womens-shoes", images=[{"url": "https://cdn.example/l1.jpg"}]
    )
    tables = MemoryTables(listings={"l1": listing}, aspect_schemas={"womens-shoes": SHOES})
    query = parse_query({"request_id": "r-LG", "task": "LG", "listing_id": "l1"})
    request = get_task("LG").resolve(query, tables)
    record = EnrichedRecord.model_validate(
        {
            **request.model_dump(),
            "captions": [Caption(slot="listing/0", text="black pumps", ocr_tokens="NINE WEST")],
            "verdicts": [SlotVerdict(slot="listing/0", keep=True, mode="uia")],
        }
    )
    return Inbound("caslie.enriched", 0, 0, None, record, b"")


def test_lg_drafts_validate_against_their_category_schema(smollm2: CausalLM) -> None:
    stage = PredictorStage(
        LlmOptionScorer(smollm2), default_adapter="base", extractor=LlmJsonExtractor(smollm2)
    )
    lg, dd = stage.process([_listing_record(), _record("DD")])
    draft = _prediction(lg)
    Draft202012Validator(listing_json_schema(SHOES.aspects)).validate(orjson.loads(draft.label))
    assert get_task("LG").parse(draft.label, ["Brand", "Colour", "Heel height"]) == draft.label
    assert draft.answer is None and draft.option is None
    assert _prediction(dd).label in ("yes", "no")


def test_an_lg_draft_free_decoding_did_not_write_is_a_visible_failure(
    smollm2: CausalLM,
) -> None:
    class Prose:
        name = "free"

        def generate_json(self, prompts, schemas, adapter):  # type: ignore[no-untyped-def]
            return ["Here is a lovely pair of shoes." for _ in prompts]

    stage = PredictorStage(LlmOptionScorer(smollm2), default_adapter="base", extractor=Prose())
    [result] = stage.process([_listing_record()])
    assert _prediction(result).label == FAILED
    [result] = PredictorStage(LlmOptionScorer(smollm2), default_adapter="base").process(
        [_listing_record()]
    )
    assert isinstance(result, Reject) and "no JSON extractor" in result.message
