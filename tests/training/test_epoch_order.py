"""Epoch order: reproducible, a permutation, classes spread over every micro-batch window."""

from __future__ import annotations

import random
from collections import Counter

from training.lora import GROUP, _epoch_order


def _rows(n: int, seed: int = 1) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    return [([0] * rng.randint(80, 200), []) for _ in range(n)]


def test_order_is_a_reproducible_permutation() -> None:
    rows = _rows(300)
    strata = [f"SA:{'BCD'[i % 3]}" for i in range(300)]
    first = _epoch_order(rows, strata, 4, seed=0)
    assert sorted(first) == list(range(300))
    assert first == _epoch_order(rows, strata, 4, seed=0)
    assert first != _epoch_order(rows, strata, 4, seed=1)


def test_classes_are_spread_even_when_the_input_is_sorted_by_class() -> None:
    n = 3 * 128
    rows = _rows(n)
    strata = ["B"] * 128 + ["C"] * 128 + ["D"] * 128  # as a topic might deliver them
    order = _epoch_order(rows, strata, 4, seed=0)
    window = GROUP * 4
    for start in range(0, n - window + 1, window):
        counts = Counter(strata[i] for i in order[start : start + window])
        assert set(counts) == {"B", "C", "D"}
        assert max(counts.values()) - min(counts.values()) <= 4


def test_micro_batches_within_a_window_have_similar_lengths() -> None:
    rows = _rows(256)
    strata = ["x"] * 256
    order = _epoch_order(rows, strata, 4, seed=0)
    spans = [
        max(len(rows[i][0]) for i in order[k : k + 4])
        - min(len(rows[i][0]) for i in order[k : k + 4])
        for k in range(0, 256, 4)
    ]
    assert sum(spans) / len(spans) < 15  # random micro-batches would span ~60 tokens
