"""The one place a uniM3 user message becomes the text a causal LM reads, and the one rule
that fits it into the token cutoff: serving, training and evaluation all go through here.

Forms (``predictor.prompt_format``):

- ``mistral_raw``: the authors' raw Mistral form, as uniM3-M was trained (eCeLLM's
  ``templates/mistral.json``): ``"[INST] Below is an instruction ... request.\\n\\n"`` +
  user message + ``"\\n\\n [/INST] ### Response:\\n"``, no chat template. The text after the
  tokenizer's BOS is exactly :meth:`schemas.tasks.sample.InstructionSample.mistral_prompt`
  (whose template it is cut from). The BOS is written in front only when the tokenizer adds
  one by default (Mistral, Llama: the authors tokenized with ``add_special_tokens=True``);
  every forward pass encodes with ``add_special_tokens=False``.
- ``chat``: the model's own chat template (a user turn plus the generation prompt); the bare
  message where the tokenizer has no template.
- ``auto`` resolves to ``mistral_raw`` for Mistral-family models (``config.model_type ==
  "mistral"`` or ``mistral`` in the model's name), to ``chat`` otherwise.

Truncation (:func:`fit_prompt`): a prompt and its answer must fit ``cutoff`` tokens. The
answer is never cut, and neither are the prompt's two ends: a prompt longer than its room
(``cutoff - answer_budget`` tokens) keeps its first :data:`HEAD_TOKENS` tokens (at most a
quarter of the room: the BOS, the chat or ``[INST]`` header, the start of the instruction)
and as many of its last tokens as fill the room (the options and the response cue); the
middle, where long inputs (reviews, purchase histories) are, is what goes. ``answer_budget``
is the answer's tokens plus EOS in training, ``max_new_tokens`` when generating, 1 when
scoring the next token. A budget that leaves no room for a single prompt token raises
:class:`AnswerTooLong`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from schemas.tasks.sample import MISTRAL_PROMPT_NO_OPTIONS

Form = Literal["mistral_raw", "chat"]
Setting = Literal["auto", "mistral_raw", "chat"]
FORMS: tuple[Form, ...] = ("mistral_raw", "chat")
#: Prompt plus answer tokens, the paper's training cutoff (LoRA ``cutoff``).
DEFAULT_CUTOFF = 2048
#: Tokens a cut prompt keeps from its beginning (at most a quarter of its room).
HEAD_TOKENS = 64

_BODY = "### Instruction:\n{instruction}\n\n### Input:\n{input}"
_HEAD, _found, _TAIL = MISTRAL_PROMPT_NO_OPTIONS.partition(_BODY)
if not _found:  # pragma: no cover - the template changed shape
    raise ImportError("MISTRAL_PROMPT_NO_OPTIONS no longer holds the uniM3 body")


class AnswerTooLong(ValueError):
    """The answer budget leaves no room for the prompt within the cutoff."""


def resolve_form(setting: str, model_type: str | None, name: str) -> Form:
    """The form ``setting`` (``auto``, ``mistral_raw``, ``chat``) means for this model."""
    if setting in FORMS:
        return setting
    if setting != "auto":
        raise ValueError(f"prompt format must be auto, mistral_raw or chat, not {setting!r}")
    mistral = model_type == "mistral" or "mistral" in name.lower()
    return "mistral_raw" if mistral else "chat"


def default_bos(tokenizer: Any) -> str:
    """The BOS text the tokenizer puts in front of an encoding by default, or ``""``."""
    bos = getattr(tokenizer, "bos_token", None)
    if tokenizer is None or not bos:
        return ""
    ids = tokenizer("", add_special_tokens=True)["input_ids"]
    return str(bos) if tokenizer.bos_token_id in ids else ""


def render(tokenizer: Any, user_message: str, form: Form) -> str:
    """The full prompt text of ``user_message`` (the uniM3 Instruction / Input / Options
    text) in ``form``; ``tokenizer`` gives the chat template and the BOS (``None``: none)."""
    if form == "mistral_raw":
        return default_bos(tokenizer) + _HEAD + user_message + _TAIL
    if form != "chat":
        raise ValueError(f"unknown prompt form {form!r}")
    if getattr(tokenizer, "chat_template", None):
        text: str = tokenizer.apply_chat_template(
            [{"role": "user", "content": user_message}],
            tokenize=False,
            add_generation_prompt=True,
        )
        return text
    return user_message


def fit_prompt(prompt_ids: Sequence[int], answer_budget: int, cutoff: int) -> list[int]:
    """``prompt_ids`` cut in the middle (head and tail kept, see the module docstring) so
    that ``answer_budget`` more tokens fit ``cutoff``."""
    if answer_budget < 1:
        raise ValueError(f"the answer budget must be at least one token, not {answer_budget}")
    room = cutoff - answer_budget
    if room < 1:
        raise AnswerTooLong(
            f"an answer of {answer_budget} tokens leaves no room for a prompt within the "
            f"cutoff of {cutoff} tokens"
        )
    if len(prompt_ids) <= room:
        return list(prompt_ids)
    head = min(HEAD_TOKENS, room // 4)
    return [*prompt_ids[:head], *prompt_ids[len(prompt_ids) - (room - head) :]]


def prompt_ids(tokenizer: Any, text: str, answer_budget: int, cutoff: int) -> list[int]:
    """The token ids of a rendered prompt, fitted by :func:`fit_prompt`."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    return fit_prompt(ids, answer_budget, cutoff)
