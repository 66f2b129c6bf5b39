"""The predictor's direct path (VIT-Pro): its tasks are answered by a VLM from their images,
the others by the text LLM, side by side in one batch (tiny LLaVA the test builds)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from caslie.bench.stage_runs import run_stage
from schemas.dlq import ErrorKind
from schemas.events import ClaimEvent, ProductEvent, parse_query
from schemas.records import Caption, EnrichedRecord, Prediction
from schemas.tasks.registry import get_task
from schemas.tasks.resolving import MemoryTables
from streams.config import ImageSettings
from streams.stage import Inbound, Reject
from tests.support.tiny_vlm import build_tiny_llava, needs_smollm2
from workers.backends.base import Choice
from workers.backends.vlm_answer import TransformersVlmAnswerer
from workers.direct import DirectPath, check_direct_tasks
from workers.predictor import PredictorStage

pytestmark = needs_smollm2


class FirstLabel:
    """The text scorer's stand-in (a collaborator): always the first legal label."""

    name = "first-label"

    def choose(self, prompts, labels, adapter):  # type: ignore[no-untyped-def]
        return [Choice(label=ls[0]) for ls in labels]


def _enriched(tmp_path: Path, task: str, photo: str) -> EnrichedRecord:
    listing = tmp_path / "listing.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(listing)
    product = ProductEvent(
        product_id="p1", title="Acme shampoo", images=[{"url": listing.as_uri()}]
    )
    claim = ClaimEvent(claim_id="c1", product_id="p1", text="torn box", images=[{"url": photo}])
    query = parse_query({"request_id": f"r-{task}", "task": task, "claim_id": "c1"})
    request = get_task(task).resolve(query, MemoryTables({"p1": product}, claims={"c1": claim}))
    captions = [Caption(slot=s.slot, text="a red box", ocr_tokens="ACME") for s in request.slots]
    return EnrichedRecord.model_validate({**request.model_dump(), "captions": captions})


def test_direct_tasks_go_to_the_vlm_the_rest_to_the_text_llm(tmp_path: Path) -> None:
    folder = build_tiny_llava(tmp_path / "vlm")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (900, 600), (40, 80, 200)).save(photo)
    images = ImageSettings(file_roots=[str(tmp_path)])
    vlm = TransformersVlmAnswerer(str(folder))
    stage = PredictorStage(
        FirstLabel(), default_adapter="base", direct=DirectPath(vlm, ["DD"], images)
    )
    records = [_enriched(tmp_path, "DD", photo.as_uri()), _enriched(tmp_path, "PM", photo.as_uri())]
    run = run_stage(stage, records, batch_size=8)
    assert run.rejected == 0
    dd, pm = run.outputs
    assert isinstance(dd, Prediction) and isinstance(pm, Prediction)
    assert dd.label in ("yes", "no") and dd.scores is not None and set(dd.scores) == {"yes", "no"}
    assert vlm.name in dd.models and "first-label" not in dd.models
    assert "first-label" in pm.models and vlm.name not in pm.models


def test_a_direct_request_without_a_loadable_image_fails_with_the_reason(tmp_path: Path) -> None:
    class NeverCalled:
        name = "never"

        def choose(self, items, adapter):  # type: ignore[no-untyped-def]
            raise AssertionError("no input should reach the model")

    stage = PredictorStage(
        FirstLabel(),
        default_adapter="base",
        direct=DirectPath(NeverCalled(), ["DD"], ImageSettings()),  # file:// not allowed
    )
    record = _enriched(tmp_path, "DD", (tmp_path / "x.png").as_uri())
    [result] = stage.process([Inbound("caslie.enriched", 0, 0, None, record, b"")])
    assert isinstance(result, Reject) and result.kind == ErrorKind.PROCESSING
    assert result.message.startswith("an image of the request could not be loaded: claim/0:")


def test_json_tasks_cannot_take_the_direct_path() -> None:
    with pytest.raises(ValueError, match="AE answers with a JSON object"):
        check_direct_tasks(["DD", "AE"])
    assert check_direct_tasks(["DD", "PM"]) == {"DD", "PM"}
