"""The promotion gate: a candidate adapter is published only if it beats the incumbent on the
validation set by a margin, on every task both were evaluated on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from training.metrics import TaskScore


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def gate(
    candidate: Mapping[str, TaskScore],
    incumbent: Mapping[str, TaskScore] | None,
    margin: float = 0.01,
) -> GateDecision:
    """Promote when the mean strict score over shared tasks rises by at least ``margin`` and
    no task falls by more than ``abs(margin)`` (a negative margin accepts a candidate up to
    that much worse, e.g. to force a first publish in tests). Strict scores count parse
    failures as wrong, so a candidate cannot win by failing to answer."""
    if not candidate:
        return GateDecision(False, "the candidate was not evaluated on any task")
    if not incumbent:
        return GateDecision(True, "no incumbent: first version")
    shared = sorted(set(candidate) & set(incumbent))
    if not shared:
        return GateDecision(False, "candidate and incumbent share no evaluated task")
    worse = [t for t in shared if candidate[t].strict < incumbent[t].strict - abs(margin)]
    if worse:
        detail = ", ".join(
            f"{t} {incumbent[t].strict:.3f}->{candidate[t].strict:.3f}" for t in worse
        )
        return GateDecision(False, f"worse on {detail}")
    gain = sum(candidate[t].strict - incumbent[t].strict for t in shared) / len(shared)
    if gain < margin:
        return GateDecision(False, f"mean gain {gain:+.3f} is below the margin {margin}")
    return GateDecision(True, f"mean gain {gain:+.3f} over {len(shared)} task(s)")
