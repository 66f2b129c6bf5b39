import random

import pytest

from training.synthetic.complaints import DAMAGE_SENTENCES, TextConfig, complaint
from training.synthetic.products import sample_product


def _rates(config: TextConfig, n: int = 2000) -> dict[str, float]:
    rng = random.Random(0)
    listed = sample_product(rng, "Dovarin")
    counts = {"damaged": 0, "intact": 0, "mismatch": 0, "match": 0}
    for i in range(n):
        damaged, matched = i % 2 == 0, i % 4 < 2
        said = complaint(rng, config, listed, ["spill"] if damaged else [], matched)
        assert 0 < len(said.text) <= config.max_chars
        assert said.mentions_damage == any(
            s in said.text for options in DAMAGE_SENTENCES.values() for s in options
        )
        counts["damaged" if damaged else "intact"] += said.mentions_damage
        counts["match" if matched else "mismatch"] += said.mentions_mismatch
    return {k: v / (n / 2) for k, v in counts.items()}


def test_the_text_mentions_damage_only_partly_by_the_truth() -> None:
    rates = _rates(TextConfig())
    assert rates["damaged"] == pytest.approx(0.7, abs=0.04)
    assert rates["intact"] == pytest.approx(0.3, abs=0.04)
    assert rates["mismatch"] == pytest.approx(0.6, abs=0.04)
    assert rates["match"] == pytest.approx(0.25, abs=0.04)


def test_the_correlation_is_configurable() -> None:
    rates = _rates(TextConfig(damaged_mentions=1.0, intact_mentions=0.0), n=400)
    assert rates["damaged"] == 1.0 and rates["intact"] == 0.0


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError):
        TextConfig(damaged_mentions=1.5)
    with pytest.raises(ValueError):
        TextConfig(max_chars=10)


def test_a_short_bound_cuts_at_a_sentence_and_keeps_the_flags_honest() -> None:
    rng = random.Random(1)
    listed = sample_product(rng, "Dovarin")
    config = TextConfig(damaged_mentions=1.0, max_chars=80)
    for _ in range(200):
        said = complaint(rng, config, listed, ["tear"], matched=True)
        assert len(said.text) <= 80 and said.text.endswith((".", ",", "?"))
        assert said.mentions_damage == any(
            s in said.text for options in DAMAGE_SENTENCES.values() for s in options
        )
