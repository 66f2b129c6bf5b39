"""The seam between the runner and Kafka clients: real ones, or a test's in-memory broker.

The runner asks a :class:`Clients` for its consumer and producer with their full configs
(built by :mod:`streams.clients`), so a test can check what the runner configures and run
the runner's logic on an in-memory broker beside the real-broker tests.
"""

from __future__ import annotations

from typing import Any, Protocol

from confluent_kafka import Consumer, Producer


class Clients(Protocol):
    def consumer(self, config: dict[str, Any]) -> Consumer: ...

    def producer(self, config: dict[str, Any]) -> Producer: ...


class KafkaClients:
    """confluent-kafka's own clients."""

    def consumer(self, config: dict[str, Any]) -> Consumer:
        return Consumer(config)

    def producer(self, config: dict[str, Any]) -> Producer:
        return Producer(config)
