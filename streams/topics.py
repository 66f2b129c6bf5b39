"""The topic registry: logical names, prefixed names, partitions, cleanup policies."""

from __future__ import annotations

from dataclasses import dataclass

from streams.config import Settings


@dataclass(frozen=True)
class TopicSpec:
    logical: str
    key: str
    compacted: bool = False
    #: Fixed partition count; ``None`` uses ``Settings.partitions``.
    partitions: int | None = None
    #: Extra topic configs.
    retention_ms: int | None = None


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("catalog", key="product_id", compacted=True),
    TopicSpec("reviews", key="product_id"),
    TopicSpec("queries", key="request_id"),
    TopicSpec("requests", key="request_id"),
    TopicSpec("captioned", key="request_id"),
    TopicSpec("enriched", key="request_id"),
    TopicSpec("predictions", key="request_id"),
    TopicSpec("labels", key="request_id"),
    TopicSpec("adapters", key="name", partitions=1),
    TopicSpec("dlq", key="source key"),
    # Queries waiting for a product that has not arrived yet (the router's delay queue).
    TopicSpec("queries.waiting", key="request_id"),
    # The router's tables: written in the same transaction as its outputs, read in full by
    # every router replica (they are the router's state; nothing else should write them).
    TopicSpec("router.products", key="product_id", compacted=True),
    TopicSpec("router.reviews", key="product_id", compacted=True),
)
BY_LOGICAL = {spec.logical: spec for spec in TOPICS}


def topic_name(settings: Settings, logical: str) -> str:
    """``catalog`` -> ``caslie.catalog`` (with the configured prefix)."""
    if logical not in BY_LOGICAL:
        raise KeyError(f"unknown topic {logical!r}; known: {', '.join(BY_LOGICAL)}")
    return f"{settings.topic_prefix}{logical}"


def logical_name(settings: Settings, name: str) -> str:
    """``caslie.catalog`` or ``catalog`` -> ``catalog``; ``KeyError`` for foreign topics."""
    stripped = name.removeprefix(settings.topic_prefix)
    if stripped not in BY_LOGICAL:
        raise KeyError(f"{name!r} is not a caslie topic; known: {', '.join(BY_LOGICAL)}")
    return stripped


def topic_configs(spec: TopicSpec) -> dict[str, str]:
    configs = {"cleanup.policy": "compact" if spec.compacted else "delete"}
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    return configs
