"""Runs a :class:`~streams.stage.Stage` on confluent-kafka, at-least-once or exactly-once.

Threads and hand-offs::

    poll thread ──(chunks per partition, tagged with their epoch)──► processing thread
      consume · backpressure · rebalances · commits          decode · stage · produce · DLQ
        ▲  offsets whose outputs were all acked (at-least-once)   │
        └──── a batch's transaction to commit (exactly-once) ◄────┘

One module per concern: :mod:`~streams.runner.polling` (the consumer, rebalances,
backpressure), :mod:`~streams.runner.commit` (the delivery guarantee, chosen once),
:mod:`~streams.runner.dispatch` (decode, failure isolation, DLQ, produce),
:mod:`~streams.runner.handoff` (the bounded hand-off and batching),
:mod:`~streams.runner.clients` (the client seam for tests).

- ``at_least_once``: an input offset is committed only after every output it caused (or its
  DLQ envelope) was acknowledged by the broker; a crash re-processes what was not committed,
  and the ``caslie-id`` header lets consumers drop the repeats.
- ``exactly_once``: each batch is one Kafka transaction holding its outputs, its DLQ
  envelopes and its input offsets. A transaction that cannot commit because a rebalance moved
  the group on is aborted and its partitions rewound: the stage goes on. Readers must use
  ``read_committed`` (ours do).
- Rebalances: before partitions go, the batch in progress ends and what is finished of them
  commits; records of theirs still buffered are dropped as stale, never processed twice.
- Undecodable, invalid or rejected records go to the DLQ; :class:`~streams.dlq.DlqPolicy`
  stops the stage when the input is garbage.
- A permanent delivery error, a fenced producer, or an exception the stage calls fatal
  (``is_fatal``; :class:`~streams.stage.FatalStageError` always) stops the stage without
  committing the affected offsets.
"""

from streams.runner.dispatch import DEDUPE_HEADER, is_fatal, where
from streams.runner.stage_runner import StageRunner, transactional_id

__all__ = ["DEDUPE_HEADER", "StageRunner", "is_fatal", "transactional_id", "where"]
