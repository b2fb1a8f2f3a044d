"""A real PostgreSQL server for the tests.

``AUTOML_TEST_POSTGRES_URL`` names one (CI starts Debian's cluster and sets it). Without it, a
throwaway cluster is made with Debian's PostgreSQL binaries (``apt-get install postgresql``)
in a temporary directory, on a free loopback port, and removed afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator


def _binaries() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError(
            "these tests need a PostgreSQL server: set AUTOML_TEST_POSTGRES_URL, or install Debian's "
            "server (apt-get install postgresql) so the tests can start a throwaway one"
        )
    return os.path.dirname(found[-1])


def _as_postgres_user() -> list[str]:
    # initdb refuses to run as root; Debian's package creates the postgres user
    if os.geteuid() != 0:
        return []
    pwd.getpwnam("postgres")
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a PostgreSQL database to use (and drop) in tests."""
    url = os.environ.get("AUTOML_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    bin_dir, prefix = _binaries(), _as_postgres_user()
    root = tempfile.mkdtemp(prefix="automl-pg-")
    if prefix:
        shutil.chown(root, "postgres", "postgres")
    data, port = os.path.join(root, "data"), _free_port()
    subprocess.run([*prefix, f"{bin_dir}/initdb", "-D", data, "-U", "automl", "--auth=trust"],
                   check=True, capture_output=True)
    subprocess.run(
        [*prefix, f"{bin_dir}/pg_ctl", "-D", data, "-l", os.path.join(root, "log"), "-w", "start",
         "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200"],
        check=True, capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([f"{bin_dir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("the throwaway PostgreSQL server did not start")
            time.sleep(0.2)
        subprocess.run([f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "automl", "automl"],
                       check=True, capture_output=True)
        yield f"postgresql://automl@127.0.0.1:{port}/automl"
    finally:
        subprocess.run([*prefix, f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
