"""The report templates (mlscale/templates, rendered by mlscale.rendering): every template compiles, and text
from the lake is escaped on every page, in element content and in attribute values alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
import pytest
from markupsafe import Markup
from mlscale.governance import render_bias_html
from mlscale.governance.bias import BiasThresholds, audit_bias
from mlscale.governance.drift_report import render_drift_html
from mlscale.lake import Lake
from mlscale.lifecycle.cost import render_html as render_cost_html
from mlscale.rendering import binary_size, environment, number, percent, render, template_names
from mlscale.reports.health import build_health_report
from mlscale.reports.health_html import render_health_html
from mlscale.scoring.shadow_html import render_shadow_html
from mlscale.training.report import render as render_training_html

EVIL = '<script>alert(1)</script>"'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;"
REPORTS = ("bias", "cost", "drift", "health", "model_card", "shadow", "training")


def assert_escaped(page: str, times: int = 1) -> None:
    assert "<script" not in page and "alert(1)</script>" not in page
    assert page.count(ESCAPED) >= times
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</body></html>")


def test_every_template_compiles() -> None:
    names = template_names()
    assert {"base.html.j2", "macros.html.j2", "charts.svg.j2"} <= set(names)
    assert {f"{report}.html.j2" for report in REPORTS} <= set(names)
    folder = Path(environment().get_template("base.html.j2").filename or "").parent
    assert sorted(p.name for p in folder.glob("*.j2")) == sorted(names)
    for name in names:
        environment().get_template(name)  # raises TemplateSyntaxError on a broken template


def test_environment_escapes_and_is_strict() -> None:
    env = environment()
    assert env is environment() and env.autoescape is True and env.undefined is jinja2.StrictUndefined
    page = env.from_string('<a href="{{ url }}">{{ text }}</a>{{ nothing }}{{ markup }}').render(
        url='x" onclick="boom', text=EVIL, nothing=None, markup=Markup("<b>kept</b>"))
    assert page == '<a href="x&quot; onclick=&quot;boom">' + ESCAPED + "</a><b>kept</b>"
    with pytest.raises(jinja2.UndefinedError):
        render("model_card.html.j2", title="t", sections=[])  # no description given


def test_number_filters() -> None:
    assert [number(v) for v in (None, 3, 1234.5, 0.123456, True, "x")] == ["–", "3", "1,234", "0.1235", "True", "x"]
    assert [percent(v) for v in (None, 0.05, "n/a")] == ["–", "5.00%", "n/a"]
    assert [binary_size(v) for v in (512, 1536, 3 * 2**30, 2**41)] == ["512 B", "1.5 KiB", "3.0 GiB", "2.0 TiB"]


def test_health_page_escapes_lake_text(tmp_path: Path) -> None:
    doc = build_health_report(Lake(f"file://{tmp_path}/lake"), "2026-11-05", history_days=3).as_dict()
    doc["attention"] = [{"severity": "warning", "kind": EVIL, "message": EVIL, "pipeline": "x",
                         "links": [f"/report?{EVIL}"]}]
    doc["sources"][EVIL] = {"status": EVIL, "records": 1}
    page = render_health_html(doc)
    assert_escaped(page, times=5)
    assert f'<a href="/report?{ESCAPED}">report</a>' in page  # escaped inside the attribute too
    assert page.count("<svg") == 0 and page.count('<p class="nodata">') >= 6  # no data: no charts


def bias_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    return pd.DataFrame({"y": rng.integers(0, 2, n), "s": rng.random(n), "d": rng.integers(0, 2, n),
                         "g": np.where(np.arange(n) % 2 == 0, EVIL, "plain")})


def test_bias_report_escapes_group_names_and_reasons() -> None:
    thresholds = BiasThresholds(min_group_size=8, bootstrap_samples=50)
    doc = audit_bias(bias_frame(), label="y", score="s", decision="d", attributes=["g"], thresholds=thresholds).as_dict()
    doc = {**doc, "reasons": [EVIL], "champion": {"version": EVIL, "note": EVIL}}
    page = render_bias_html(doc)
    assert_escaped(page, times=4)  # group row, both chart labels, reason, champion
    assert page.count("<svg") == 2 and 'aria-label="selection rate with interval"' in page


def cost_doc() -> dict[str, Any]:
    row = {"zone": "raw", "dataset": EVIL, "tier": "hot", "objects": 3, "bytes": 4096, "small_files": 1,
           "data_files": 2, "monthly_cost": 0.5}
    return {"run_day": "2026-11-05", "run_id": EVIL, "lake_root": "file:///lake", "dry_run": True, "currency": EVIL,
            "prices": {"hot": 0.023, "cold": 0.004, "storage_classes": {}},
            "totals": {"objects": 3, "bytes": 4096, "hot_bytes": 4096, "cold_bytes": 0, "monthly_cost": 0.5},
            "by_dataset": [row], "growth": {"previous_day": None, "top": []},
            "saved": {"basis": EVIL, "bytes_deleted_hot": 0, "bytes_deleted_cold": 0, "bytes_moved_cold": 0,
                      "monthly_saving": 0.0},
            "small_files": [{"zone": "raw", "dataset": EVIL, "small_files": 1, "data_files": 2}],
            "small_file_bytes": 1024, "idle_resources": [{"kind": "emr", "id": EVIL, "reason": EVIL,
                                                          "monthly_cost": 1.0, "actionable": False}]}


def test_cost_report_escapes_and_keeps_its_figures() -> None:
    page = render_cost_html(cost_doc())
    assert_escaped(page, times=8)
    assert "<svg" in page and 'aria-label="monthly cost by dataset"' in page
    assert "Top growth since None" in page and "no previous report" in page and "(dry run)" in page
    assert "4.0 KiB" in page and "0.5000 " + ESCAPED + "/month" in page


def test_drift_shadow_and_training_pages_escape() -> None:
    drift = {"model": EVIL, "version": "2", "dt": "2026-11-05", "reference": EVIL, "evidently": {},
             "drift": {"verdict": EVIL, "drift_detected": True, "share_drifted": 0.1, "n_features": 10,
                       "drifted_features": [EVIL], "critical_drifted": [EVIL], "reference_rows": 5, "current_rows": 6,
                       "thresholds": {}, "features": [{"name": EVIL, "drifted": True, "psi": 0.3, "ks": 0.1,
                                                       "reasons": [EVIL]}]},
             "performance": {"day": EVIL}, "ingestion": {"dataset": EVIL}}
    assert_escaped(render_drift_html(drift), times=6)
    model = {"version": EVIL, "threshold": 0.4, "precision": None}
    shadow = {"model": EVIL, "dt": "2026-11-05", "status": "ok", "champion": model, "challenger": model,
              "champion_version": EVIL, "challenger_version": "3", "events": 10, "agreement_rate": 0.9,
              "decisions_changed": 1, "newly_flagged": 1, "no_longer_flagged": 0, "score_pearson": 0.9,
              "score_spearman": None, "labelled": 4, "labelled_positives": 1, "label_days_read": [EVIL],
              "run_id": EVIL, "report_json": EVIL}
    page = render_shadow_html(shadow)
    assert_escaped(page, times=6)
    assert "<th>challenger (shadow)</th>" in page and "n/a" in page
    training = {"model": EVIL, "version": "1", "champion_version": None, "plan": {EVIL: EVIL}, "training_set": {},
                "vs_champion": {"champion": None},
                "holdout": {"pr_auc": 0.3, "brier": 0.02, "reliability": [{"mean_predicted": 0.5, "observed_rate": 0.4}]},
                "training": {"history": [0.1, 0.2], "resumed_from": 0, "rounds": 2, "metric": EVIL}}
    page = render_training_html(training)
    assert_escaped(page, times=5)
    assert page.count("<svg") == 2 and "(version None)" in page and "<polyline" in page


def test_model_card_template_escapes() -> None:
    page = render("model_card.html.j2", title=EVIL, description=EVIL, sections=[(EVIL, '{"owner": "<a>"}')])
    assert_escaped(page, times=4)
    assert "<pre>{&quot;owner&quot;: &quot;&lt;a&gt;&quot;}</pre>" in page
