from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.config import ImageSettings, load_settings
from streams.topics import TOPICS, logical_name, topic_configs, topic_name


def test_defaults() -> None:
    settings = load_settings()
    assert settings.topic_prefix == "caslie."
    assert topic_name(settings, "catalog") == "caslie.catalog"


def test_the_default_cqe_is_a_vote_of_llm_judges_of_two_families() -> None:
    """The heuristic judges never read the CQE question: opt-in, never a default."""
    judges = load_settings().voter.judges
    assert judges == ["smollm2", "gemma3"]
    assert not {"minilm", "overlap"} & set(judges)


def test_env_beats_file_beats_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "caslie.toml"
    config.write_text(
        'bootstrap_servers = "file:9092"\ntopic_prefix = "shop."\n'
        '[kafka]\n"security.protocol" = "SASL_SSL"\n"sasl.password" = "hunter2"\n'
        "[dlq]\nmax_consecutive = 7\n"
    )
    monkeypatch.setenv("CASLIE_BOOTSTRAP_SERVERS", "env:9092")
    monkeypatch.setenv("CASLIE_DLQ__WINDOW", "50")
    settings = load_settings(config)
    assert settings.bootstrap_servers == "env:9092"
    assert settings.topic_prefix == "shop."
    assert settings.dlq.max_consecutive == 7
    assert settings.dlq.window == 50
    assert settings.kafka["security.protocol"] == "SASL_SSL"
    assert "hunter2" not in str(settings.redacted())
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "nope.toml")


def test_topic_registry() -> None:
    settings = load_settings(topic_prefix="x.")
    assert logical_name(settings, "x.reviews") == "reviews"
    assert logical_name(settings, "reviews") == "reviews"
    with pytest.raises(KeyError):
        logical_name(settings, "x.unknown")
    catalog = next(t for t in TOPICS if t.logical == "catalog")
    assert topic_configs(catalog) == {"cleanup.policy": "compact"}


def test_settings_survive_the_trip_to_a_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.config import Settings, settings_to_env

    settings = Settings(
        topic_prefix="child.",
        kafka={"security.protocol": "SSL"},
        dlq={"max_consecutive": 9},
        images={"allow_networks": ["10.0.0.0/8"]},
    )
    for key, value in settings_to_env(settings).items():
        monkeypatch.setenv(key, value)
    assert Settings() == settings


def test_allow_networks_must_be_networks() -> None:
    with pytest.raises(ValidationError, match=r"'10\.0\.0\.0/33' is not a CIDR network"):
        ImageSettings(allow_networks=["10.0.0.0/33"])
    assert ImageSettings(allow_networks=["10.0.0.1/8", "::1/128"]).allow_networks
