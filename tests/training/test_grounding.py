"""VisAttnScore on a tiny randomly initialised LLaVA run with eager attention: a code path on
CPU (what the score says about this model means nothing), plus the arithmetic on tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support.tiny_vlm import build_tiny_llava, needs_smollm2
from training.grounding import (
    attention_on_image,
    encode_answer,
    image_attention_share,
    image_token_id,
    select_grounded,
    threshold_for,
    visual_attention_score,
)

PROMPT = "Instruction: write the listing's title. Use the image to answer."


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def eager(folder: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(folder, attn_implementation="eager")
    model.eval()  # type: ignore[no-untyped-call]
    return model, AutoProcessor.from_pretrained(folder)  # type: ignore[no-untyped-call]


def _photo() -> Image.Image:
    image = Image.new("RGB", (64, 48), (200, 30, 30))
    image.paste((20, 40, 200), (8, 8, 32, 24))
    return image


def test_share_is_the_mean_attention_mass_on_image_positions() -> None:
    import torch

    causal = torch.tril(torch.ones(4, 4))
    uniform = causal / causal.sum(dim=-1, keepdim=True)
    on_first = torch.zeros(4, 4)
    on_first[:, 0] = 1.0
    layer = torch.stack([uniform, on_first]).unsqueeze(0)  # (1, heads=2, 4, 4)
    is_image = torch.tensor([False, True, False, False])
    # rows 2 and 3 of the uniform head put 1/3 and 1/4 on position 1; the other head none
    assert image_attention_share([layer], is_image, 2) == pytest.approx((1 / 3 + 1 / 4) / 4)
    with pytest.raises(ValueError, match="eager"):
        image_attention_share((), is_image, 2)


@needs_smollm2
def test_answer_positions_are_the_answers_tokens(eager: tuple[Any, Any]) -> None:
    model, processor = eager
    batch, start = encode_answer(processor, _photo(), PROMPT, "Red canvas sneakers")
    ids = batch["input_ids"][0].tolist()
    assert 0 < start < len(ids)
    assert processor.tokenizer.decode(ids[start:]) == "Red canvas sneakers"
    assert image_token_id(model, processor) in ids[:start]


@needs_smollm2
def test_score_is_a_deterministic_share_that_depends_on_the_answer(
    eager: tuple[Any, Any],
) -> None:
    model, processor = eager
    first = visual_attention_score(model, processor, _photo(), PROMPT, "Red canvas sneakers")
    again = visual_attention_score(model, processor, _photo(), PROMPT, "Red canvas sneakers")
    other = visual_attention_score(model, processor, _photo(), PROMPT, "Blue leather boots size 9")
    assert 0.0 < first < 1.0 and 0.0 < other < 1.0
    assert first == again
    assert first != other


@needs_smollm2
def test_masking_the_image_tokens_takes_the_score_to_zero(eager: tuple[Any, Any]) -> None:
    model, processor = eager
    batch, start = encode_answer(processor, _photo(), PROMPT, "Red canvas sneakers")
    image = image_token_id(model, processor)
    seen = attention_on_image(model, batch, start, image)
    batch["attention_mask"][0, batch["input_ids"][0] == image] = 0
    assert seen > 0.05
    assert attention_on_image(model, batch, start, image) == pytest.approx(0.0, abs=1e-6)


@needs_smollm2
def test_sdpa_attention_is_refused(folder: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(folder, attn_implementation="sdpa")
    processor = AutoProcessor.from_pretrained(folder)  # type: ignore[no-untyped-call]
    with pytest.raises(ValueError, match="eager"):
        visual_attention_score(model, processor, _photo(), PROMPT, "Red sneakers")


def test_threshold_drops_the_lowest_share() -> None:
    scores = [0.4, 0.1, 0.3, 0.2, 0.5, 0.05, 0.6, 0.35]
    threshold = threshold_for(scores, 0.25)
    assert threshold == 0.2
    assert select_grounded(scores, threshold) == [0, 2, 3, 4, 6, 7]
    with pytest.raises(ValueError):
        threshold_for(scores, 1.0)
