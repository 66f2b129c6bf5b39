"""A single-node Apache Kafka (KRaft, broker and controller in one process) started from the
broker's Maven jars: the local broker of ``caslie broker`` and ``caslie demo`` when Java is
installed, and the test suite's broker.

The jars live in ``CASLIE_KAFKA_LIBS`` or ``~/.cache/caslie/kafka-<version>/libs``;
``fetch_jars`` (``caslie broker --fetch-jars``) fills that folder with Maven from
``.ci/kafka-pom.xml``. Data goes to a temporary folder removed by ``stop``: nothing survives
a restart, as with the embedded tansu broker, but transactions, consumer groups and every
Kafka client (kcat included) work as on a production cluster.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from types import TracebackType

from streams.broker import free_port, wait_for_port
from streams.exceptions import BrokerUnavailable

KAFKA_VERSION = "4.1.0"

#: The Maven project listing the broker's jars (a source checkout's file).
POM = Path(__file__).resolve().parents[1] / ".ci" / "kafka-pom.xml"


def kafka_libs() -> Path:
    """The folder of broker jars: ``CASLIE_KAFKA_LIBS`` or the cache ``scripts/env.sh`` fills."""
    env = os.environ.get("CASLIE_KAFKA_LIBS")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "caslie" / f"kafka-{KAFKA_VERSION}" / "libs"


def fetch_command(libs: Path | None = None) -> list[str]:
    """The Maven command that copies the broker's jars into ``libs``."""
    return [
        "mvn",
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs or kafka_libs()}",
    ]


def missing_reason() -> str | None:
    """Why Apache Kafka cannot start here (no Java, no jars), or ``None`` when it can."""
    if shutil.which("java") is None:
        return "java is not installed (Apache Kafka needs Java 17 or later)"
    libs = kafka_libs()
    if not any(libs.glob("kafka_2.13-*.jar")):
        return f"no Kafka jars in {libs} (get them with 'caslie broker --fetch-jars')"
    return None


def fetch_jars(libs: Path | None = None) -> Path:
    """Copy the broker's jars from Maven Central into ``libs`` (default ``kafka_libs()``);
    raises ``BrokerUnavailable`` when Maven or the pom is missing or Maven fails."""
    target = libs or kafka_libs()
    if shutil.which("mvn") is None:
        raise BrokerUnavailable("fetching the Kafka jars needs Maven (apt-get install maven)")
    if not POM.is_file():
        raise BrokerUnavailable(f"{POM} is missing: fetch the jars from a source checkout")
    done = subprocess.run(fetch_command(target), capture_output=True, text=True)
    if done.returncode != 0:
        raise BrokerUnavailable(f"maven failed: {(done.stdout + done.stderr)[-2000:]}")
    return target


class ApacheKafka:
    """The broker on loopback ports; ``start``/``stop`` or a context manager. ``proc`` is the
    broker's process while it runs."""

    name = "Apache Kafka"
    limits = ""

    def __init__(self, port: int | None = None, log_file: Path | None = None) -> None:
        self.port = port or free_port()
        self.controller_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="caslie-kafka-"))
        self.log_file = log_file or self.dir / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerUnavailable("java is not installed (Apache Kafka needs Java 17)")
        return [java, "-Xms256m", "-Xmx768m", "-cp", f"{kafka_libs()}/*", *args]

    def start(self, timeout: float = 60.0) -> ApacheKafka:
        reason = missing_reason()
        if reason is not None:
            raise BrokerUnavailable(reason)
        props = self.dir / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{self.controller_port}",
                    f"log.dirs={self.dir / 'data'}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=4",
                    "group.initial.rebalance.delay.ms=0",
                    "num.partitions=1",
                    "auto.create.topics.enable=true",
                    "",
                ]
            )
        )
        formatted = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                _cluster_id(),
                "-c",
                str(props),
            ),
            capture_output=True,
            text=True,
        )
        if formatted.returncode != 0:
            raise BrokerUnavailable(f"kafka storage format failed: {formatted.stderr[-2000:]}")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(self._java("kafka.Kafka", str(props)), stdout=log, stderr=log)
        log.close()  # the child holds its own descriptor
        try:
            wait_for_port("127.0.0.1", self.port, timeout, self.proc)
        except BrokerUnavailable:
            self.stop()
            raise
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ApacheKafka:
        return self.start() if not self.running() else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _cluster_id() -> str:
    """A random cluster id as Kafka makes them (``Uuid.randomUuid``): URL-safe base64 of 16
    random bytes, never starting with ``-``, which the storage tool would read as an option
    (1 run in 64 failed to start the broker before)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
