"""The retrain stages by name: the three known ones, anything else refused."""

from __future__ import annotations

import pytest

from training.retrain import STAGES, parse_stage


def test_the_known_stages_parse() -> None:
    assert [parse_stage(s) for s in ("sft", "dpo", "both")] == list(STAGES)


@pytest.mark.parametrize("bad", ["", "SFT", "ppo", "sft,dpo"])
def test_an_unknown_stage_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="stage must be one of sft, dpo, both"):
        parse_stage(bad)
