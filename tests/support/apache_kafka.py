"""Start a single-node Apache Kafka (KRaft) from the jars that ``.ci/run`` fetches."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from streams.broker import free_port, wait_for_port

KAFKA_VERSION = "4.1.0"


def kafka_libs() -> Path:
    """The folder of broker jars: ``CASLIE_KAFKA_LIBS`` or the cache ``.ci/run`` fills."""
    env = os.environ.get("CASLIE_KAFKA_LIBS")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "caslie" / f"kafka-{KAFKA_VERSION}" / "libs"


class ApacheKafka:
    def __init__(self) -> None:
        self.port = free_port()
        self.controller_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="caslie-kafka-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("java is not installed (Apache Kafka needs Java 17)")
        return [java, "-Xms256m", "-Xmx768m", "-cp", f"{kafka_libs()}/*", *args]

    def start(self, timeout: float = 60.0) -> ApacheKafka:
        libs = kafka_libs()
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise RuntimeError(
                f"no Kafka jars in {libs}: run 'mvn -f .ci/kafka-pom.xml "
                "dependency:copy-dependencies "
                f"-DoutputDirectory={libs}' (bash .ci/run does this)"
            )
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
        cluster_id = _cluster_id()
        subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(props),
            ),
            check=True,
            capture_output=True,
        )
        log = open(self.dir / "broker.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(self._java("kafka.Kafka", str(props)), stdout=log, stderr=log)
        wait_for_port("127.0.0.1", self.port, timeout, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _cluster_id() -> str:
    """A random cluster id as Kafka makes them (``Uuid.randomUuid``): URL-safe base64 of 16
    random bytes, never starting with ``-``, which the storage tool would read as an option
    (1 run in 64 failed to start the broker before)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
