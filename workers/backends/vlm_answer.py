"""VIT-Pro's direct path: a transformers vision-language model answers a claim task (yes/no,
an option letter) straight from the image(s), the OCR tokens and the instruction, with an
optional LoRA adapter; no caption, no CQE vote, no text-only LLM in between.

Contract.

- Input: one :class:`DirectInput` per request: the images (any number, 0 included), the
  prompt text (instruction, question, OCR tokens: built by the caller) and the legal answers.
- Prompt: one user turn through the processor's chat template, images first, then the prompt.
  With two or more images they are numbered ``[1]``, ``[2]`` ... and the contexts are
  separated by ``###`` (``[1] <image> ### [2] <image> ### <prompt>``), VIT-Pro's form, which
  made their answers insensitive to image order. One image: ``<image><prompt>``.
- Resolution: each image is shrunk (aspect kept, never enlarged) so its longest side is at
  most ``max_side`` (512 by default: VIT-Pro measured 512 as good as native and 224 costing
  damage detection 21.9 points) before the processor's own resizing.
- Answer: option scoring, one forward pass per micro-batch: the next-token log-probabilities
  right after the templated prompt, each label counted through its first-token variants
  (:class:`~workers.backends.label_tokens.LabelTokens`, the rule of
  :class:`~workers.backends.causal_lm.CausalLM`); the chosen label is always a legal one.
- Adapters: LoRA adapters through peft under immutable ``name@vN`` refs
  (:class:`~workers.backends.peft_adapters.PeftAdapters`); VIT-Pro puts them on the attention
  layers of the language model: :data:`LANGUAGE_ATTENTION` is that ``target_modules`` pattern.
- Loading: a local folder (``AutoModelForImageTextToText`` + ``AutoProcessor``, no model hub);
  a missing folder raises :class:`~workers.backends.base.BackendUnavailable`.

Model families: any image-text-to-text model whose processor has a chat template taking
``{"type": "image"}`` / ``{"type": "text"}`` content parts and accepts one list of images per
prompt (LLaVA, Idefics2/3, Qwen2-VL/2.5-VL, Llama-3.2-Vision ...). The tests run a tiny LLaVA.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from workers.backends.base import BackendUnavailable, Choice
from workers.backends.label_tokens import LabelTokens
from workers.backends.peft_adapters import PeftAdapters

#: VIT-Pro: 512 is as good as native resolution, 768 adds nothing, 224 costs DD 21.9 points.
MAX_SIDE = 512
#: Prompts per forward pass (images make them long; an accelerator takes more).
MICRO_BATCH = 4
#: peft ``target_modules`` for VIT-Pro's placement: the attention projections of the
#: language model (``language_model`` in LLaVA, Qwen2-VL, Llama-3.2-Vision; ``text_model``
#: in Idefics2), never the vision tower's or the connector's.
LANGUAGE_ATTENTION = r"(.*\.)?(language_model|text_model)\..*\.(q_proj|k_proj|v_proj|o_proj)"


@dataclass(frozen=True)
class DirectInput:
    images: list[Image.Image]
    #: The task prompt: instruction, question, OCR tokens (the caller builds it).
    prompt: str
    #: The legal answers (``["yes", "no"]``, option letters ...).
    labels: Sequence[str]


class DirectAnswerer(Protocol):
    """Answers from image(s) + prompt directly (VIT-Pro), one legal label per input."""

    name: str

    def choose(self, items: Sequence[DirectInput], adapter: str | None) -> list[Choice]: ...


def fit(image: Image.Image, max_side: int) -> Image.Image:
    """An RGB copy whose longest side is at most ``max_side`` (aspect kept, never enlarged)."""
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    if max(out.size) > max_side:
        out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return out


def user_content(n_images: int, prompt: str) -> list[dict[str, str]]:
    """The chat content parts of one prompt: images first (numbered and ``###``-separated
    when there are two or more), then the prompt text."""
    if n_images == 1:
        return [{"type": "image"}, {"type": "text", "text": prompt}]
    parts: list[dict[str, str]] = []
    for i in range(1, n_images + 1):
        prefix = f"[{i}] " if i == 1 else f" ### [{i}] "
        parts += [{"type": "text", "text": prefix}, {"type": "image"}]
    parts.append({"type": "text", "text": (" ### " if n_images else "") + prompt})
    return parts


class TransformersVlmAnswerer(PeftAdapters):
    def __init__(
        self,
        folder: str,
        max_side: int = MAX_SIDE,
        micro_batch: int = MICRO_BATCH,
        model: Any = None,
        processor: Any = None,
        private: bool | None = None,
    ) -> None:
        """``model``/``processor``: an already loaded pair (e.g. the captioner's), in which
        case ``private`` defaults to ``False`` (no adapters on a shared model); a model
        loaded here from ``folder`` is this answerer's own copy."""
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if model is None:
            path = Path(folder)
            if not path.is_dir():
                raise BackendUnavailable(
                    f"VLM folder {folder} does not exist (no model hub is used)"
                )
            processor = AutoProcessor.from_pretrained(path)  # type: ignore[no-untyped-call]
            dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
            model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
            if torch.cuda.is_available():
                model = model.to("cuda")
            private = True if private is None else private
        self.model = model.eval()
        self.private = bool(private)
        self.processor = processor
        self.name = f"vlm:{Path(folder).name}"
        self.max_side = max_side
        self.micro_batch = micro_batch
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"  # the last position is every row's next token
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._labels = LabelTokens(tokenizer)
        # Only the last position's logits are needed: skip the rest where the model allows.
        forward = inspect.signature(type(model).forward).parameters
        self._forward_kwargs = {"logits_to_keep": 1} if "logits_to_keep" in forward else {}
        self._init_adapters()

    def chat_prompt(self, n_images: int, prompt: str) -> str:
        text: str = self.processor.apply_chat_template(
            [{"role": "user", "content": user_content(n_images, prompt)}],
            add_generation_prompt=True,
        )
        return text

    def _micro_batches(self, items: Sequence[DirectInput]) -> Iterator[list[int]]:
        """Indices in micro-batches of similar size (image count, then prompt length), so
        little of a forward pass goes to padding."""
        order = sorted(
            range(len(items)), key=lambda i: (len(items[i].images), len(items[i].prompt))
        )
        for start in range(0, len(order), self.micro_batch):
            yield order[start : start + self.micro_batch]

    def _next_token_logprobs(self, items: Sequence[DirectInput]) -> Any:
        import torch

        texts = [self.chat_prompt(len(item.images), item.prompt) for item in items]
        images = [[fit(image, self.max_side) for image in item.images] for item in items]
        batch = self.processor(
            text=texts,
            images=images if any(images) else None,
            return_tensors="pt",
            padding=True,
        )
        batch = batch.to(device=self.model.device, dtype=self.model.dtype)
        with torch.inference_mode():
            logits = self.model(**batch, **self._forward_kwargs).logits[:, -1, :]
        return torch.log_softmax(logits.float(), dim=-1)

    def label_logprobs(self, items: Sequence[DirectInput]) -> list[dict[str, float]]:
        """Per input, log P(answer starts with label) for each of its legal labels."""
        out: list[dict[str, float]] = [{} for _ in items]
        for indices in self._micro_batches(items):
            logprobs = self._next_token_logprobs([items[i] for i in indices])
            for i, row in zip(indices, logprobs, strict=True):
                out[i] = self._labels.scores(row, items[i].labels)
        return out

    def choose(self, items: Sequence[DirectInput], adapter: str | None) -> list[Choice]:
        """One legal label per input, with its scores, under ``adapter`` (``None``: base)."""
        for item in items:
            if not item.labels:
                raise ValueError("a direct input needs at least one legal label")
        with self.using(adapter):
            scores = self.label_logprobs(items)
        return [Choice(label=max(s, key=lambda k: s[k]), scores=s) for s in scores]
