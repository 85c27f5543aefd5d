"""Whether a run marked ``running`` is still being run: its owner and heartbeat.

A process that creates or resumes a run records itself as the run's ``owner`` (``PID@HOST``) and keeps
``heartbeat_at`` fresh from a daemon thread (every :data:`BEAT_S` seconds) until the run is finished. A run
still marked ``running`` is shown as ``stale`` when its owner is a process of this machine that no longer
exists (kill -9, a crash, a closed terminal), or when its heartbeat is older than :data:`STALE_AFTER_S`
(an owner on another machine of a team's shared store, or a hung one). A stale run can be resumed; a run
that is really running cannot be resumed a second time (:meth:`tryouts.store.Store.claim_run`).
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

#: seconds between two heartbeats of a running run
BEAT_S = 10.0
#: a running run whose heartbeat is older than this is stale, wherever its owner runs
STALE_AFTER_S = 60.0


def this_owner() -> str:
    """``PID@HOST`` of this process."""
    return f"{os.getpid()}@{socket.gethostname()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # another user's process: alive
        return True
    return True


def _age_s(stamp: str | None, now: datetime) -> float | None:
    if not stamp:
        return None
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return (now - then).total_seconds()


def staleness(row: Any, now: datetime | None = None) -> str | None:
    """Why a ``running`` run is no longer being run (a sentence), or None while its owner lives.

    ``row`` has ``status``, ``owner``, ``heartbeat_at`` and ``started_at``; runs recorded before owners
    were (no owner, no heartbeat) are judged by when they started.
    """
    if row["status"] != "running":
        return None
    now = now or datetime.now(UTC)
    owner = row.get("owner") if hasattr(row, "get") else row["owner"]
    if owner:
        pid, _, host = owner.partition("@")
        if host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
            return f"its process ({pid} on this machine) is gone without finishing it"
    age = _age_s(row.get("heartbeat_at") if hasattr(row, "get") else row["heartbeat_at"], now)
    if age is None:
        age = _age_s(row["started_at"], now)
    if age is not None and age > STALE_AFTER_S:
        who = ("its --shard drivers have" if owner == "drivers" else f"its process ({owner}) has" if owner
               else "its process has")
        return f"{who} given no sign of life for {age:.0f} s"
    return None


class Heartbeat:
    """A daemon thread that calls ``beat(run_ids)`` every :data:`BEAT_S` seconds while some run is held."""

    def __init__(self, beat: Callable[[list[str]], None]) -> None:
        self._beat = beat
        self._runs: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, run_id: str) -> None:
        with self._lock:
            self._runs.add(run_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="tryouts-heartbeat", daemon=True)
                self._thread.start()

    def release(self, run_id: str) -> None:
        with self._lock:
            self._runs.discard(run_id)

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._runs)

    def _loop(self) -> None:
        while not self._wake.wait(BEAT_S):
            runs = self.held()
            if not runs:
                with self._lock:
                    if not self._runs:
                        self._thread = None
                        return
                continue
            try:
                self._beat(runs)
            except Exception:  # a lost beat is retried at the next one; the run itself goes on
                pass

    def stop(self) -> None:
        self._wake.set()
