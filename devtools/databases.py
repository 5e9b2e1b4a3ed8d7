"""One migrated template database per run, copied for every stack.

``migrate`` costs seconds of CPU on a busy 2-core machine; copying a migrated
database (``CREATE DATABASE ... TEMPLATE`` on PostgreSQL, a file copy on
SQLite) costs a fraction of one.  The template also holds the users a run
needs, with their API tokens, so a stack starts with them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from devtools.processes import PYTHON, ROOT

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def postgres_server(url: str | None = None) -> str | None:
    """A reachable PostgreSQL server's URL (its ``postgres`` database), or None."""
    url = url or os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception:
        return None
    return url


def pg_admin(server: str, sql: str) -> list[tuple]:
    """Run one statement on the server's maintenance database, outside a transaction."""
    import psycopg

    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def drop_database(url: str) -> None:
    """Drop a PostgreSQL database, even with connections left open; a no-op for SQLite."""
    if is_postgres(url):
        base, name = url.rsplit("/", 1)
        pg_admin(f"{base}/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_tag(pid: int | None = None) -> str:
    """What names a test run's own PostgreSQL databases: ``run<pid>``.

    Two runs on one server (two checkouts, CI beside a developer's run) then
    never drop or reuse each other's databases, and a run that was killed
    can be recognised by its dead process.
    """
    return f"run{pid or os.getpid()}"


_RUN_TAG = re.compile(r"_run(\d+)(?:_|$)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def drop_dead_runs(server: str) -> list[str]:
    """Drop the databases of test runs on this machine whose process is gone; their names.

    Only on a server on this machine: a process id means nothing on another.
    """
    if urlsplit(server).hostname not in (None, "127.0.0.1", "localhost", "::1"):
        return []
    return _drop_where(server, _of_a_dead_run)


def _of_a_dead_run(name: str) -> bool:
    match = _RUN_TAG.search(name)
    return match is not None and not _alive(int(match.group(1)))


def drop_databases(server: str, prefix: str) -> None:
    """Drop every database whose name starts with ``prefix`` (a run's leftovers)."""
    _drop_where(server, lambda name: name.startswith(prefix))


def _drop_where(server: str, wanted) -> list[str]:
    names = [name for (name,) in pg_admin(server, "SELECT datname FROM pg_database") if wanted(name)]
    for name in names:
        pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return names


def _users_script(users: list[str], password: str | None) -> str:
    # One hash for everyone: PBKDF2 costs most of a second per user.
    return (
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.auth.hashers import make_password\n"
        "from rest_framework.authtoken.models import Token\n"
        f"password = {password!r}\n"
        "hashed = make_password(password)\n"
        "out = {}\n"
        f"for name in {users!r}:\n"
        "    user, _ = get_user_model().objects.get_or_create(username=name)\n"
        "    user.password = hashed\n"
        "    user.save(update_fields=['password'])\n"
        "    out[name] = Token.objects.get_or_create(user=user)[0].key\n"
        "print(json.dumps(out))\n"
    )


def create_users(env: dict[str, str], users: list[str], password: str | None) -> dict[str, str]:
    """Create (or reset) users through the product's own settings; returns {username: token}."""
    result = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", _users_script(users, password)],
        cwd=ROOT, env=env, check=True, timeout=180, capture_output=True, text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def copy_database(template_url: str, *, label: str, prefix: str, workdir: Path) -> str:
    """A copy of a migrated database: ``<prefix>_<label>_<random>`` on its server, or a file in ``workdir``."""
    suffix = f"{label}_{uuid.uuid4().hex[:6]}".replace("-", "_")
    if is_postgres(template_url):
        base, template = template_url.rsplit("/", 1)
        name = f"{prefix}_{suffix}"
        pg_admin(f"{base}/postgres", f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return f"{base}/{name}"
    path = workdir / f"{suffix}.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template_url.removeprefix("sqlite:///"), path)
    return f"sqlite:///{path}"


class DatabaseTemplate:
    """A migrated database with ``users``; ``copy()`` gives each stack its own.

    ``server`` is a PostgreSQL server URL, or None for SQLite files under
    ``workdir``.  ``prefix`` names this run's PostgreSQL databases, so a run
    that dies can be cleaned up by name.
    """

    def __init__(self, *, workdir: Path, server: str | None, env: dict[str, str], users: list[str],
                 password: str | None, prefix: str | None = None):
        self.workdir = workdir
        self.server = server
        self.env = env
        self.users = users
        self.password = password
        self.prefix = prefix or f"tpl_{uuid.uuid4().hex[:8]}"
        self.url = ""
        self.tokens: dict[str, str] = {}

    def create(self) -> "DatabaseTemplate":
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.server:
            name = f"{self.prefix}_template"
            pg_admin(self.server, f'CREATE DATABASE "{name}"')
            self.url = f"{self.server.rsplit('/', 1)[0]}/{name}"
        else:
            self.url = f"sqlite:///{self.workdir / 'template.sqlite3'}"
        env = self.env | {"DATABASE_URL": self.url}
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
        self.tokens = create_users(env, self.users, self.password)
        if not self.server:
            # A clean file to copy: fold the write-ahead log back in.
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("PRAGMA journal_mode=DELETE")
        return self

    def copy(self, label: str = "db", workdir: Path | None = None) -> str:
        """A fresh database, migrated and holding the users; the caller drops it."""
        return copy_database(self.url, label=label, prefix=self.prefix, workdir=workdir or self.workdir)

    def close(self) -> None:
        """Drop the template and every copy still left."""
        if self.server:
            drop_databases(self.server, self.prefix)
