"""Stage workers as real processes (``python -m caslie run STAGE``) to kill and restart."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path


class WorkerPool:
    """One process per stage; ``kill`` sends SIGKILL and starts a replacement at once."""

    def __init__(self, env: dict[str, str], stages: list[str], log_dir: Path) -> None:
        self.env = env
        self.stages = stages
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = dict.fromkeys(stages, 0)
        self.kills = 0

    def start_all(self) -> None:
        for stage in self.stages:
            self._start(stage)

    def _start(self, stage: str) -> None:
        self.starts[stage] += 1
        log = open(self.log_dir / f"{stage}-{self.starts[stage]}.log", "wb")  # noqa: SIM115
        env = {**self.env, "CASLIE_INSTANCE_ID": f"{stage}-0"}  # stable: fences the killed one
        self.procs[stage] = subprocess.Popen(
            [sys.executable, "-m", "caslie", "run", stage], env=env, stdout=log, stderr=log
        )

    def kill_one(self, rng: random.Random) -> str:
        stage = rng.choice(self.stages)
        self.procs[stage].send_signal(signal.SIGKILL)
        self.procs[stage].wait()
        self.kills += 1
        self._start(stage)
        return stage

    def restart(self, stage: str) -> None:
        """Start a stage again after its process exited (what a supervisor does)."""
        self._start(stage)

    def exited(self) -> dict[str, int]:
        """Stages whose current process has exited, with the exit code."""
        return {s: p.returncode for s, p in self.procs.items() if p.poll() is not None}

    def stop_all(self, timeout: float = 30) -> dict[str, int | None]:
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

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


def environment(
    base: dict[str, str], delivery: str, image_folder: Path | None = None
) -> dict[str, str]:
    """Light stages (no model downloads): OCR captioner, the lexical judge alone, small
    batches; a short session timeout so a killed member leaves soon. ``image_folder``: the
    folder the test's file:// images are in (file:// is refused without a root)."""
    roots = [str(image_folder.resolve())] if image_folder is not None else []
    return {
        **base,
        "CASLIE_IMAGES__FILE_ROOTS": json.dumps(roots),
        "CASLIE_DELIVERY": delivery,
        "CASLIE_VOTER__JUDGES": '["overlap"]',
        "CASLIE_BATCH__MAX_BATCH": "8",
        "CASLIE_BATCH__MAX_WAIT_MS": "20",
        "CASLIE_KAFKA": '{"session.timeout.ms": "6000"}',
        "CASLIE_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2]), base.get("PYTHONPATH", "")]),
    }


class Replicas:
    """Replicas of one stage, each its own ``caslie run STAGE`` process with its own
    ``instance_id`` (``STAGE-N``) and router state folder, as a StatefulSet runs them.

    ``stop`` sends SIGTERM (what scaling in does) and keeps the exit code; ``exited`` tells
    the replicas that exited without being told to.
    """

    def __init__(self, env: dict[str, str], stage: str, log_dir: Path) -> None:
        self.env = env
        self.stage = stage
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.codes: dict[str, int | None] = {}
        self._terminated: set[str] = set()

    def _terminate(self, name: str) -> None:
        if name not in self._terminated and self.procs[name].poll() is None:
            self.procs[name].send_signal(signal.SIGTERM)
            self._terminated.add(name)

    def start(self) -> str:
        name = f"{self.stage}-{len(self.procs)}"
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115
        env = {
            **self.env,
            "CASLIE_INSTANCE_ID": name,
            "CASLIE_ROUTER__STATE_DIR": str(self.log_dir / f"state-{name}"),
        }
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "caslie", "run", self.stage], env=env, stdout=log, stderr=log
        )
        return name

    def running(self) -> list[str]:
        return [n for n, p in self.procs.items() if n not in self.codes and p.poll() is None]

    def exited(self) -> dict[str, int]:
        """Replicas that exited by themselves, with their exit codes."""
        return {
            n: p.returncode
            for n, p in self.procs.items()
            if n not in self.codes and p.poll() is not None
        }

    def stop(self, name: str, timeout: float = 60) -> int | None:
        """SIGTERM, once (a second one makes the worker exit at once, without clean-up)."""
        self._terminate(name)
        proc = self.procs[name]
        try:
            self.codes[name] = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            self.codes[name] = None
        return self.codes[name]

    def stop_all(self, timeout: float = 60) -> dict[str, int | None]:
        """Stop the ones still running; every replica's exit code (``None``: killed after
        ``timeout``)."""
        for name in self.running():
            self._terminate(name)
        for name in list(self.procs):
            if name not in self.codes:
                self.stop(name, timeout)
        return dict(self.codes)

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(
            f"--- {name}.log\n{(self.log_dir / f'{name}.log').read_text(errors='replace')[-tail:]}"
            for name in self.procs
        )
