"""Sentence-embedding relevance judge on all-MiniLM-L6-v2 (a cheap extra CQE opinion):
yes when the caption is close enough to the task context."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from workers.backends.base import JudgeInput, Verdict
from workers.models import minilm_folder

_lock = threading.Lock()
_encoder: tuple[Any, Any] | None = None


def _load() -> tuple[Any, Any]:
    global _encoder
    with _lock:
        if _encoder is None:
            from transformers import AutoModel, AutoTokenizer

            folder = minilm_folder()
            _encoder = (
                AutoTokenizer.from_pretrained(folder),
                AutoModel.from_pretrained(folder).eval(),
            )
        return _encoder


def embed(texts: Sequence[str]) -> Any:
    """Mean-pooled, L2-normalised sentence embeddings."""
    import torch

    tokenizer, model = _load()
    batch = tokenizer(
        list(texts), padding=True, truncation=True, max_length=256, return_tensors="pt"
    )
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


class EmbeddingJudge:
    name = "minilm"

    def __init__(self, threshold: float = 0.25) -> None:
        self.threshold = threshold

    def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        if not items:
            return []
        captions = embed([item.caption for item in items])
        contexts = embed([" ".join(item.context.values()) or item.prompt for item in items])
        sims = (captions * contexts).sum(-1).tolist()
        # score: the yes-margin (similarity minus threshold), what a tie break sums
        return [Verdict(vote=s >= self.threshold, score=float(s) - self.threshold) for s in sims]
