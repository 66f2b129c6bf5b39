"""OPAL's MACE step (conformity enhancement) as a deterministic grounding check: a training
listing keeps only what its photos support, and every cut is recorded.

Contract.

- Input: the reference :class:`Listing` (the LG answer ``{"title": ..., "aspects": {...}}``),
  the item's :class:`Evidence` (what the images show: their OCR tokens and their kept
  captions; never the seller text, which is what is being cleaned) and the category's
  :class:`CategoryRules`.
- Matching: title tokens and aspect values are split into words and normalised
  (:func:`normalise_word`: lower case, surrounding punctuation and a possessive ``'s`` off).
  A word is *supported* when the evidence has it; an alphabetic word of
  :data:`FUZZY_MIN_LENGTH` or more characters also when the evidence has a word within one
  edit of it (OCR noise: ``SNEAKRS``); a word with a digit only exactly (``CW2288`` must not
  match ``CW2289``); a compound (``Black/White``, ``Air-Max``) when each of its parts is.
- Title: a token is kept when supported, when it is in the category's vocabulary (its
  generic words: ``sneakers``, ``shoes``, ``women``) or when it is a connector (``and``,
  ``with``, ``-``, ``|``). Otherwise it is dropped, and why: ``noise`` (no letter or digit,
  or symbols inside a word: ``!!!``, ``L@@K``), ``marketing`` (:data:`MARKETING`: ``SHIP
  FAST``, ``NWT``, ``RARE``), ``size_or_code`` (a word with a digit or a size word: ``Sz``,
  ``9.5``, ``DD1391-100``), ``ungrounded`` (anything else). Connectors left at either end or
  next to another separator go too (``dangling``). Emphasis marks around a kept token
  (``NIKE!!!``) are removed.
- Aspects: a pair is kept when every word of its value is supported, or, for a key the rules
  mark inferable (:data:`INFERABLE`: ``Color``), when its :data:`InferenceRule` accepts it
  (:func:`colour_inferable`). A pair with a "cannot tell" value (``N/A``) is dropped as
  ``unanswerable``, an unsupported one as ``ungrounded`` or ``not_inferable``. Dropping a
  required key's pair is allowed and recorded (:attr:`DroppedPair.required`,
  :attr:`Refinement.missing_required`): the caller decides whether such an example trains.
- Output: a :class:`Refinement`: the listing before and after, what was dropped and why;
  :func:`summarise` counts them over a data set, so a run with and a run without refinement
  can be compared. A refined title with no token left is not :attr:`Refinement.usable`.
- Rewriter: :class:`Rewriter` is where a large VLM goes (OPAL's MACE rewrites each title with
  one): given one, :func:`refine_listing` asks it first, records what it removed as
  ``rewriter`` and then runs the deterministic check on its output. No model is built in.
- Training data: :func:`refine_examples` refines the gold output of each LG instruction
  example against the example's own input (its OCR tokens and kept captions, its allowed
  aspects, a vocabulary of its category: :func:`category_vocabulary`), so the model learns
  to state only what its prompt shows; ``caslie retrain --refine`` applies it to the
  training split.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson
from PIL import Image

from schemas.events import AspectSpec
from schemas.tasks import lg
from schemas.tasks.answers import normalise_value
from schemas.tasks.prompts import NO_CAPTION, NO_OCR, image_contexts
from schemas.tasks.sample import OCR_KEY, InstructionSample
from training.dataset import InstructionExample
from workers.backends.ocr import COLOURS

#: Alphabetic words at least this long match evidence within one edit (OCR noise).
FUZZY_MIN_LENGTH = 5
#: Words about the sale, not the item: dropped from a title unless the evidence shows them.
MARKETING = frozenset(
    [
        "free",
        "fast",
        "ship",
        "ships",
        "shipping",
        "shipped",
        "look",
        "wow",
        "hot",
        "sale",
        "deal",
        "deals",
        "rare",
        "htf",
        "vhtf",
        "cheap",
        "bargain",
        "obo",
        "trending",
        "discount",
        "nwt",
        "nwot",
        "nib",
        "bnib",
        "bnwt",
        "bnip",
        "authentic",
    ]
)
#: Size words; dropped from a title like codes unless the evidence shows them.
SIZE_WORDS = frozenset(
    [
        "size",
        "sz",
        "us",
        "uk",
        "eu",
        "xxs",
        "xs",
        "s",
        "m",
        "l",
        "xl",
        "xxl",
        "xxxl",
        "2xl",
        "3xl",
        "4xl",
        "small",
        "medium",
        "large",
        "petite",
        "tall",
        "wide",
        "narrow",
    ]
)
#: Words that join others; kept between kept tokens, dropped when left dangling.
CONNECTORS = frozenset(["and", "with", "for", "of", "in", "the", "a", "an", "by", "to", "on", "or"])
SEPARATORS = frozenset(["-", "|", "/", "&", "+", "\u2013", "\u2014", ","])
#: Colour words a Color value may name (the OCR captioner's names and common others), with
#: spellings folded to one form.
COLOUR_WORDS = frozenset(COLOURS) | frozenset(
    [
        "gold",
        "silver",
        "tan",
        "cream",
        "ivory",
        "khaki",
        "maroon",
        "burgundy",
        "olive",
        "charcoal",
        "bronze",
        "clear",
        "multicolor",
    ]
)
COLOUR_SPELLINGS = {
    "gray": "grey",
    "multicolour": "multicolor",
    "multi": "multicolor",
    "multi-color": "multicolor",
    "multi-colour": "multicolor",
}
_EMPHASIS = "!?*~#"
_STRIP = "\"'`.,;:!?()[]{}<>*~#_"
_PART = re.compile(r"[-/+&]")
_INNER = re.compile(r"(?:[^\W_]|[.'\-/+&%])+")


@dataclass(frozen=True)
class Listing:
    """A listing's title and aspect pairs (in the schema's order)."""

    title: str
    aspects: dict[str, str]

    @classmethod
    def from_json(cls, text: str) -> Listing:
        """The LG answer text ``{"title": str, "aspects": {str: str}}``; ``ValueError`` for
        anything else."""
        obj = orjson.loads(text)
        if not isinstance(obj, dict) or not isinstance(obj.get("title"), str):
            raise ValueError(f"not a listing: {text[:80]!r}")
        aspects = obj.get("aspects", {})
        if not isinstance(aspects, dict) or not all(isinstance(v, str) for v in aspects.values()):
            raise ValueError(f"a listing's aspects are a string map: {text[:80]!r}")
        return cls(title=obj["title"], aspects=dict(aspects))

    def to_json(self) -> str:
        """Compact JSON, title first, aspects in their order."""
        return orjson.dumps({"title": self.title, "aspects": self.aspects}).decode()


@dataclass(frozen=True)
class Evidence:
    """What the item's images show; ``images`` only for a :class:`Rewriter`."""

    ocr_tokens: Sequence[str] = ()
    captions: Sequence[str] = ()
    images: Sequence[Image.Image] = ()


