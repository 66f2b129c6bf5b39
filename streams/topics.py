"""The topic registry (logical names, prefixed names, partitions, cleanup policies) and the
pipeline's layout: which stage reads and writes which topics, under which consumer group, with
which dedupe ids (:data:`LAYOUT`). Stages, ``caslie status``, the bench and the deployment
checks read the layout from here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

from streams.stage import Output

if TYPE_CHECKING:  # GPU hosts import the layout without the service's settings
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
    TopicSpec("claims", key="claim_id"),
    TopicSpec("listings", key="listing_id"),
    # A category's aspect schema: the latest one per category is the one in force.
    TopicSpec("aspect_schemas", key="category", compacted=True),
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
    TopicSpec("router.claims", key="claim_id", compacted=True),
    TopicSpec("router.listings", key="listing_id", compacted=True),
    TopicSpec("router.aspect_schemas", key="category", compacted=True),
    # Catalog records the router dead-lettered: queries naming them fail with the reason.
    TopicSpec("router.rejected", key="product_id", compacted=True),
    # The accumulator's joins in progress (records waiting for labels, labels for records,
    # finished rows not yet in a shard): its state, like the router's tables.
    TopicSpec("accumulator.state", key="request_id", compacted=True),
)
BY_LOGICAL = {spec.logical: spec for spec in TOPICS}
#: Topics whose records are a query on its way to an answer: one of them that a pipeline stage
#: (not a side stage) dead-letters ends its query with a ``PredictionFailure`` on
#: ``predictions`` (:mod:`streams.runner.dispatch`).
QUERY_TOPICS = frozenset({"queries", "queries.waiting", "requests", "captioned", "enriched"})


@dataclass(frozen=True)
class StageLayout:
    """One stage of the pipeline: its name (also its consumer group suffix and the suffix of
    its outputs' dedupe ids), the topics it reads and the topics it writes."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def process(self) -> str:
        """The ``caslie run`` worker that runs this stage (the router runs two)."""
        return self.name.split(".", 1)[0]

    def dedupe_id(self, key: str) -> str:
        """The dedupe id of this stage's output for a record key (``<request id>:<stage>``):
        the same on every redelivery, so consumers drop repeats."""
        return f"{key}:{self.name}"

    def output(self, key: str, value: BaseModel) -> Output:
        """The stage's main output (its first output topic) for a request."""
        return Output(self.outputs[0], key, value, self.dedupe_id(key))


#: The pipeline, in order.
LAYOUT: tuple[StageLayout, ...] = (
    StageLayout(
        "router",
        ("catalog", "reviews", "claims", "listings", "aspect_schemas", "queries"),
        (
            "requests",
            "queries.waiting",
            "router.products",
            "router.reviews",
            "router.claims",
            "router.listings",
            "router.aspect_schemas",
            "router.rejected",
        ),
    ),
    StageLayout("router.waiting", ("queries.waiting",), ("requests", "queries.waiting")),
    StageLayout("captioner", ("requests",), ("captioned",)),
    StageLayout("voter", ("captioned",), ("enriched",)),
    StageLayout("predictor", ("enriched",), ("predictions",)),
)
#: Stages beside the pipeline: run on their own (``caslie run accumulator``), never by
#: ``caslie run all`` or the bench. The accumulator joins ``enriched`` with ``labels`` by
#: request id in a table per replica, so both topics must be keyed by request id and have the
#: same partition count (they do when ``caslie topics create`` made them).
SIDE_STAGES: tuple[StageLayout, ...] = (
    StageLayout("accumulator", ("enriched", "labels"), ("accumulator.state",)),
)
STAGE_LAYOUT = {stage.name: stage for stage in (*LAYOUT, *SIDE_STAGES)}
#: The ``caslie run`` workers of the pipeline, in pipeline order.
WORKERS: tuple[str, ...] = tuple(dict.fromkeys(stage.process for stage in LAYOUT))


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
