"""transformers causal LMs: yes/no judging and option scoring in one forward pass per batch,
free generation for the paper-compatible path, and LoRA adapters through peft.

Scoring reads the next-token distribution right after the prompt and compares the legal
answers' first tokens (``A``/`` A``, ``yes``/``Yes`` ...): the answer is always legal, so
there are no parse failures by construction.

uniM3 prompts are rendered in the model's prompt form and cut to its cutoff by
:mod:`workers.backends.prompt_form` (the rule training uses too); judges ask under the
model's chat template, or, for a base model without one (Gemma-3-270M), the question after
its BOS followed by ``\nAnswer:`` (:class:`LlmJudge`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from schemas.tasks.answers import parse_answer, parse_judge_answer
from workers.backends.base import Choice, JudgeInput, Verdict
from workers.backends.label_tokens import LabelTokens
from workers.backends.peft_adapters import PeftAdapters
from workers.backends.prompt_form import (
    DEFAULT_CUTOFF,
    default_bos,
    prompt_ids,
    render,
    resolve_form,
)
from workers.models import load_causal_lm

MICRO_BATCH = 8


class CausalLM(PeftAdapters):
    """A causal LM and its tokenizer, with optional peft adapters (``name@vN`` refs)."""

    def __init__(
        self,
        name: str,
        cache_dir: Path,
        model: Any = None,
        tokenizer: Any = None,
        private: bool = False,
        micro_batch: int = MICRO_BATCH,
        prompt_format: str = "auto",
        cutoff: int = DEFAULT_CUTOFF,
    ) -> None:
        """``private``: an own copy of the weights, required before loading adapters.
        ``micro_batch``: prompts per forward pass (8 suits a CPU; an accelerator takes more).
        ``prompt_format``: how :meth:`prompt` renders uniM3 messages (``auto``,
        ``mistral_raw``, ``chat``). ``cutoff``: prompt plus answer tokens of every forward
        pass; longer prompts lose their beginning."""
        self.name = name
        self.private = private
        self.micro_batch = micro_batch
        self.cutoff = cutoff
        if model is None:
            model, tokenizer = load_causal_lm(name, cache_dir, private=private)
        self.model = model
        self.tokenizer = tokenizer
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        self.prompt_form = resolve_form(prompt_format, model_type, name)
        self._labels = LabelTokens(tokenizer)
        self._init_adapters()

    # -- prompts -----------------------------------------------------------------------

    def prompt(self, user_message: str) -> str:
        """A uniM3 user message in this model's prompt form (what it was trained on)."""
        return render(self.tokenizer, user_message, self.prompt_form)

    def chat_prompt(self, user_message: str) -> str:
        """``user_message`` in the model's chat template (judges)."""
        return render(self.tokenizer, user_message, "chat")

    # -- forward passes ----------------------------------------------------------------

    def encode(self, prompts: Sequence[str], answer_budget: int) -> list[list[int]]:
        """Token ids of full prompt texts, each cut so ``answer_budget`` tokens fit the
        cutoff (:func:`~workers.backends.prompt_form.fit_prompt`)."""
        return [prompt_ids(self.tokenizer, p, answer_budget, self.cutoff) for p in prompts]

    def _batch(self, rows: Sequence[Sequence[int]]) -> dict[str, Any]:
        """Token id rows padded on the tokenizer's side, on the model's device."""
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            span = slice(width - len(row), width) if self._left else slice(0, len(row))
            ids[i, span] = torch.tensor(list(row), dtype=torch.long)
            mask[i, span] = 1
        device = self.model.device
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}

    @property
    def _left(self) -> bool:
        return getattr(self.tokenizer, "padding_side", "left") == "left"

    def _next_token_logprobs(self, rows: Sequence[Sequence[int]]) -> Any:
        import torch

        with torch.inference_mode():
            # only the last position's logits: a 262k vocabulary (Gemma) at every position
            # cost more than the rest of the pass (8 prompts: 18.8 s -> 7.3 s)
            logits = self.model(**self._batch(rows), logits_to_keep=1).logits[:, -1, :]
        return torch.log_softmax(logits.float(), dim=-1)

    def _micro_batches(self, rows: Sequence[Sequence[int]]) -> Iterator[list[int]]:
        """Indices of ``rows`` in micro-batches of similar token length: padding a short
        prompt to a long one's length is pure waste on a compute-bound CPU."""
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        for start in range(0, len(order), self.micro_batch):
            yield order[start : start + self.micro_batch]

    def label_logprobs(
        self, prompts: Sequence[str], labels: Sequence[Sequence[str]]
    ) -> list[dict[str, float]]:
        """Per prompt (full text, cut to leave one token within the cutoff), log P(answer
        starts with label) for each legal label
        (:class:`~workers.backends.label_tokens.LabelTokens`)."""
        out: list[dict[str, float]] = [{} for _ in prompts]
        rows = self.encode(prompts, 1)
        for indices in self._micro_batches(rows):
            logprobs = self._next_token_logprobs([rows[i] for i in indices])
            for i, row in zip(indices, logprobs, strict=True):
                out[i] = self._labels.scores(row, labels[i])
        return out

    def generate(
        self,
        prompts: Sequence[str],
        max_new_tokens: int,
        constrain: Callable[[Sequence[int]], Mapping[str, Any]] | None = None,
    ) -> list[str]:
        """Greedy continuations of ``prompts`` (each cut to leave ``max_new_tokens`` within
        the cutoff). ``constrain``, given the prompt indices of a
        micro-batch (in batch row order), returns extra ``model.generate`` arguments for it
        (``logits_processor``, ``stopping_criteria``): how decoding is held to a grammar."""
        import torch

        texts: list[str] = [""] * len(prompts)
        rows = self.encode(prompts, max_new_tokens)
        for indices in self._micro_batches(rows):
            batch = self._batch([rows[i] for i in indices])
            with torch.inference_mode():
                out = self.model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                    **(constrain(indices) if constrain is not None else {}),
                )
            new = out[:, batch["input_ids"].shape[1] :]
            decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
            for i, text in zip(indices, decoded, strict=True):
                texts[i] = text
        return texts


