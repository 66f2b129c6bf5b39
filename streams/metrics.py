"""Prometheus metrics of the streaming layer, with typed, documented names."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_IN = Counter("caslie_records_in_total", "Records consumed by a stage.", ["stage", "topic"])
REDELIVERED = Counter(
    "caslie_records_redelivered_total",
    "Records the Kafka client delivered again within one assignment (its fetch position "
    "moved back by itself): dropped, not processed twice.",
    ["stage", "topic"],
)
RECORDS_OUT = Counter(
    "caslie_records_out_total", "Records produced and acknowledged.", ["stage", "topic"]
)
DLQ_RECORDS = Counter(
    "caslie_dlq_records_total", "Records sent to the DLQ, by error kind.", ["stage", "kind"]
)
BATCH_SIZE = Histogram(
    "caslie_batch_size",
    "Records per batch handed to a stage.",
    ["stage"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
BATCH_SECONDS = Histogram(
    "caslie_batch_seconds",
    "Time a stage spent processing one batch.",
    ["stage"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
IN_FLIGHT = Gauge("caslie_in_flight_records", "Consumed but not yet committed records.", ["stage"])
PAUSED = Gauge(
    "caslie_paused", "1 while the stage's partitions are paused (backpressure).", ["stage"]
)
COMMITS = Counter("caslie_commits_total", "Offset commits made by a stage.", ["stage"])
COMMIT_FAILURES = Counter(
    "caslie_commit_failures_total",
    "Offset commits that failed and will be retried (broker or coordinator away).",
    ["stage"],
)
BATCH_WAIT = Histogram(
    "caslie_batch_wait_seconds",
    "Time a batch waited to fill after its first record (at most batch.max_wait_ms).",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5),
)
CONSUMER_LAG = Gauge(
    "caslie_consumer_lag",
    "Records of the stage's assigned partitions not yet consumed (high watermark - position).",
    ["stage"],
)
MODEL_SECONDS = Histogram(
    "caslie_model_seconds",
    "Time of one model call on a batch (captioning, one judge, option scoring).",
    ["stage", "model"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CAPTIONS = Counter(
    "caslie_captions_total",
    "Caption decisions of the voter by task: kept, rejected, or no_caption (image failed).",
    ["task", "decision"],
)
PREDICTIONS = Counter(
    "caslie_predictions_total",
    "Predictions by task, answer label and adapter (name@vN or base).",
    ["task", "label", "adapter"],
)
ADAPTER_VERSION = Gauge(
    "caslie_adapter_version",
    "Version number each adapter name is served at by this predictor (absent: base model).",
    ["adapter"],
)
ADAPTER_LOAD_FAILURES = Counter(
    "caslie_adapter_load_failures_total",
    "Failed attempts to download or load an announced adapter version (retried with backoff).",
    ["adapter"],
)
ADAPTER_WATCHER_ERRORS = Counter(
    "caslie_adapter_watcher_errors_total",
    "Errors of the predictor's adapter watcher: transient (retried) or fatal (the stage stops).",
    ["kind"],
)
ACCUMULATED_ROWS = Counter(
    "caslie_accumulated_rows_total", "Labelled examples the accumulator wrote to dataset shards."
)
ACCUMULATOR_EXPIRED = Counter(
    "caslie_accumulator_expired_total",
    "Joins the accumulator dropped after training.label_wait_s: a record that never got its "
    "label (record), a label whose record never came (label), a written example kept for "
    "relabelling (written).",
    ["kind"],
)
STAGE_STALLS = Counter(
    "caslie_stage_stalls_total", "Stages the runner's watchdog found stalled.", ["stage"]
)