def normalise_word(word: str) -> str:
    """Lower case, surrounding punctuation and a trailing possessive ``'s`` removed."""
    text = word.casefold().strip(_STRIP)
    for suffix in ("'s", "\u2019s"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    return text.strip(_STRIP)


def within_one_edit(a: str, b: str) -> bool:
    """Whether one insertion, deletion or substitution (or none) turns ``a`` into ``b``."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + (len(a) == len(b)) :] == b[i + 1 :]


def _parts(word: str) -> list[str]:
    return [p for p in _PART.split(word) if p]


class EvidenceIndex:
    """The evidence's normalised words (and their compound parts) and colour words."""

    def __init__(self, evidence: Evidence) -> None:
        texts = [*evidence.ocr_tokens, *evidence.captions]
        self.words: frozenset[str] = frozenset(
            w
            for text in texts
            for raw in text.split()
            if (n := normalise_word(raw))
            for w in (n, *_parts(n))
        )
        self.colours: frozenset[str] = frozenset(
            c for w in self.words if (c := fold_colour(w)) in COLOUR_WORDS
        )
        self._fuzzy = [w for w in self.words if len(w) >= FUZZY_MIN_LENGTH - 1 and w.isalpha()]

    def supports(self, word: str) -> bool:
        """Whether the evidence shows ``word`` (normalised; see the module's matching rule)."""
        if word in self.words:
            return True
        parts = _parts(word)
        if len(parts) > 1:
            return all(self.supports(p) for p in parts)
        if word.isalpha() and len(word) >= FUZZY_MIN_LENGTH:
            return any(within_one_edit(word, w) for w in self._fuzzy)
        return False


def fold_colour(word: str) -> str:
    return COLOUR_SPELLINGS.get(word, word)


#: Whether a value of an inferable key follows from the evidence.
InferenceRule = Callable[[str, EvidenceIndex], bool]


def colour_inferable(value: str, index: EvidenceIndex) -> bool:
    """A Color value follows from the evidence when it names at least one colour word and the
    evidence (a caption's colour words, the OCR captioner's dominant colours) names each of
    them (``Gray`` is ``grey``); other words (``Triple White``'s ``triple``) are not checked.
    ``Multicolor`` needs two colours in the evidence. The OCR captioner's dominant colours
    include the background: a weak signal that a VLM caption makes stronger."""
    named = {fold_colour(normalise_word(w)) for w in value.split()}
    named |= {fold_colour(p) for w in list(named) for p in _parts(w)}
    colours = named & COLOUR_WORDS
    if not colours:
        return False
    if "multicolor" in colours:
        return len(index.colours - {"multicolor"}) >= 2
    return colours <= index.colours


#: Keys whose value may be inferred from the image rather than read off it.
INFERABLE: Mapping[str, InferenceRule] = {"Color": colour_inferable}


class AspectLike(Protocol):
    """An aspect schema entry (``schemas.events.AspectSpec``'s name and required flag)."""

    @property
    def name(self) -> str: ...

    @property
    def required(self) -> bool: ...


@dataclass(frozen=True)
class CategoryRules:
    """One category's vocabulary (generic title words), required keys, inferable keys."""

    vocabulary: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    inferable: Mapping[str, InferenceRule] = field(default_factory=lambda: dict(INFERABLE))

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "vocabulary", frozenset(normalise_word(w) for w in self.vocabulary)
        )

    @classmethod
    def from_schema(
        cls,
        aspects: Iterable[AspectLike],
        vocabulary: Collection[str] = (),
        inferable: Mapping[str, InferenceRule] = INFERABLE,
    ) -> CategoryRules:
        """Required keys from the schema; ``inferable`` keeps the rules of its keys only."""
        aspects = list(aspects)
        names = {a.name for a in aspects}
        return cls(
            vocabulary=frozenset(vocabulary),
            required=frozenset(a.name for a in aspects if a.required),
            inferable={k: rule for k, rule in inferable.items() if k in names},
        )


