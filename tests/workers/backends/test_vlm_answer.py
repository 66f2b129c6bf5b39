"""VIT-Pro's direct path on a tiny randomly initialised LLaVA the test builds: legal answers,
batching, LoRA adapters on the language model, several images per prompt, resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.support.tiny_vlm import build_tiny_llava, needs_smollm2
from workers.backends.base import BackendUnavailable
from workers.backends.vlm_answer import (
    LANGUAGE_ATTENTION,
    DirectInput,
    TransformersVlmAnswerer,
    fit,
    user_content,
)

pytestmark = needs_smollm2
YES_NO = ["yes", "no"]
LETTERS = ["A", "B", "C", "D"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="module")
def answerer(folder: Path) -> TransformersVlmAnswerer:
    return TransformersVlmAnswerer(str(folder), micro_batch=3)


def _image(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Image.Image:
    image = Image.new("RGB", size, color)
    image.paste((255 - color[0], 40, 90), (8, 8, size[0] // 2, size[1] // 2))
    return image


def _items() -> list[DirectInput]:
    red, blue, green = _image((200, 0, 0)), _image((0, 0, 200), (40, 90)), _image((0, 160, 0))
    return [
        DirectInput([red], "Question: Is there a damage on the product? OCR Tokens: ", YES_NO),
        DirectInput([blue, red], "Question: Does the image match? OCR Tokens: SOAP 2x", YES_NO),
        DirectInput([green], "Which colour is the box? A red B blue C green D grey", LETTERS),
        DirectInput([red, green, blue], 'Is this product from "Acme" brand?', YES_NO),
        DirectInput([], "No photo came. Is the parcel damaged?", YES_NO),
    ]


def _adapter(base_folder: Path, out: Path, seed: int) -> Path:
    """A LoRA adapter on the language model's attention, lora_B randomly non-zero."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(base_folder)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=16, target_modules=LANGUAGE_ATTENTION, init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    adapted = {n for n, m in peft_model.named_modules() if hasattr(m, "lora_B")}
    assert adapted and all(".language_model." in n for n in adapted), adapted
    assert {n.rsplit(".", 1)[-1] for n in adapted} == {"q_proj", "k_proj", "v_proj", "o_proj"}
    peft_model.save_pretrained(str(out))
    return out


def test_answers_are_always_legal_labels(answerer: TransformersVlmAnswerer, folder: Path) -> None:
    items = _items()
    choices = answerer.choose(items, None)
    assert len(choices) == len(items)
    for choice, item in zip(choices, items, strict=True):
        assert choice.label in item.labels
        assert choice.scores is not None and set(choice.scores) == set(item.labels)
        assert all(s < 0 for s in choice.scores.values())
        assert choice.scores[choice.label] == max(choice.scores.values())
    assert answerer.name == f"vlm:{folder.name}"


def test_batched_equals_one_by_one(answerer: TransformersVlmAnswerer) -> None:
    items = _items()
    together = answerer.choose(items, None)
    alone = [answerer.choose([item], None)[0] for item in items]
    assert [c.label for c in together] == [c.label for c in alone]
    for a, b in zip(together, alone, strict=True):
        assert a.scores is not None and b.scores is not None
        for label in a.scores:
            assert a.scores[label] == pytest.approx(b.scores[label], abs=1e-4)


def test_lora_adapters_change_scores_and_none_restores_base(folder: Path, tmp_path: Path) -> None:
    answerer = TransformersVlmAnswerer(str(folder))
    items = _items()[:3]

    def scores(adapter: str | None) -> list[dict[str, float]]:
        return [c.scores or {} for c in answerer.choose(items, adapter)]

    def differ(a: list[dict[str, float]], b: list[dict[str, float]]) -> bool:
        return all(any(abs(x[k] - y[k]) > 1e-3 for k in x) for x, y in zip(a, b, strict=True))

    base = scores(None)
    answerer.load_adapter("direct@v1", _adapter(folder, tmp_path / "a", seed=1))
    answerer.load_adapter("direct@v1", tmp_path / "missing")  # an immutable ref: a no-op
    first = scores("direct@v1")
    assert differ(first, base)
    assert scores(None) == base  # exactly the base model's scores
    answerer.load_adapter("direct@v2", _adapter(folder, tmp_path / "b", seed=2))
    second = scores("direct@v2")
    assert differ(second, first) and differ(second, base)
    with pytest.raises(KeyError, match="not loaded"):
        answerer.choose(items, "other@v1")
    answerer.unload_adapter("direct@v1")
    assert scores("direct@v2") == second and scores(None) == base
    answerer.unload_adapter("direct@v2")  # the last one: back to the bare model
    assert answerer.adapters == set() and scores(None) == base
    answerer.load_adapter("direct@v1", tmp_path / "a")
    assert scores("direct@v1") == first


def test_two_images_in_one_prompt(answerer: TransformersVlmAnswerer) -> None:
    """Both images reach the model (numbered, ``###``-separated): swapping one changes the
    scores; a second image is more than decoration."""
    red, blue = _image((200, 0, 0)), _image((0, 0, 200))
    prompt = "Do the two photos show the same product?"
    text = answerer.chat_prompt(2, prompt)
    assert "[1] <image> ### [2] <image> ### " + prompt in text
    pair = answerer.choose([DirectInput([red, blue], prompt, YES_NO)], None)[0]
    other = answerer.choose([DirectInput([red, red], prompt, YES_NO)], None)[0]
    one = answerer.choose([DirectInput([red], prompt, YES_NO)], None)[0]
    assert pair.label in YES_NO
    assert pair.scores is not None and other.scores is not None and one.scores is not None
    assert pair.scores["yes"] != pytest.approx(other.scores["yes"], abs=1e-6)
    assert pair.scores["yes"] != pytest.approx(one.scores["yes"], abs=1e-6)


def test_images_are_shrunk_to_max_side_and_never_enlarged() -> None:
    photo = Image.new("RGBA", (1400, 1200))
    shrunk = fit(photo, 512)
    assert shrunk.size == (512, 439) and shrunk.mode == "RGB"
    assert fit(Image.new("RGB", (300, 200)), 512).size == (300, 200)
    assert user_content(1, "Q") == [{"type": "image"}, {"type": "text", "text": "Q"}]
    assert user_content(0, "Q") == [{"type": "text", "text": "Q"}]


def test_missing_folder_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="does not exist"):
        TransformersVlmAnswerer(str(tmp_path / "no-such-vlm"))
