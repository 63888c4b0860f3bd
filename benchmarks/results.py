"""Record benchmark figures in benchmarks/results.json and the human table benchmarks/RESULTS.md."""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "RESULTS.md"
#: RESULTS.md from this heading on is written by hand (what changed, with its profile) and kept as it is
NARRATIVE = "## Changes and profiles"


def machine() -> str:
    try:
        cpus = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        cpus = "?"
    return f"{platform.machine()}, {cpus} cores, Python {platform.python_version()}"


def record(metric: str, value: float, *, unit: str, goal: str, baseline: str, command: str,
           notes: str = "") -> None:
    """Replace the latest figure of ``metric`` (one entry per metric)."""
    entries = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else []
    entries = [e for e in entries if e["metric"] != metric]
    entries.append({
        "metric": metric, "value": round(float(value), 4), "unit": unit, "goal": goal, "baseline": baseline,
        "command": command, "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(), "notes": notes,
    })
    entries.sort(key=lambda e: e["metric"])
    RESULTS_JSON.write_text(json.dumps(entries, indent=1) + "\n")
    lines = ["# Benchmark results", "",
             "Latest figures, one row per metric; regenerate with `make bench` (full size). "
             "CI runs every benchmark in `--smoke` mode only, without recording.", "",
             "| metric | value | unit | goal | baseline | measured | command | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['metric']} | {e['value']} | {e['unit']} | {e['goal']} | {e['baseline']} | "
                     f"{e['measured_at']} ({e['machine']}) | `{e['command']}` | {e['notes']} |")
    RESULTS_MD.write_text("\n".join(lines) + "\n" + _narrative())


def _narrative() -> str:
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else ""
    at = text.find(NARRATIVE)
    return "\n" + text[at:] if at >= 0 else ""