@dataclass(frozen=True)
class DroppedToken:
    token: str
    #: Its index among the title's whitespace-separated tokens (the original title's).
    position: int
    reason: str


@dataclass(frozen=True)
class DroppedPair:
    key: str
    value: str
    reason: str
    required: bool


@dataclass(frozen=True)
class Refinement:
    original: Listing
    refined: Listing
    dropped_tokens: tuple[DroppedToken, ...]
    dropped_pairs: tuple[DroppedPair, ...]

    @property
    def changed(self) -> bool:
        return self.refined != self.original

    @property
    def usable(self) -> bool:
        """A title is left (an example without one should not train)."""
        return bool(self.refined.title)

    @property
    def missing_required(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.dropped_pairs if p.required)


class Rewriter(Protocol):
    """A model that rewrites a listing to what the images show (OPAL uses a large VLM): it
    may only remove title tokens and aspect pairs; the deterministic check runs after it."""

    def rewrite(self, listing: Listing, evidence: Evidence) -> Listing: ...


def _token_reason(word: str, index: EvidenceIndex, rules: CategoryRules) -> str | None:
    """``None`` to keep the normalised title token ``word``, else why it goes."""
    if not word or not any(c.isalnum() for c in word) or not _INNER.fullmatch(word):
        return "noise"
    if index.supports(word) or word in CONNECTORS:
        return None
    parts = _parts(word) or [word]
    if all(p in rules.vocabulary or index.supports(p) for p in parts):
        return None
    if word in MARKETING:
        return "marketing"
    if word in SIZE_WORDS or any(c.isdigit() for c in word):
        return "size_or_code"
    return "ungrounded"


def _is_joint(token: str) -> bool:
    return token in SEPARATORS or normalise_word(token) in CONNECTORS


