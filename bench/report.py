"""Write the results of a run: ``results.json``, ``results.md`` and ``results.png``."""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path
from typing import Any

from bench.harness import RESULTS


def share_of(row: dict, ceiling: float | None) -> float | None:
    """The row's value as a share of the ceiling, for throughput rows other than the ceiling itself."""
    if not ceiling or row.get("ceiling") or row.get("share_of_ceiling") is False:
        return None
    if not str(row.get("unit", "")).endswith("/s") or math.isnan(row["value"]):
        return None
    return row["value"] / ceiling


def write_report(rows: list[dict], *, machine: dict, run: dict, ceiling: float | None,
                 out: Path = RESULTS) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(rows, key=_order)  # scenario order; the runner runs 2 and 4 together, before 3
    for r in rows:
        r["share_of_ceiling"] = share_of(r, ceiling)
    data = {"machine": machine, "run": run, "ceiling_msgs_per_s": ceiling, "rows": rows}
    json_path = out / "results.json"
    json_path.write_text(json.dumps(data, indent=2, default=str, allow_nan=True) + "\n")
    md_path = out / "results.md"
    md_path.write_text(_markdown(data))
    paths = [md_path, json_path]
    png = _plot(rows, ceiling, out / "results.png", machine=machine, run=run)
    if png:
        paths.append(png)
    return paths


def _num(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(data: dict) -> str:
    m, run = data["machine"], data["run"]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {m['date']} by `make bench`{' with BENCH_QUICK=1 (smoke run, small N)' if run['quick'] else ''}"
        f" in {run['wall_s']:.0f} s.",
        "",
        f"* Machine: {m['nproc']} cores, {m['cpu']}, {m['ram_gib']} GiB RAM; load {m['load_1min_at_start']} at start",
        f"* Software: Python {m['python']}, Redis {m['redis']}, {run['database']}; {m['platform']}",
        "* Every figure comes from this one run on a shared, noisy machine: compare ratios, not absolutes.",
        "* \"Product CPU\" is the system under test's own processes (web/daphne, workers, Redis, PostgreSQL); "
        "the gateway and mail server stand-ins and the load clients are left out. Every paid order's receipt "
        "is run and emailed, in every system.",
    ]
    if data["ceiling_msgs_per_s"]:
        lines.append(f"* Ceiling (scenario 1): {_num(data['ceiling_msgs_per_s'])} msgs/s; "
                     "\"share\" is a throughput divided by it.")
    for note in run.get("skipped", []):
        lines.append(f"* {note}")
    lines += [
        "",
        "| Scenario | Metric | Value | Unit | Share of ceiling | Target | Met | Note |",
        "| --- | --- | ---: | --- | ---: | --- | :---: | --- |",
    ]
    for r in data["rows"]:
        share = r.get("share_of_ceiling")
        met = {True: "✓", False: "✗", None: ""}[r["met"]]
        lines.append("| " + " | ".join(_cell(c) for c in (
            r["scenario"], r["metric"], _num(r["value"]), r["unit"],
            f"{100 * share:.2f}%" if share is not None else "", r["target"], met, r["note"],
        )) + " |")
    missed = [r for r in data["rows"] if r["met"] is False]
    if missed:
        lines += ["", "## Missed targets", ""]
        for r in missed:
            lines.append(f"* **{r['scenario']}, {r['metric']}**: {_num(r['value'])} {r['unit']} against "
                         f"{r['target'] or 'a clean run'}. {r['note']}".rstrip())
    lines.append("")
    return "\n".join(lines)


def _order(row: dict) -> int:
    """Rows in scenario order (the runner runs 2 and 4 together, before 3)."""
    match = re.match(r"\s*(\d+)", str(row["scenario"]))
    return int(match[1]) if match else 99


