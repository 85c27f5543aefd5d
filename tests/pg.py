"""A throwaway PostgreSQL server for the tests (Debian's PostgreSQL 15), used by conftest's ``pg_server``.

initdb runs into a temporary folder as the unprivileged ``postgres`` user (initdb refuses root), and
``postgres`` listens on 127.0.0.1 with a password-protected user; it is stopped afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER, PASSWORD = "tryouts", "pg-secret-7d1f0c"


def _as_postgres() -> list[str]:
    """The prefix that runs a command as the ``postgres`` user when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


@contextmanager
def pg_server_running() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for this session; yields its admin URL base ``postgresql://USER:PW@HOST:PORT``."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL is missing: {PG_BIN}/initdb. Install it with apt-get install postgresql "
                    "(make test does it when run as root).")
    import psycopg

    root = Path(tempfile.mkdtemp(prefix="tryouts-pg-"))
    data, sock, pwfile, log = root / "data", root / "sock", root / "pw", root / "server.log"
    sock.mkdir()
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        for p in (sock, pwfile):
            shutil.chown(p, "postgres")
    port = free_port()
    proc = None
    try:
        init = subprocess.run([*_as_postgres(), str(PG_BIN / "initdb"), "-D", str(data), "-U", USER, "-E", "UTF8",
                               "--no-locale", f"--pwfile={pwfile}", "--auth-host=scram-sha-256", "--auth-local=trust"],
                              capture_output=True, text=True, timeout=120)
        if init.returncode != 0:
            pytest.fail(f"initdb failed ({init.returncode}): {init.stderr[-2000:]}")
        with open(log, "w") as out:
            proc = subprocess.Popen([*_as_postgres(), str(PG_BIN / "postgres"), "-D", str(data), "-k", str(sock),
                                     "-h", "127.0.0.1", "-p", str(port), "-c", "fsync=off", "-c",
                                     "synchronous_commit=off", "-c", "full_page_writes=off"],
                                    stdout=out, stderr=subprocess.STDOUT)
        base = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(f"{base}/postgres", connect_timeout=2).close()
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"PostgreSQL did not start on 127.0.0.1:{port}: {log.read_text()[-2000:]}")
                time.sleep(0.1)
        yield base
    finally:
        if proc is not None:
            subprocess.run([*_as_postgres(), str(PG_BIN / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate"],
                           capture_output=True, timeout=60)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(root, ignore_errors=True)


_DB_COUNTER = iter(range(1_000_000))


def new_database(server: str) -> str:
    """A fresh, empty database on ``server``: its ``postgresql://`` URL (with the password)."""
    import psycopg

    name = f"t{os.getpid()}_{next(_DB_COUNTER)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"
