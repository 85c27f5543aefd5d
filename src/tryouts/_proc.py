"""Small process helpers shared by the server launchers."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """Terminate ``proc``; kill it if it has not exited after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
