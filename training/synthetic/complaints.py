"""Customer complaint text for a synthetic claim, only partly correlated with its labels.

A damaged item's complaint mentions damage with probability ``damaged_mentions`` (default 0.7)
and an intact item's with ``intact_mentions`` (default 0.3), so the text alone predicts DD with
about 70% accuracy on balanced labels and the photo has to decide the rest. The same holds for
PM: a wrong item's complaint says so with ``mismatch_mentions`` (0.6), a right item's with
``match_mentions`` (0.25). When a damaged item's text does mention damage, it names the kind
that was drawn about as often as another one (customers describe damage loosely). The text is
at most ``max_chars`` characters, cut at a sentence boundary.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from training.synthetic.products import Product

DAMAGE_SENTENCES: dict[str, tuple[str, ...]] = {
    "tear": (
        "The box arrived torn open.",
        "There is a big rip in the packaging.",
        "The pack was ripped when it got here.",
    ),
    "spill": (
        "It leaked all over the bag.",
        "The bottle was leaking when it came.",
        "Something spilled and the pack is stained.",
    ),
    "crushed_corner": (
        "The corner is completely crushed.",
        "It came squashed, like something heavy was on it.",
        "The pack is dented and bent.",
    ),
    "broken_seal": (
        "The seal was already broken.",
        "The cap had come off in the parcel.",
        "It looks like it was opened before it reached me.",
    ),
}
MISMATCH_SENTENCES = (
    "This is not what I ordered.",
    "I received a different item than the one in the listing.",
    "The item does not match the product page.",
    "I think you sent me the wrong product.",
)
OPENERS = ("Hi,", "Hello,", "Hi there.", "Good morning.", "Dear support,")
NEUTRAL_SENTENCES = (
    "The order arrived two days late.",
    "I would like a refund please.",
    "Please advise what I should do.",
    "The courier left it outside the door.",
    "Can you send a replacement?",
    "Photo attached.",
    "I have been a customer for years.",
    "I need this sorted quickly.",
    "The delivery driver was in a hurry.",
    "I am not happy with this order.",
)


@dataclass(frozen=True)
class TextConfig:
    """How often a complaint mentions damage / a wrong item, by the truth; see module doc."""

    damaged_mentions: float = 0.7
    intact_mentions: float = 0.3
    mismatch_mentions: float = 0.6
    match_mentions: float = 0.25
    max_chars: int = 600

    def __post_init__(self) -> None:
        for name in ("damaged_mentions", "intact_mentions", "mismatch_mentions", "match_mentions"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability, got {value}")
        if self.max_chars < 80:
            raise ValueError("max_chars must be at least 80")


@dataclass(frozen=True)
class Complaint:
    text: str
    mentions_damage: bool
    mentions_mismatch: bool


def complaint(
    rng: random.Random,
    config: TextConfig,
    listed: Product,
    damage_kinds: list[str],
    matched: bool,
) -> Complaint:
    """A bounded complaint about the delivered item of a claim on ``listed``."""
    damaged = bool(damage_kinds)
    mentions_damage = rng.random() < (
        config.damaged_mentions if damaged else config.intact_mentions
    )
    mentions_mismatch = rng.random() < (
        config.match_mentions if matched else config.mismatch_mentions
    )
    body: list[str] = []
    if rng.random() < 0.5:
        body.append(f"I ordered the {listed.brand} {listed.product_type.name.lower()}.")
    damage_sentence = mismatch_sentence = None
    if mentions_damage:
        kind = rng.choice(damage_kinds) if damaged and rng.random() < 0.5 else None
        damage_sentence = rng.choice(DAMAGE_SENTENCES[kind or rng.choice(sorted(DAMAGE_SENTENCES))])
        body.append(damage_sentence)
    if mentions_mismatch:
        mismatch_sentence = rng.choice(MISMATCH_SENTENCES)
        body.append(mismatch_sentence)
    body.extend(rng.sample(NEUTRAL_SENTENCES, rng.randint(1, 2)))
    rng.shuffle(body)
    sentences = ([rng.choice(OPENERS)] if rng.random() < 0.5 else []) + body
    kept: list[str] = []
    for sentence in sentences:
        if len(" ".join([*kept, sentence])) > config.max_chars:
            break
        kept.append(sentence)
    return Complaint(
        " ".join(kept),
        damage_sentence is not None and damage_sentence in kept,
        mismatch_sentence is not None and mismatch_sentence in kept,
    )
