"""The transformers VLM captioning path on tiny randomly initialised LLaVA, Llama-3.2-Vision
(Mllama) and Qwen2-VL models the tests build (they exercise the code path; their captions
mean nothing): batches of several images give one caption each, the prompt carries the
merged instruction once, and no BOS is doubled."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from schemas.tasks.prompts import CONCISE_CAPTION
from schemas.tasks.registry import get_task
from tests.support.tiny_vlm import (
    build_tiny_llava,
    build_tiny_mllama,
    needs_smollm2,
    tiny_qwen2_vl,
)
from workers.backends.base import BackendUnavailable, CaptionInput
from workers.backends.vlm import TransformersVlmCaptioner

pytestmark = needs_smollm2

FAMILIES = ["llava", "mllama", "qwen2_vl"]


@pytest.fixture(scope="module", params=FAMILIES)
def captioner(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> TransformersVlmCaptioner:
    family: str = request.param
    if family == "qwen2_vl":
        model, processor = tiny_qwen2_vl()
        return TransformersVlmCaptioner("tiny-qwen2-vl", 4, model=model, processor=processor)
    build = build_tiny_llava if family == "llava" else build_tiny_mllama
    return TransformersVlmCaptioner(str(build(tmp_path_factory.mktemp(f"tiny-{family}"))), 4)


def _items() -> list[CaptionInput]:
    spec = get_task("SR")
    values = [{"title": "red ceramic mug"}, {"title": "blue steel bottle"}, {"title": "pen"}]
    images = [
        Image.new("RGB", (64, 48), (200, 0, 0)),
        Image.new("RGB", (40, 40), (0, 0, 200)),
        Image.new("RGB", (30, 50), (0, 200, 0)),
    ]
    return [
        CaptionInput(image, spec.caption_prompt(v), v)
        for image, v in zip(images, values, strict=True)
    ]


def test_a_batch_gets_one_caption_per_image(captioner: TransformersVlmCaptioner) -> None:
    captions = captioner.caption(_items())
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    assert captioner.caption([]) == []


def test_the_prompt_says_the_instruction_once_and_no_bos_is_doubled(
    captioner: TransformersVlmCaptioner,
) -> None:
    items = _items()
    tokenizer = captioner.processor.tokenizer
    batch = captioner.encode(items)
    templated = captioner.chat_texts(items)
    rows = zip(items, templated, batch["input_ids"], batch["attention_mask"], strict=True)
    for item, chat, row, mask in rows:
        ids = row[mask.bool()].tolist()
        text = tokenizer.decode(ids, skip_special_tokens=False)
        rest = item.prompt.split("image. ", 1)[1]
        assert f"{CONCISE_CAPTION} {rest}" in text
        assert text.count("caption for the product in the image") == 1
        # every BOS in the ids is one the chat template wrote: the processor added none
        assert ids.count(tokenizer.bos_token_id) == chat.count(tokenizer.bos_token)
        assert [ids[0], ids[1]] != [tokenizer.bos_token_id] * 2


def test_mllama_has_exactly_one_leading_bos(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = build_tiny_mllama(tmp_path_factory.mktemp("tiny-mllama-bos"))
    captioner = TransformersVlmCaptioner(str(folder), 4)
    batch = captioner.encode(_items()[:2])
    bos = captioner.processor.tokenizer.bos_token_id
    for row, mask in zip(batch["input_ids"], batch["attention_mask"], strict=True):
        ids = row[mask.bool()].tolist()
        assert ids[0] == bos and ids.count(bos) == 1
    assert captioner.name == f"vlm:{folder.name}"


def test_a_missing_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="does not exist"):
        TransformersVlmCaptioner(str(tmp_path / "no-such-vlm"))