def refine_title(
    title: str, index: EvidenceIndex, rules: CategoryRules
) -> tuple[str, list[DroppedToken]]:
    """The title with unsupported tokens dropped, and the drops (module contract)."""
    tokens = title.split()
    kept: list[tuple[int, str]] = []
    dropped: list[DroppedToken] = []
    for i, token in enumerate(tokens):
        reason = None if token in SEPARATORS else _token_reason(normalise_word(token), index, rules)
        if reason is None:
            kept.append((i, token.strip(_EMPHASIS) or token))
        else:
            dropped.append(DroppedToken(token, i, reason))
    tidy: list[tuple[int, str]] = []
    for i, token in kept:
        if token in SEPARATORS and (not tidy or tidy[-1][1] in SEPARATORS):
            dropped.append(DroppedToken(tokens[i], i, "dangling"))
        else:
            tidy.append((i, token))
    while tidy and _is_joint(tidy[-1][1]):
        i, _ = tidy.pop()
        dropped.append(DroppedToken(tokens[i], i, "dangling"))
    while tidy and _is_joint(tidy[0][1]):
        i, _ = tidy.pop(0)
        dropped.append(DroppedToken(tokens[i], i, "dangling"))
    dropped.sort(key=lambda d: d.position)
    return " ".join(t for _, t in tidy), dropped


def _pair_reason(key: str, value: str, index: EvidenceIndex, rules: CategoryRules) -> str | None:
    if normalise_value(value) == "unanswerable":
        return "unanswerable"
    rule = rules.inferable.get(key)
    if rule is not None:
        return None if rule(value, index) else "not_inferable"
    words = [w for raw in value.split() if (w := normalise_word(raw)) and w not in CONNECTORS]
    if words and all(index.supports(w) for w in words):
        return None
    return "ungrounded"


def refine_aspects(
    aspects: Mapping[str, str], index: EvidenceIndex, rules: CategoryRules
) -> tuple[dict[str, str], list[DroppedPair]]:
    """The pairs the evidence supports (order kept), and the drops (module contract)."""
    kept: dict[str, str] = {}
    dropped: list[DroppedPair] = []
    for key, value in aspects.items():
        reason = _pair_reason(key, value, index, rules)
        if reason is None:
            kept[key] = value
        else:
            dropped.append(DroppedPair(key, value, reason, key in rules.required))
    return kept, dropped


def _rewriter_drops(
    before: Listing, after: Listing, rules: CategoryRules
) -> tuple[list[DroppedToken], list[DroppedPair]]:
    left = Counter(after.title.split())
    tokens: list[DroppedToken] = []
    for i, token in enumerate(before.title.split()):
        if left[token] > 0:
            left[token] -= 1
        else:
            tokens.append(DroppedToken(token, i, "rewriter"))
    pairs = [
        DroppedPair(k, v, "rewriter", k in rules.required)
        for k, v in before.aspects.items()
        if after.aspects.get(k) != v
    ]
    return tokens, pairs


def refine_listing(
    listing: Listing,
    evidence: Evidence,
    rules: CategoryRules,
    rewriter: Rewriter | None = None,
) -> Refinement:
    """``listing`` cut to what ``evidence`` supports (module contract); with a ``rewriter``
    its rewrite is checked instead and its own removals are recorded as ``rewriter``
    (positions of the rewrite's drops are the rewrite's tokens')."""
    index = EvidenceIndex(evidence)
    start = listing if rewriter is None else rewriter.rewrite(listing, evidence)
    tokens, pairs = ([], []) if rewriter is None else _rewriter_drops(listing, start, rules)
    title, title_drops = refine_title(start.title, index, rules)
    aspects, pair_drops = refine_aspects(start.aspects, index, rules)
    return Refinement(
        original=listing,
        refined=Listing(title=title, aspects=aspects),
        dropped_tokens=(*tokens, *title_drops),
        dropped_pairs=(*pairs, *pair_drops),
    )


@dataclass(frozen=True)
class RefineSummary:
    """Counts over a data set, to compare training with and without refinement."""

    examples: int
    changed: int
    unusable: int
    title_tokens: int
    aspect_pairs: int
    dropped_tokens: Mapping[str, int]
    dropped_pairs: Mapping[str, int]
    #: Examples that lost at least one required key's pair.
    lost_required: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "changed": self.changed,
            "unusable": self.unusable,
            "title_tokens": self.title_tokens,
            "aspect_pairs": self.aspect_pairs,
            "dropped_tokens": dict(self.dropped_tokens),
            "dropped_pairs": dict(self.dropped_pairs),
            "lost_required": self.lost_required,
        }


