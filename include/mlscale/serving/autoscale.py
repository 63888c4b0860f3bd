"""Autoscaling the online service: uvicorn worker processes follow the number of requests in flight.

The policy (``mlscale serve --autoscale``): keep the average number of requests in flight per worker near
``target_in_flight``. Every ``interval_s`` the supervisor averages the in-flight samples of the last
``up_after_s`` seconds; above the target it adds a worker (up to ``max_workers``). When the average of the
last ``down_after_s`` seconds stays below ``low_ratio`` x the target it removes one (down to
``min_workers``). At most one change per ``interval_s``, and none in the ``cooldown_s`` after a change, so a
new worker's warm-up does not trigger another. Each decision is logged with its numbers.

In flight = requests between the app receiving them and their answer: the queue of a worker (its event
loop runs one request at a time). Each worker counts its own in a slot of a small file-backed board
(:class:`InFlightBoard`, a memory-mapped array: no lock and no system call per request); the supervisor
reads the sum. The supervisor is uvicorn's own multi-process supervisor (same socket for every worker,
health checks, restarts) with the scaling added to its loop.
"""

from __future__ import annotations

import collections
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

BOARD_ENV = "MLSCALE_SERVE_BOARD"
SLOTS = 64


@dataclass(frozen=True)
class AutoscalePolicy:
    min_workers: int = 1
    max_workers: int = 4
    target_in_flight: float = 2.0
    low_ratio: float = 0.3
    interval_s: float = 1.0
    up_after_s: float = 3.0
    down_after_s: float = 15.0
    cooldown_s: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_workers <= self.max_workers <= SLOTS:
            raise ValueError(f"workers: need 1 <= min ({self.min_workers}) <= max ({self.max_workers}) <= {SLOTS}")
        if self.target_in_flight <= 0:
            raise ValueError(f"target_in_flight must be above 0, got {self.target_in_flight}")

    def decide(self, workers: int, recent_up: float, recent_down: float) -> int:
        """+1, -1 or 0 workers, from the average in flight over the up and the down windows."""
        if recent_up / workers > self.target_in_flight and workers < self.max_workers:
            return 1
        if recent_down / workers < self.low_ratio * self.target_in_flight and workers > self.min_workers:
            return -1
        return 0


class InFlightBoard:
    """int64 slots in a memory-mapped file: [0] the worker count; per worker a (pid, in flight) pair."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = str(path)
        shape = (1 + 2 * SLOTS,)
        self.cells = np.memmap(self.path, dtype=np.int64, mode="w+", shape=shape) if create \
            else np.memmap(self.path, dtype=np.int64, mode="r+", shape=shape)
        if create:
            self.cells[:] = 0
        self.slot: int | None = None

    def claim(self, pid: int | None = None) -> int:
        """A free slot for this process (a slot of a process that is gone is free)."""
        pid = pid or os.getpid()
        for i in range(SLOTS):
            owner = int(self.cells[1 + 2 * i])
            if owner in (0, pid) or not _alive(owner):
                self.cells[1 + 2 * i], self.cells[2 + 2 * i] = pid, 0
                self.slot = i
                return i
        raise RuntimeError(f"no free slot on the in-flight board {self.path} ({SLOTS} workers at most)")

    def add(self, delta: int) -> None:
        if self.slot is not None:
            self.cells[2 + 2 * self.slot] += delta

    def total(self) -> int:
        pairs = self.cells[1:].reshape(SLOTS, 2)
        return int(sum(int(n) for pid, n in pairs if pid and _alive(int(pid))))

    @property
    def workers(self) -> int:
        return int(self.cells[0])

    @workers.setter
    def workers(self, value: int) -> None:
        self.cells[0] = value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class InFlight:
    """ASGI middleware: counts the HTTP requests this worker holds on its board slot."""

    def __init__(self, app: Any, board: InFlightBoard) -> None:
        self.app, self.board = app, board

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.board.add(1)
        try:
            await self.app(scope, receive, send)
        finally:
            self.board.add(-1)


def serve_autoscaled(app: str, *, host: str, port: int, policy: AutoscalePolicy, board_path: str) -> None:
    """Run ``app`` (a uvicorn factory import string) under the autoscaling supervisor."""
    import uvicorn
    from uvicorn.supervisors.multiprocess import Multiprocess, Process

    board = InFlightBoard(board_path, create=True)
    os.environ[BOARD_ENV] = board_path

    class Autoscaling(Multiprocess):
        def run(self) -> None:
            self.init_processes()
            board.workers = len(self.processes)
            samples: collections.deque[tuple[float, int]] = collections.deque()
            last_change = time.monotonic()
            logger.info("autoscaling %d..%d workers, target %.1f requests in flight per worker", policy.min_workers,
                        policy.max_workers, policy.target_in_flight)
            while not self.should_exit.wait(0.1):
                self.handle_signals()
                now = time.monotonic()
                samples.append((now, board.total()))
                while samples and samples[0][0] < now - max(policy.up_after_s, policy.down_after_s):
                    samples.popleft()
                if now - last_change < max(policy.interval_s, policy.cooldown_s):
                    continue
                self.keep_subprocess_alive()
                up = float(np.mean([n for t, n in samples if t >= now - policy.up_after_s] or [0]))
                down = float(np.mean([n for t, n in samples] or [0])) if now - last_change >= policy.down_after_s \
                    else float("inf")
                change = policy.decide(len(self.processes), up, down)
                if change:
                    self._scale(change, up, down)
                    board.workers = len(self.processes)
                    last_change = now
            self.terminate_all()
            self.join_all()

        def _scale(self, change: int, up: float, down: float) -> None:
            if change > 0:
                process = Process(self.config, self.sockets)
                process.start()
                self.processes.append(process)
                self.processes_num = len(self.processes)
            else:
                process = self.processes.pop()
                self.processes_num = len(self.processes)
                process.terminate()
                process.join()
            logger.warning("autoscale: %s a worker -> %d workers (in flight: %.1f over the last %g s, %.1f over %g s; "
                           "target %.1f per worker)", "added" if change > 0 else "removed", len(self.processes), up,
                           policy.up_after_s, down, policy.down_after_s, policy.target_in_flight)

    config = uvicorn.Config(app, factory=True, host=host, port=port, workers=policy.min_workers,
                            log_level="warning", access_log=False)
    socket = config.bind_socket()
    try:
        Autoscaling(config, sockets=[socket]).run()
    finally:
        Path(board_path).unlink(missing_ok=True)
