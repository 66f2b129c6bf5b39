"""The local broker of ``caslie broker`` and ``caslie demo``: Apache Kafka (KRaft, from the
cached Maven jars) when Java and the jars are there, else the embedded tansu broker.

``kind`` is ``apache`` (Apache Kafka or ``BrokerUnavailable``), ``tansu`` (the embedded
broker) or ``auto`` (Apache Kafka, falling back to tansu). ``describe`` is the one line that
says which broker started and, for tansu, what it cannot do.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, Protocol

from streams.apache_kafka import ApacheKafka, missing_reason
from streams.broker import EmbeddedBroker
from streams.exceptions import BrokerUnavailable

log = logging.getLogger(__name__)

BrokerKind = Literal["auto", "apache", "tansu"]
KINDS: tuple[BrokerKind, ...] = ("auto", "apache", "tansu")


class LocalBroker(Protocol):
    name: str
    #: What this broker cannot do, empty when it is a full Kafka.
    limits: str

    @property
    def bootstrap_servers(self) -> str: ...

    def running(self) -> bool: ...

    def stop(self) -> None: ...


def start_local_broker(
    kind: BrokerKind = "auto", port: int | None = None, log_file: Path | None = None
) -> tuple[LocalBroker, str | None]:
    """Start the broker ``kind`` asks for; returns it and, when ``auto`` fell back to tansu,
    why Apache Kafka could not start. Raises ``BrokerUnavailable`` when the broker asked for
    cannot start."""
    fallback: str | None = None
    if kind in ("auto", "apache"):
        reason = missing_reason()
        if reason is None:
            try:
                return ApacheKafka(port, log_file).start(), None
            except BrokerUnavailable as exc:
                reason = str(exc)
        if kind == "apache":
            raise BrokerUnavailable(f"Apache Kafka cannot start: {reason}")
        fallback = reason
        log.info("Apache Kafka unavailable (%s): starting tansu", reason)
    return EmbeddedBroker(port, log_file=log_file).start(), fallback


def describe(broker: LocalBroker, fallback: str | None = None) -> str:
    """One line: which broker listens where, and what it cannot do."""
    line = f"{broker.name} broker on {broker.bootstrap_servers}"
    if fallback:
        line += f" (Apache Kafka unavailable: {fallback})"
    if broker.limits:
        line += f"; its limits: {broker.limits}"
    return line