def summarise(refinements: Iterable[Refinement]) -> RefineSummary:
    """Per-reason drop counts and totals over ``refinements``."""
    items = list(refinements)
    return RefineSummary(
        examples=len(items),
        changed=sum(r.changed for r in items),
        unusable=sum(not r.usable for r in items),
        title_tokens=sum(len(r.original.title.split()) for r in items),
        aspect_pairs=sum(len(r.original.aspects) for r in items),
        dropped_tokens=Counter(d.reason for r in items for d in r.dropped_tokens),
        dropped_pairs=Counter(d.reason for r in items for d in r.dropped_pairs),
        lost_required=sum(bool(r.missing_required) for r in items),
    )


# -- instruction examples ------------------------------------------------------------------


def category_vocabulary(category: str, aspects: Iterable[AspectSpec]) -> frozenset[str]:
    """A category's generic title words, from what an LG example carries: the words of its
    name (``womens-shoes``: ``womens-shoes``, ``womens``, ``shoes``, each also without a
    trailing ``s``: ``women``, ``shoe``) and the words of every value its schema lists
    (``Low Top``, ``Blue``, ``Stoneware``). Words with a digit and :data:`SIZE_WORDS`
    (``9.5``, ``S``, ``XL``) are left out: they state one item's size or code, which the
    evidence must show."""
    name = normalise_word(category)
    words = {name, *re.split(r"[-_\s]+", name)}
    words |= {w[:-1] for w in words if len(w) > 3 and w.endswith("s")}
    for aspect in aspects:
        for value in aspect.values or ():
            words |= {normalise_word(w) for w in value.split()}
    return frozenset(
        w for w in words if w and w not in SIZE_WORDS and not any(c.isdigit() for c in w)
    )


def example_evidence(sample: InstructionSample) -> Evidence:
    """What an assembled LG sample shows of its images (:meth:`schemas.tasks.lg.
    ListingGeneration.assemble`): its OCR tokens and its kept captions, one entry per image
    (unnumbered), images without OCR text or a kept caption left out. The seller text is
    not evidence."""
    data = sample.input if isinstance(sample.input, dict) else {}

    def contexts(key: str, empty: str) -> tuple[str, ...]:
        text = data.get(key)
        if not isinstance(text, str):
            return ()
        return tuple(c for c in image_contexts(text) if c.strip() and c != empty)

    return Evidence(
        ocr_tokens=contexts(OCR_KEY, NO_OCR), captions=contexts(lg.IMAGE_KEY, NO_CAPTION)
    )


def example_rules(sample: InstructionSample) -> CategoryRules:
    """An assembled LG sample's rules: required keys from its allowed aspects, vocabulary
    :func:`category_vocabulary` of its category and allowed aspects."""
    aspects = lg.sample_aspects(sample)
    data = sample.input if isinstance(sample.input, dict) else {}
    category = str(data.get("category", ""))
    return CategoryRules.from_schema(aspects, category_vocabulary(category, aspects))


def refine_example(example: InstructionExample) -> Refinement:
    """An LG example's gold ``output`` cut to what its own input shows (:func:`refine_listing`
    under :func:`example_evidence` and :func:`example_rules`). ``ValueError`` for another
    task or an output that is not a listing."""
    if example.task != lg.TASK.code:
        raise ValueError(f"refinement is for LG examples, not {example.task}")
    sample = example.sample()
    return refine_listing(
        Listing.from_json(example.output), example_evidence(sample), example_rules(sample)
    )


def refine_examples(
    examples: Iterable[InstructionExample],
) -> tuple[list[InstructionExample], RefineSummary]:
    """Training examples with every LG example's gold output refined (:func:`refine_example`)
    and written back in the LG answer form (schema order); an LG example left without a
    title is dropped (counted as ``unusable``), one that lost a required key's pair is kept
    (counted as ``lost_required``). Other tasks' examples pass through unchanged and are not
    counted. Order is kept. For the training split only: validation and test keep their
    references, so the gate measures against what the listings say."""
    kept: list[InstructionExample] = []
    refinements: list[Refinement] = []
    for example in examples:
        if example.task != lg.TASK.code:
            kept.append(example)
            continue
        result = refine_example(example)
        refinements.append(result)
        if not result.usable:
            continue
        names = [a.name for a in lg.sample_aspects(example.sample())]
        output = lg.canonical_listing(result.refined.title, result.refined.aspects, names)
        kept.append(replace(example, output=output))
    return kept, summarise(refinements)
