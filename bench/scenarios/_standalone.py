"""Run one scenario module alone, outside ``bench/run.py``, and print its rows."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from bench.harness import Context, drop_databases, make_template, postgres_server


def main(run: Callable[[Context], list[dict]], *, budget: float) -> None:
    """``--quick`` (or BENCH_QUICK=1) for small sizes, ``--sqlite`` to ignore PostgreSQL."""
    quick = "--quick" in sys.argv or os.environ.get("BENCH_QUICK", "") not in ("", "0")
    server = None if "--sqlite" in sys.argv else postgres_server()
    run_id = uuid.uuid4().hex[:8]
    workroot = Path(tempfile.mkdtemp(prefix=f"bench-{run_id}-"))
    try:
        template, tokens = make_template(run_id=run_id, workdir=workroot, server=server)
        ctx = Context(workdir=workroot / "scenario", quick=quick, database_url=server, run_id=run_id,
                      template_url=template, tokens=tokens, budget=budget,
                      profile=os.environ.get("BENCH_PROFILE", "") not in ("", "0"))
        ctx.workdir.mkdir(parents=True)
        try:
            rows = run(ctx)
        finally:
            ctx.close()
        for row in rows:
            print(json.dumps(row))
    finally:
        if server:
            drop_databases(server, f"bench_{run_id}_")
        if os.environ.get("BENCH_KEEP", "") in ("", "0"):
            shutil.rmtree(workroot, ignore_errors=True)
        else:
            print(f"kept {workroot}", file=sys.stderr)
