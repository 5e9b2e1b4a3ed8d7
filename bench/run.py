"""``make bench``: run every scenario, each bounded in time, and write the results.

Each scenario runs in a child process (``python -m bench.run --child MODULE``)
in a session of its own.  When its budget is spent the whole process group is
killed, so no daphne, worker or redis-server outlives it, and the run's
databases are dropped.  Results go to ``bench/results/`` as Markdown, JSON and
a PNG.

Environment: ``BENCH_QUICK=1`` for a smoke run with small N;
``BENCH_ONLY=ceiling,e2e`` to run some scenarios only (the report then holds
only those); ``BENCH_PROFILE=1`` to sample the web and worker processes with
py-spy during the measured runs (that run reports to ``bench/results/profiled/``,
apart from the unperturbed figures); ``BENCH_KEEP=1`` to keep the work
directory (logs) afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.harness import KEYS, PROFILED, PYTHON, RESULTS, ROOT, Context, drop_databases, machine, make_template, \
    postgres_server, row

logger = logging.getLogger("bench")


@dataclass(frozen=True)
class Scenario:
    key: str  # for BENCH_ONLY
    title: str
    module: str
    budget: float  # seconds, full run
    quick_budget: float  # seconds, BENCH_QUICK=1


# In order: the ceiling first, so every later figure can be a share of it.
# Scenario 2 runs three systems (ours, Celery push, Celery polling) at two
# worker counts, with receipts, and ours twice (the payment alone): it takes
# what the others leave of the 12 minutes.
SCENARIOS = [
    Scenario("ceiling", "1. Ceiling", "bench.scenarios.ceiling", 35, 30),
    Scenario("e2e", "2. End to end + 4. Peers", "bench.scenarios.e2e", 290, 200),
    Scenario("iobound", "3. I/O bound", "bench.scenarios.iobound", 110, 90),
    Scenario("requeue", "5. Requeue scaling", "bench.scenarios.requeue", 50, 45),
    # 1,000 orders with their receipts, every event fanned out: about 2 minutes.
    Scenario("fanout", "6. Fan-out", "bench.scenarios.fanout", 240, 60),
]
# The whole suite must finish in under 12 minutes on 2 cores.
TOTAL_BUDGET = 700.0
# What the runner itself needs after the last scenario (report, clean-up).
RESERVE = 15.0


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in {"1", "true", "yes"}


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    started = time.monotonic()
    quick = _flag("BENCH_QUICK")
    only = {k.strip() for k in os.environ.get("BENCH_ONLY", "").split(",") if k.strip()}
    if shutil.which("redis-server") is None:
        logger.error("redis-server is not installed (apt-get install redis-server); every scenario needs it")
        return 2
    run_id = uuid.uuid4().hex[:8]
    workroot = Path(tempfile.mkdtemp(prefix=f"bench-{run_id}-"))
    server = postgres_server()
    logger.info("Run %s in %s on %s%s", run_id, workroot, "PostgreSQL" if server else "SQLite",
                " (quick)" if quick else "")
    info = machine()
    rows: list[dict] = []
    skipped: list[str] = []
    ceiling: float | None = None
    template = None
    try:
        template, tokens = make_template(run_id=run_id, workdir=workroot, server=server)
        for scenario in SCENARIOS:
            if only and scenario.key not in only:
                continue
            if importlib.util.find_spec(scenario.module) is None:
                note = f"{scenario.title}: {scenario.module} does not exist yet; skipped"
                print(f"NOTE {note}", flush=True)
                skipped.append(note)
                continue
            left = TOTAL_BUDGET - (time.monotonic() - started) - RESERVE
            budget = min(scenario.quick_budget if quick else scenario.budget, left)
            if budget < 20:
                note = f"{scenario.title}: skipped, the suite's {TOTAL_BUDGET:.0f}s budget is spent"
                print(f"NOTE {note}", flush=True)
                skipped.append(note)
                continue
            ctx = Context(workdir=workroot / scenario.key, quick=quick, database_url=server, run_id=run_id,
                          template_url=template, tokens=tokens, ceiling=ceiling, budget=budget,
                          profile=_flag("BENCH_PROFILE"))
            got = _run_child(scenario, ctx, server)
            rows.extend(got)
            for r in got:
                if r.get("ceiling"):
                    ceiling = r["value"]
    finally:
        if server:
            drop_databases(server, f"bench_{run_id}_")
        if not _flag("BENCH_KEEP"):
            shutil.rmtree(workroot, ignore_errors=True)
        else:
            logger.info("Kept %s", workroot)
    wall = time.monotonic() - started
    from bench.report import write_report

    paths = write_report(rows, machine=info, run={
        "run_id": run_id, "quick": quick, "wall_s": round(wall, 1), "database": _engine(server),
        "only": sorted(only), "skipped": skipped, "profile": _flag("BENCH_PROFILE"),
    }, ceiling=ceiling, out=PROFILED if _flag("BENCH_PROFILE") else RESULTS)
    logger.info("Wrote %s in %.0fs", ", ".join(str(p.relative_to(ROOT)) for p in paths), wall)
    return 0


def _engine(server: str | None) -> str:
    if not server:
        return "SQLite"
    from devtools.databases import pg_admin

    version = pg_admin(server, "SHOW server_version")[0][0]
    return f"PostgreSQL {version.split()[0]}"


def _run_child(scenario: Scenario, ctx: Context, server: str | None) -> list[dict]:
    """Run one scenario in its own session; kill the session when the budget is spent."""
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    spec = ctx.workdir / "context.json"
    out = ctx.workdir / "rows.json"
    # Only the plain fields travel; the child builds its own helpers and clock.
    fields = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)
              if not f.name.startswith("_") and f.name != "started"}
    fields["workdir"] = str(ctx.workdir)
    spec.write_text(json.dumps(fields))
    logger.info("== %s (budget %.0fs) ==", scenario.title, ctx.budget)
    began = time.monotonic()
    child = subprocess.Popen([PYTHON, "-m", "bench.run", "--child", scenario.module, str(spec), str(out)],
                             cwd=ROOT, start_new_session=True)
    failure = ""
    try:
        code = child.wait(timeout=ctx.budget)
        if code:
            failure = f"failed (exit {code}); see the log above"
    except subprocess.TimeoutExpired:
        failure = f"timed out after {ctx.budget:.0f}s and was killed"
        _killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    finally:
        # Whatever the child left behind in its session dies with it.
        _killpg(child.pid, signal.SIGKILL)
        child.wait()
        if server:
            _drop_scenario_databases(server, ctx.run_id)
    elapsed = time.monotonic() - began
    rows: list[dict] = []
    if out.exists():
        rows = json.loads(out.read_text())
    if failure:
        logger.error("%s %s", scenario.title, failure)
        rows.append(row(scenario.title, "scenario run", float("nan"), "", met=False, note=failure))
    logger.info("%s took %.0fs", scenario.title, elapsed)
    return rows


def _drop_scenario_databases(server: str, run_id: str) -> None:
    from devtools.databases import pg_admin

    names = [r[0] for r in pg_admin(server, "SELECT datname FROM pg_database")]
    for name in names:
        if name.startswith(f"bench_{run_id}_") and not name.endswith("_template"):
            pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- the child side ---------------------------------------------------------------

def child(module: str, spec: Path, out: Path) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    fields = json.loads(spec.read_text())
    fields["workdir"] = Path(fields["workdir"])
    ctx = Context(**fields)
    # SIGTERM from the runner: leave through finally, so the stacks close.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        rows = importlib.import_module(module).run(ctx)
        for r in rows:
            missing = [k for k in KEYS if k not in r]
            if missing:
                raise ValueError(f"{module} returned a row without {missing}: {r}")
            if not isinstance(r["value"], (int, float)) or isinstance(r["value"], bool):
                raise ValueError(f"{module} returned a non-numeric value: {r}")
            r["value"] = float(r["value"])
        out.write_text(json.dumps(rows, default=_json_default))
        for r in rows:
            logger.info("%s | %s = %s %s %s", r["scenario"], r["metric"], _fmt(r["value"]), r["unit"],
                        f"(target {r['target']}: {'met' if r['met'] else 'MISSED'})" if r["target"] else "")
    finally:
        ctx.close()
    return 0


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def _json_default(value):
    return str(value)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", nargs=3, metavar=("MODULE", "CONTEXT", "OUT"))
    args = parser.parse_args()
    if args.child:
        sys.exit(child(args.child[0], Path(args.child[1]), Path(args.child[2])))
    sys.exit(main())
