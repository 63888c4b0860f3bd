"""The GPU check script's CPU twin: every step of scripts/device/gpu_training_check.py runs and holds here, so the
script a GPU machine runs is known to work before a GPU is lent (the GPU run itself needs one)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "device" / "gpu_training_check.py"


def test_the_gpu_check_runs_every_step_on_the_cpu(tmp_path) -> None:
    spec = importlib.util.spec_from_file_location("gpu_training_check", SCRIPT)
    assert spec and spec.loader
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    out = tmp_path / "report.json"
    lake = tmp_path / "lake"
    prepared = check.main(["--prepare", str(lake), "--days", "6", "--rows-per-day", "3000"])
    assert prepared["world"]["ok"] and "cluster" not in prepared   # built here, for a GPU machine to carry
    report = check.main(["--cpu-self-test", "--lake", str(lake), "--out", str(out)])
    assert out.exists() and report["mode"] == "cpu self-test" and report["world"]["prepared"] == str(lake)
    assert all(report[s]["ok"] for s in ("world", "cluster", "xgboost", "lightgbm", "scoring", "no_gpu"))
    assert report["xgboost"]["resumed_from"] == 20 and report["xgboost"]["first_rounds"] == 20
    assert report["scoring"]["max_abs_diff_vs_cpu"] < 1e-5 and report["scoring"]["distinct"] == report["scoring"]["rows"]
    assert report["scoring"]["loads"] == {"champion": report["cluster"]["workers"]}
    assert report["no_gpu"]["raised"].startswith("GPUUnavailable: ")
