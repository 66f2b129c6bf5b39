"""Worker processes (``python -m caslie run STAGE``) for the benchmark: started, probed over
their health and metrics endpoints, measured (peak resident memory), stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from streams.broker import free_port
from streams.config import Settings, settings_to_env


class WorkerProcesses:
    def __init__(self, settings: Settings, stages: tuple[str, ...], log_dir: Path) -> None:
        self.settings = settings
        self.stages = stages
        self.log_dir = log_dir
        self.ports: dict[str, int] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> WorkerProcesses:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base = {**os.environ, **settings_to_env(self.settings)}
        for stage in self.stages:
            port = free_port()
            env = {**base, "CASLIE_METRICS_PORT": str(port), "CASLIE_LOG_LEVEL": "WARNING"}
            log = open(self.log_dir / f"{stage}.log", "wb")  # noqa: SIM115
            self.ports[stage] = port
            self.procs[stage] = subprocess.Popen(
                [sys.executable, "-m", "caslie", "run", stage],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def _get(self, stage: str, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.ports[stage]}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def wait_ready(self, timeout: float) -> None:
        """Until every worker's ``/readyz`` answers 200 (models loaded, broker reachable)."""
        deadline = time.monotonic() + timeout
        waiting = set(self.stages)
        while waiting and time.monotonic() < deadline:
            self.check_alive()
            waiting = {s for s in waiting if self._get(s, "/readyz")[0] != 200}
            time.sleep(0.5)
        if waiting:
            raise TimeoutError(f"workers not ready after {timeout:.0f}s: {sorted(waiting)}")

    def check_alive(self) -> None:
        dead = {s: p.returncode for s, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"worker(s) exited: {dead}; logs in {self.log_dir}")

    def metrics(self, stage: str, names: tuple[str, ...]) -> dict[str, float]:
        """Each Prometheus sample of ``names`` summed over its labels, from one scrape."""
        status, text = self._get(stage, "/metrics")
        if status != 200:
            raise RuntimeError(f"{stage} /metrics answered {status}: {text[:200]}")
        totals = dict.fromkeys(names, 0.0)
        for line in text.splitlines():
            name = re.split(r"[{\s]", line, maxsplit=1)[0]
            if name in totals:
                totals[name] += float(line.rsplit(" ", 1)[1])
        return totals

    def peak_rss_mb(self) -> dict[str, float]:
        """Peak resident memory (VmHWM) of each worker process so far."""
        peaks = {}
        for stage, proc in self.procs.items():
            status = Path(f"/proc/{proc.pid}/status")
            if status.exists():
                match = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
                if match:
                    peaks[stage] = int(match.group(1)) / 1024
        return peaks

    def stop(self, timeout: float = 30) -> dict[str, int | None]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for stage, proc in self.procs.items():
            try:
                codes[stage] = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[stage] = None
        return codes
