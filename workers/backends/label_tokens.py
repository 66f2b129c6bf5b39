"""The label rule of option scoring, shared by every backend that answers by next-token
log-probabilities (:class:`~workers.backends.causal_lm.CausalLM`,
:class:`~workers.backends.vlm_answer.TransformersVlmAnswerer`).

A label counts through the first tokens of the ways a model may start writing it: a word
label (``yes``) in its case variants (``yes``, ``Yes``, `` yes`` ...), a single-letter option
label only as options are written, upper-case (``A``, `` A``): lower-case ``a`` and `` i``
are words, and counting them would credit options A and I with every article. log P(answer
starts with label) is the log-sum-exp of those tokens' log-probabilities. A token an earlier
label of the same prompt already claimed is not counted again, and a label with no token
left scores ``-inf``; the best-scoring label is therefore always one of the legal ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The context an answer's first token is also read in (the end of ``### Response:\n``).
NEWLINE = "\n"


class LabelTokens:
    """First-token variants per label for one tokenizer (cached), and label scores."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._cache: dict[str, list[int]] = {}

    def variants(self, label: str) -> list[int]:
        """First-token ids of the ways a model may start writing ``label``: an option letter
        as written (``A``, `` A``), a word in its case variants (``yes``, ``Yes``, `` yes``,
        `` Yes``). Each form counts by its first token alone and after a newline (where an
        answer starts after ``### Response:\n``: on a SentencePiece tokenizer that is the bare
        piece ``A``, alone it is ``▁A``); a token that is only whitespace (SentencePiece's
        ``▁`` that starts `` A`` and `` B`` alike) or that does not begin the label is left
        out, so no label scores another's text."""
        if label not in self._cache:
            letter = len(label) == 1 and label.isalpha()
            forms = (
                {label, " " + label}
                if letter
                else {
                    label,
                    label.capitalize(),
                    label.lower(),
                    " " + label,
                    " " + label.capitalize(),
                }
            )
            ids = {
                token
                for form in forms
                for token in self._first_tokens(form)
                if self._begins(token, label, letter)
            }
            self._cache[label] = sorted(ids)
        return self._cache[label]

    def _first_tokens(self, form: str) -> list[int]:
        """The first token of ``form`` encoded alone and encoded after a newline."""
        encode = self.tokenizer.encode
        tokens: list[int] = list(encode(form, add_special_tokens=False)[:1])
        context = encode(NEWLINE, add_special_tokens=False)
        after = encode(NEWLINE + form, add_special_tokens=False)
        if after[: len(context)] == context and len(after) > len(context):
            tokens.append(after[len(context)])
        return tokens

    def _begins(self, token: int, label: str, letter: bool) -> bool:
        """Whether ``token``'s text (spaces aside) is a non-empty start of ``label``, as
        written for a letter, in any case for a word."""
        text = str(self.tokenizer.decode([token])).strip()
        if not text:
            return False
        return label.startswith(text) if letter else label.lower().startswith(text.lower())

    def scores(self, logprobs: Any, labels: Sequence[str]) -> dict[str, float]:
        """Per legal label, log P(answer starts with label) from one next-token log-softmax
        row (a 1-d tensor over the vocabulary)."""
        import torch

        taken: set[int] = set()
        scores: dict[str, float] = {}
        for label in labels:
            ids = [t for t in self.variants(label) if t not in taken]
            taken.update(ids)
            scores[label] = float(torch.logsumexp(logprobs[ids], dim=0)) if ids else float("-inf")
        return scores
