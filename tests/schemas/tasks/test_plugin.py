"""A task registered from this module alone flows from query to prediction to a metric.

The plug-in is VIT-Pro's brand check ("Is this product from "<BRAND>" brand?"): its query
model, resolution, templates, prompt and metric are all here. It goes through the real stages
(router tables on RocksDB, the Tesseract captioner on a drawn image, the overlap judge, the
SmolLM2 predictor) and is scored by its own metric; nothing outside this file knows it.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Literal

import orjson
import pytest
from PIL import Image, ImageDraw, ImageFont

from caslie.bench.stage_runs import run_stage
from schemas.base import Identifier, ShortText
from schemas.events import ProductEvent, Query, parse_query
from schemas.records import Prediction, TaskRequest
from schemas.registry import json_schema
from schemas.tasks import register, unregister
from schemas.tasks.prompts import VITPRO_INSTRUCTION, vitpro_prompt
from schemas.tasks.resolving import Tables, image_slot, new_request, products_of
from schemas.tasks.sample import CAPTION_KEY, InstructionSample, sample_of
from schemas.tasks.spec import Task
from streams.codec import decode
from streams.config import ImageSettings, RouterSettings
from streams.router.stages import RouterStage, RouterTables
from streams.router.store import StateStore
from streams.stage import Emit, Inbound
from training.metrics import score_task
from workers.backends.causal_lm import CausalLM, LlmOptionScorer
from workers.backends.lexical import OverlapJudge
from workers.captioner import CaptionerStage
from workers.predictor import PredictorStage
from workers.voter import VoterStage

CACHE = Path.home() / ".cache" / "caslie"


class BRQuery(Query):
    task: Literal["BR"]
    product_id: Identifier
    brand: ShortText


class BrandCheck(Task):
    code = "BR"
    name = "brand check"
    family = "vitpro"
    query_model = BRQuery
    input_fields = ("title", "brand")
    answer = "binary"
    metric = "accuracy"
    caption_template = "Read the brand on the package of {title}."
    judge_template = (
        "Does this text help to tell the brand {brand}: {caption}? Only output yes or no."
    )
    instruction = VITPRO_INSTRUCTION
    ocr_tokens = True

    def resolve(self, query: Query, tables: Tables) -> TaskRequest:
        assert isinstance(query, BRQuery)
        product = products_of([query.product_id], tables)[query.product_id]
        values = {"title": product.title, "brand": query.brand}
        return new_request(
            query,
            query.request_id,
            self.code,
            inputs=values,
            slots=image_slot("product", product, values, values),
        )

    def assemble(
        self,
        request: TaskRequest,
        kept: Mapping[str, str],
        ocr: Mapping[str, str] | None = None,
        captioned: Collection[str] = (),
    ) -> InstructionSample:
        data: dict[str, object] = {
            "Question": f'Is this product from "{request.inputs["brand"]}" brand?'
        }
        if "product" in kept:
            data[CAPTION_KEY] = kept["product"]
        data["OCR Tokens"] = (ocr or {}).get("product") or "none"
        return InstructionSample(self.code, self.instruction, data)

    def prompt(self, sample: InstructionSample) -> str:
        assert isinstance(sample.input, dict)
        fields = {k: str(v) for k, v in sample.input.items() if k != "Question"}
        return vitpro_prompt(
            sample.instruction, str(sample.input["Question"]), fields, "Answer yes or no:"
        )


@pytest.fixture
def brand_check() -> Iterator[BrandCheck]:
    task = register(BrandCheck())
    yield task
    unregister("BR")


class Follower:
    def wait_restored(self, timeout: float) -> bool:
        return True


def _pack(path: Path, brand: str) -> Path:
    image = Image.new("RGB", (480, 320), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    draw.text(
        (240, 160), brand, fill=(20, 20, 20), font=ImageFont.load_default(size=72), anchor="mm"
    )
    image.save(path)
    return path


def _inbound(topic: str, raw: bytes) -> Inbound:
    return Inbound(f"caslie.{topic}", 0, 0, None, decode(raw, topic), raw)


def test_the_registry_is_all_that_knows_a_plugin(brand_check: BrandCheck) -> None:
    raw = orjson.dumps({"request_id": "b1", "task": "BR", "product_id": "p", "brand": "Acme"})
    assert isinstance(decode(raw, "queries"), BRQuery)
    assert "BRQuery" in json_schema("queries")["$defs"]
    unregister("BR")
    with pytest.raises(KeyError, match="unknown task 'BR'"):
        parse_query(orjson.loads(raw))
    register(brand_check)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="needs tesseract")
def test_a_plugin_task_flows_from_query_to_prediction_to_metric(
    brand_check: BrandCheck, tmp_path: Path
) -> None:
    from workers.backends.ocr import OcrCaptioner, Tesseract, TesseractReader

    brands = {"p1": "ACME", "p2": "ZENLEAF"}
    router = RouterStage(
        RouterTables(StateStore(tmp_path / "state", RouterSettings())),
        Follower(),  # type: ignore[arg-type]
        RouterSettings(),
    )
    batch = []
    for pid, brand in brands.items():
        image = _pack(tmp_path / f"{pid}.png", brand)
        product = ProductEvent(
            product_id=pid, title=f"{brand.title()} tea", images=[{"url": image.as_uri()}]
        )
        batch.append(_inbound("catalog", product.to_json()))
    asked = [
        ("q1", "p1", "Acme", "yes"),
        ("q2", "p2", "Acme", "no"),
        ("q3", "p2", "Zenleaf", "yes"),
    ]
    for rid, pid, brand, _ in asked:
        query = {"request_id": rid, "task": "BR", "product_id": pid, "brand": brand}
        batch.append(_inbound("queries", orjson.dumps(query)))
    requests = [
        o.value
        for r in router.process(batch)
        if isinstance(r, Emit)
        for o in r.outputs
        if o.logical_topic == "requests"
    ]
    assert [r.task for r in requests] == ["BR"] * 3

    images = ImageSettings(file_roots=[str(tmp_path)])
    tesseract = Tesseract()
    captioner = CaptionerStage(
        OcrCaptioner(tesseract=tesseract), images, ocr=TesseractReader(tesseract=tesseract)
    )
    captioned = run_stage(captioner, requests, 8).outputs
    enriched = run_stage(VoterStage([OverlapJudge(0.1)]), captioned, 8).outputs
    read = [c.ocr_tokens or "" for r in captioned for c in r.captions]  # type: ignore[attr-defined]
    assert len(read) == 3 and all("ACME" in t.upper() or "ZENLEAF" in t.upper() for t in read)
    prompt = sample_of(enriched[0]).user_message()  # type: ignore[arg-type]
    assert prompt.endswith(f"OCR Tokens: {read[0]} Answer yes or no:"), "the predictor's prompt"
    scorer = LlmOptionScorer(CausalLM("smollm2", CACHE))
    predictions = run_stage(PredictorStage(scorer, default_adapter="base"), enriched, 8).outputs
    assert all(isinstance(p, Prediction) and p.label in ("yes", "no") for p in predictions)
    by_id = {p.request_id: p.label for p in predictions}  # type: ignore[attr-defined]
    score = score_task("BR", [g for *_, g in asked], [by_id[rid] for rid, *_ in asked])
    assert score.metric == "accuracy" and score.n == 3 and score.failures == 0
    assert score.strict == sum(by_id[rid] == gold for rid, *_, gold in asked) / 3
