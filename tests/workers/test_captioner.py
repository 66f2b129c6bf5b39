"""The captioner stage on real image files: a slot whose image cannot be used gets the reason,
credentials redacted, and never fails the batch."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from schemas.records import CaptionedRecord, TaskRequest
from schemas.tasks.registry import get_task
from schemas.tasks.sa import SA_OPTIONS
from streams.config import ImageSettings
from streams.stage import Emit, Inbound
from workers.backends.base import CaptionInput
from workers.captioner import CaptionerStage


class _Echo:
    """A captioning model stand-in: the caption is the image's size."""

    name = "echo"

    def caption(self, items: Sequence[CaptionInput]) -> list[str]:
        return [f"{item.image.width}x{item.image.height}" for item in items]


def _request(request_id: str, url: str) -> Inbound:
    spec = get_task("SA")
    slot = {
        "slot": "review",
        "image": {"url": url},
        "caption_vars": dict.fromkeys(spec.caption_vars, "a mug"),
        "judge_vars": dict.fromkeys(spec.judge_vars, "a mug"),
    }
    request = TaskRequest.model_validate(
        {
            "request_id": request_id,
            "task": "SA",
            "inputs": {"review": "love it"},
            "options": list(SA_OPTIONS),
            "slots": [slot],
        }
    )
    return Inbound("caslie.requests", 0, 0, None, request, b"")


def test_bad_image_urls_fail_their_slot_only_with_credentials_redacted(tmp_path: Path) -> None:
    image = tmp_path / "mug.png"
    buf = io.BytesIO()
    Image.new("RGB", (64, 32), (200, 20, 20)).save(buf, format="PNG")
    image.write_bytes(buf.getvalue())
    stage = CaptionerStage(_Echo(), ImageSettings(file_roots=[str(tmp_path)]))
    batch = [
        _request("good", image.as_uri()),
        _request(
            "bad-port", "https://bob:hunter2@cdn.example.com:99999/a.png?X-Amz-Signature=s3kr1t"
        ),
        _request("long-label", f"http://{'a' * 64}.example.com/a.png?token=s3kr1t"),
        _request("nat64", "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/"),
    ]
    results = stage.process(batch)
    captions = {}
    for result in results:
        assert isinstance(result, Emit)
        record = result.outputs[0].value
        assert isinstance(record, CaptionedRecord)
        captions[record.request_id] = record.captions[0]
    assert captions["good"].text == "64x32"
    assert captions["bad-port"].error is not None
    assert captions["bad-port"].error.startswith("ImageRefused: malformed port")
    assert "not valid" in (captions["long-label"].error or "")
    assert "169.254.169.254" in (captions["nat64"].error or "")
    for caption in captions.values():
        assert "hunter2" not in (caption.error or "") and "s3kr1t" not in (caption.error or "")
