"""The transformers VLM captioning path on a tiny randomly initialised LLaVA the test builds
(it exercises the code path; its captions mean nothing)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.support.tiny_vlm import build_tiny_llava, needs_smollm2
from workers.backends.base import CaptionInput
from workers.backends.vlm import TransformersVlmCaptioner

pytestmark = needs_smollm2


def test_tiny_vlm_captions_a_batch(tmp_path: Path) -> None:
    build_tiny_llava(tmp_path)
    captioner = TransformersVlmCaptioner(str(tmp_path), max_new_tokens=5)
    images = [Image.new("RGB", (64, 48), (200, 0, 0)), Image.new("RGB", (40, 40), (0, 0, 200))]
    captions = captioner.caption(
        [CaptionInput(img, f"Describe product {i}.", {}) for i, img in enumerate(images)]
    )
    assert len(captions) == 2
    assert all(isinstance(c, str) for c in captions)
    assert captioner.name == f"vlm:{tmp_path.name}"
