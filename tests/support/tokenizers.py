"""Tokenizers built in a test, no model hub: the behaviours of tokenizer families that no
offline model brings."""

from __future__ import annotations

from typing import Any


def sentencepiece_style() -> Any:
    """A tiny tokenizer that behaves as Llama's and Mistral's do (SentencePiece pieces with
    a ``▁`` word marker, one prepended to the text): "A" alone is ``▁A``, " A" is ``▁``
    then ``▁A``, and after a newline "A" is the bare piece ``A``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pieces = ["<unk>", "▁", "\n"]
    for word in ("A", "B", "yes", "Yes", "no", "No"):
        pieces += [word, "▁" + word]
    backend = Tokenizer(models.WordLevel({p: i for i, p in enumerate(pieces)}, "<unk>"))
    # as Llama's tokenizer.json: prepend the word marker, spaces become markers
    backend.normalizer = normalizers.Sequence(
        [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
    )
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", behavior="isolated"),
            pre_tokenizers.Split(Regex("▁"), behavior="merged_with_next"),
        ]
    )
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