class LlmJudge:
    """CQE judge.

    ``score`` (default): one forward pass per batch, vote = P(yes) > P(no), score = the
    yes-margin log P(yes) - log P(no) (what a tie between judges is decided by); never a
    parse failure. ``generate``: the authors' way, up to ``max_new_tokens`` generated greedily
    and parsed by their rule (:func:`~schemas.tasks.answers.parse_judge_answer`), kept to
    measure against.

    Prompt: a chat model (its tokenizer has a chat template) gets the CQE question as the
    user's message under its template; a base model (Gemma-3-270M) gets the question followed
    by :data:`BASE_ANSWER_CUE`, so its next token is the answer.
    """

    #: What follows the question for a model without a chat template.
    BASE_ANSWER_CUE = "\nAnswer:"

    def __init__(self, lm: CausalLM, decoding: str = "score", max_new_tokens: int = 16) -> None:
        self.lm = lm
        self.name = f"llm:{lm.name}"
        self.decoding = decoding
        self.max_new_tokens = max_new_tokens

    def prompt(self, question: str) -> str:
        """The text the model continues with its answer (prompts are tokenised without
        special tokens, so a base model's prompt starts with the beginning-of-text token its
        tokenizer would add: Gemma answers badly without ``<bos>``)."""
        tokenizer = self.lm.tokenizer
        if getattr(tokenizer, "chat_template", None):
            return self.lm.chat_prompt(question)
        return f"{default_bos(tokenizer)}{question}{self.BASE_ANSWER_CUE}"

    def judge(self, items: Sequence[JudgeInput]) -> list[Verdict]:
        prompts = [self.prompt(item.prompt) for item in items]
        with self.lm.using(None):
            if self.decoding == "generate":
                texts = self.lm.generate(prompts, self.max_new_tokens)
                return [Verdict(vote=parse_judge_answer(t) == "yes", text=t) for t in texts]
            scores = self.lm.label_logprobs(prompts, [["yes", "no"]] * len(prompts))
        return [Verdict(vote=s["yes"] > s["no"], score=s["yes"] - s["no"]) for s in scores]


class LlmOptionScorer:
    """uniM3 answers by option scoring (``score``) or by the authors' free generation."""

    def __init__(self, lm: CausalLM, decoding: str = "score", max_new_tokens: int = 100) -> None:
        self.lm = lm
        self.name = lm.name
        self.decoding = decoding
        self.max_new_tokens = max_new_tokens

    def choose(
        self, prompts: Sequence[str], labels: Sequence[Sequence[str]], adapter: str | None
    ) -> list[Choice]:
        full = [self.lm.prompt(p) for p in prompts]
        with self.lm.using(adapter):
            if self.decoding == "generate":
                texts = self.lm.generate(full, self.max_new_tokens)
                return [
                    Choice(label=parse_answer(t, ls) or "", text=t)
                    for t, ls in zip(texts, labels, strict=True)
                ]
            scores = self.lm.label_logprobs(full, labels)
        return [Choice(label=max(s, key=lambda k: s[k]), scores=s) for s in scores]