def _against_target(row: dict) -> tuple[float, str] | None:
    """(measured ÷ target, oriented so that >= 1 is met; a label), or None without a numeric target."""
    target = str(row.get("target") or "")
    if row.get("met") is None or not target or math.isnan(row["value"]):
        return None
    found = re.search(r"\(([\d.,]+)", target) or re.search(r"([\d.,]+)", target)
    if not found:
        return None
    goal = float(found[1].replace(",", "").rstrip("."))
    value = row["value"]
    if "ceiling" in target and row.get("share_of_ceiling") is not None:
        value = 100 * row["share_of_ceiling"]  # the target is a share of the ceiling, in %
    if goal <= 0 or value <= 0:
        return None
    ratio = goal / value if target.lstrip().startswith("<") else value / goal
    return ratio, f"{_num(value)} vs {target}"


def _plot(rows: list[dict], ceiling: float | None, path: Path, *, machine: dict, run: dict) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = sorted(rows, key=_order)
    rates = [r for r in rows if str(r["unit"]).endswith("/s") and not math.isnan(r["value"]) and r["value"] > 0]
    latencies = [r for r in rows if r["unit"] == "ms" and not math.isnan(r["value"])
                 and ("latency" in r["metric"] or re.search(r"\bp\d\d\b", r["metric"]))]
    targets = [(r, t) for r in rows if (t := _against_target(r)) is not None]
    panels = [p for p in (rates, latencies, targets) if p]
    if not panels:
        return None
    heights = [max(2.5, 0.32 * len(p) + 1.2) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(14, sum(heights) + 1.0),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    axes = [a[0] for a in axes]
    colours = {"1": "#555555", "2": "#1f77b4", "3": "#2ca02c", "4": "#d62728", "5": "#9467bd", "6": "#8c564b"}

    def colour(r: dict) -> str:
        return colours.get(str(r["scenario"])[:1], "#7f7f7f")

    def label(r: dict) -> str:
        return textwrap.shorten(f"{r['scenario']}: {r['metric']}", 100)

    def bars(ax, items: list[dict], values: list[float], colors: list[str], notes: list[str], *,
             log: bool, xlabel: str, title: str, margin: float) -> None:
        y = list(range(len(items)))
        ax.barh(y, values, color=colors)
        ax.set_yticks(y, [label(r) for r in items], fontsize=8)
        ax.invert_yaxis()
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        for i, (value, note) in enumerate(zip(values, notes)):
            ax.text(value, i, f" {note}", va="center", fontsize=7)
        ax.margins(x=margin)

    ax = axes[0]
    if rates:
        share = f" — share of the {_num(ceiling)} msgs/s ceiling beside each bar" if ceiling else ""
        notes = [f"{_num(r['value'])} {r['unit']}"
                 + (f"  ({100 * r['share_of_ceiling']:.2f}%)" if r.get("share_of_ceiling") is not None else "")
                 for r in rates]
        bars(ax, rates, [r["value"] for r in rates], [colour(r) for r in rates], notes, log=True,
             xlabel="per second (log scale)", title=f"Throughput{share}", margin=0.25)
        if ceiling:
            ax.axvline(ceiling, color="#555555", linestyle="--", linewidth=1)
        ax = axes[1] if len(axes) > 1 else None
    if latencies and ax is not None:
        bars(ax, latencies, [r["value"] for r in latencies], [colour(r) for r in latencies],
             [f"{_num(r['value'])} ms" for r in latencies], log=False, xlabel="milliseconds",
             title="Latency percentiles", margin=0.15)
    if targets:
        ax = axes[-1]
        bars(ax, [r for r, _ in targets], [t[0] for _, t in targets],
             ["#2ca02c" if r["met"] else "#d62728" for r, _ in targets], [t[1] for _, t in targets], log=True,
             xlabel="measured against the target (1 = the target; right of it = met), log scale",
             title="Targets: green met, red missed", margin=0.3)
        ax.axvline(1.0, color="#555555", linestyle="--", linewidth=1)
    fig.suptitle(f"make bench{' (quick)' if run['quick'] else ''} — {machine['date']}, {machine['nproc']} cores, "
                 f"{run['database']}, Redis {machine['redis']}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.98))  # room for the suptitle
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
