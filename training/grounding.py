"""VIT-Pro's visual-attention grounding filter (VisAttnScore) on the transformers VLM path:
how much of its attention a pre-trained VLM's answer tokens pay to the image tokens; training
samples that score low are dropped (VIT-Pro dropped the lowest 25%).

Contract.

- Input: a loaded image-text-to-text model and its processor (the pair
  :class:`~workers.backends.vlm_answer.TransformersVlmAnswerer` uses), one image, the prompt
  and the sample's answer. The model must run eager attention (load it with
  ``attn_implementation="eager"``): SDPA and flash kernels return no attention weights, and
  :func:`visual_attention_score` raises ``ValueError`` then.
- Prompt: the direct path's form (:func:`~workers.backends.vlm_answer.user_content`, one image,
  shrunk by :func:`~workers.backends.vlm_answer.fit`) under the processor's chat template with
  the generation prompt; the answer follows it in one encoding. The answer's tokens are those
  after the longest common prefix of the prompt's and the joint encoding's ids (a token that
  merges across the boundary counts as the answer's).
- Score: for each answer token, each layer and each head of the language model, the share of
  its attention on the image-token positions (the ids equal to the processor's
  ``image_token_id``, else the config's); the mean over all of them. In [0, 1]; 0 when the
  answer ignores the image. Models whose image is not in the self-attention sequence
  (Llama-3.2-Vision's cross-attention) have no image positions: ``ValueError``.
- Cost: one forward pass with every layer's attention matrix kept (layers x heads x L x L);
  meant for an offline filter on an accelerator, one sample at a time.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from PIL import Image

from workers.backends.vlm_answer import MAX_SIDE, fit, user_content

#: VIT-Pro dropped this share of its samples, the least grounded.
DROP_SHARE = 0.25


def encode_answer(
    processor: Any, image: Image.Image, prompt: str, answer: str, max_side: int = MAX_SIDE
) -> tuple[Any, int]:
    """The processor's batch of prompt + answer (one row) and the answer's first position."""
    text = processor.apply_chat_template(
        [{"role": "user", "content": user_content(1, prompt)}], add_generation_prompt=True
    )
    images = [[fit(image, max_side)]]
    head = processor(text=[text], images=images, return_tensors="pt")["input_ids"][0].tolist()
    joint = processor(text=[text + answer], images=images, return_tensors="pt")
    ids = joint["input_ids"][0].tolist()
    start = 0
    while start < min(len(head), len(ids)) and head[start] == ids[start]:
        start += 1
    if start == len(ids):
        raise ValueError(f"the answer {answer!r} adds no token to the prompt")
    return joint, start


def image_token_id(model: Any, processor: Any) -> int:
    for owner, name in (
        (processor, "image_token_id"),
        (model.config, "image_token_id"),
        (model.config, "image_token_index"),
    ):
        value = getattr(owner, name, None)
        if isinstance(value, int):
            return value
    raise ValueError("neither the processor nor the model config names an image token id")


def image_attention_share(attentions: Sequence[Any], is_image: Any, answer_start: int) -> float:
    """Mean over layers, heads and answer rows (``answer_start`` on) of the attention mass on
    the key positions where ``is_image`` (a boolean row over the sequence) is true.
    ``attentions``: per layer, a ``(1, heads, L, L)`` tensor of attention weights."""
    if not attentions or any(a is None for a in attentions):
        raise ValueError(
            "the model returned no attention weights: load it with attn_implementation='eager'"
        )
    total = 0.0
    for layer in attentions:
        rows = layer[0, :, answer_start:, :].float()
        total += float(rows[..., is_image].sum(dim=-1).mean())
    return min(1.0, max(0.0, total / len(attentions)))


def attention_on_image(model: Any, batch: Any, answer_start: int, image_token: int) -> float:
    """:func:`image_attention_share` of one forward pass over ``batch`` (one row)."""
    import torch

    is_image = batch["input_ids"][0] == image_token
    if not bool(is_image.any()):
        raise ValueError("no image token in the sequence (is the image cross-attended?)")
    forward = inspect.signature(type(model).forward).parameters
    extra = {"logits_to_keep": 1} if "logits_to_keep" in forward else {}
    batch = batch.to(device=model.device, dtype=model.dtype)
    with torch.inference_mode():
        out = model(**batch, output_attentions=True, **extra)
    return image_attention_share(out.attentions, is_image.to(model.device), answer_start)


def visual_attention_score(
    model: Any, processor: Any, image: Image.Image, prompt: str, answer: str
) -> float:
    """VisAttnScore of one sample (module contract)."""
    batch, start = encode_answer(processor, image, prompt, answer)
    return attention_on_image(model, batch, start, image_token_id(model, processor))


def threshold_for(scores: Sequence[float], drop_share: float = DROP_SHARE) -> float:
    """The score under which the lowest ``drop_share`` of ``scores`` lie."""
    if not scores:
        raise ValueError("no scores")
    if not 0.0 <= drop_share < 1.0:
        raise ValueError(f"drop_share {drop_share} is not in [0, 1)")
    return sorted(scores)[int(len(scores) * drop_share)]


def select_grounded(scores: Sequence[float], threshold: float) -> list[int]:
    """Indices of the samples to keep: those scoring ``threshold`` or more."""
    return [i for i, score in enumerate(scores) if score >= threshold]
