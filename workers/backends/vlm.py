"""transformers vision-language captioner (image-text-to-text models such as Llama-3.2-Vision,
Qwen2-VL, LLaVA), loaded from a local folder; batched generation with greedy decoding.

Each item is one sample with one image (the processor gets ``[[image], [image], ...]``: a flat
list would be read as one sample with N images, which Mllama's processor refuses). The text
is the model's chat template around :func:`~schemas.tasks.prompts.concise_caption_prompt`;
where the rendered template already starts with the tokenizer's BOS, the processor adds no
special tokens (no second BOS, as the authors' ``add_special_tokens=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schemas.tasks.prompts import concise_caption_prompt
from workers.backends.base import BackendUnavailable, CaptionInput


class TransformersVlmCaptioner:
    def __init__(
        self, folder: str, max_new_tokens: int = 128, model: Any = None, processor: Any = None
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if model is None:
            path = Path(folder)
            if not path.is_dir():
                raise BackendUnavailable(
                    f"VLM folder {folder} does not exist (no model hub is used)"
                )
            processor = AutoProcessor.from_pretrained(path)
            dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
            model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
            if torch.cuda.is_available():
                model = model.to("cuda")
        self.model = model.eval()
        self.processor = processor
        self.name = f"vlm:{Path(folder).name}"
        self.max_new_tokens = max_new_tokens
        tokenizer = getattr(processor, "tokenizer", processor)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:  # batches need padding; many chat tokenizers lack it
            tokenizer.pad_token = tokenizer.eos_token

    def chat_texts(self, items: Sequence[CaptionInput]) -> list[str]:
        """Each item's prompt under the model's chat template (one image, the instruction
        said once)."""
        texts: list[str] = [
            self.processor.apply_chat_template(
                [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image"},
                            {"type": "text", "text": concise_caption_prompt(item.prompt)},
                        ],
                    }
                ],
                add_generation_prompt=True,
            )
            for item in items
        ]
        return texts

    def encode(self, items: Sequence[CaptionInput]) -> Any:
        """The processor's batch for ``items`` (left-padded tensors on the model's device)."""
        texts = self.chat_texts(items)
        bos = getattr(getattr(self.processor, "tokenizer", self.processor), "bos_token", None)
        templated_bos = isinstance(bos, str) and bos != "" and all(t.startswith(bos) for t in texts)
        batch = self.processor(
            text=texts,
            images=[[item.image] for item in items],
            return_tensors="pt",
            padding=True,
            add_special_tokens=not templated_bos,
        )
        return batch.to(self.model.device)

    def caption(self, items: Sequence[CaptionInput]) -> list[str]:
        import torch

        if not items:
            return []
        batch = self.encode(items)
        with torch.inference_mode():
            out = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False)
        new = out[:, batch["input_ids"].shape[1] :]
        decoded: list[str] = self.processor.batch_decode(new, skip_special_tokens=True)
        return [text.strip() for text in decoded]
