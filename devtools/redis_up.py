"""``python -m devtools.redis_up URL [ENV_FILE]``: make sure a Redis answers at URL, starting a local one if not.

For ``make up`` on a developer's machine: a Redis on this host's loopback is
started in the background (in memory only, nothing saved) when none answers;
any other address must already be up.  With ``ENV_FILE``, the URL is also
recorded there as ``REDIS_URL``, so commands run without ``make`` (the cron
line, ``manage.py requeue``) reach the same workers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

LOCAL = {"127.0.0.1", "localhost", "::1"}


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def record(env_file: Path, url: str) -> None:
    """Set ``REDIS_URL`` in the env file, keeping every other line."""
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    kept = [line for line in lines if not line.startswith("REDIS_URL=")]
    if kept != lines or f"REDIS_URL={url}" not in lines:
        env_file.write_text("\n".join([*kept, f"REDIS_URL={url}"]) + "\n")
        print(f"Recorded REDIS_URL={url} in {env_file} (manage.py and cron read it; make run ignores it)")


def main(url: str, env_file: Path | None = None) -> int:
    if env_file is not None:
        record(env_file, url)
    if answers(url):
        print(f"Redis answers at {url}")
        return 0
    parts = urlsplit(url)
    if parts.hostname not in LOCAL:
        print(f"Nothing answers at REDIS_URL={url}; start that Redis first.", file=sys.stderr)
        return 1
    server = shutil.which("redis-server")
    if server is None:
        print(f"Nothing answers at {url}, and redis-server is not installed "
              "(Debian: apt install redis-server).", file=sys.stderr)
        return 1
    port = parts.port or 6379
    log = Path(".venv") / f"redis-{port}.log"
    subprocess.run([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                    "--daemonize", "yes", "--logfile", str(log.resolve())], check=True)
    for _ in range(50):
        if answers(url):
            print(f"Started redis-server on port {port} (in memory only; stop it with: redis-cli -p {port} shutdown)")
            return 0
        time.sleep(0.1)
    print(f"redis-server did not answer on port {port}; see {log}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0",
                  Path(sys.argv[2]) if len(sys.argv) > 2 else None))
