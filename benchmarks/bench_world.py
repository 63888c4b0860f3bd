"""A scenario world replayed day by day, its drift verdicts and models scored against the generator's truth.

    python benchmarks/bench_world.py                         # 180 days x 20,000 payments, scenario half_year
    python benchmarks/bench_world.py --days 100 --rows-per-day 4000   # a shorter replay (records its size)
    python benchmarks/bench_world.py --smoke                 # 8 tiny days, records nothing (CI)

The world is generated from ``include/scenarios/<scenario>.yaml`` and replayed with :func:`mlscale.simulation.simulate`
(the functions the DAGs call) on a LocalCluster. Then, from the lake alone:

* ``world_drift_false_alarm_days`` — days with a drift alarm that no episode explains. An alarm is explained when
  one of its drifted columns can carry a drift or outage episode that day: the day is within the episode, or
  within the column's window after it (a 30-day mean still holds a week of pricier baskets for 30 days; a 1-day
  count the day after a half-missing drop is truly lower);
* ``world_drift_detection_delay_days_max`` — over the drift episodes monitored (a model existed), the worst
  delay from the episode's first day to the first alarm within it (a missed episode counts its length);
* ``model_pr_auc_vs_ceiling`` — the serving version's (the champion's, else the newest) holdout PR-AUC over the
  ceiling: the PR-AUC of the generator's true fraud probabilities on the same holdout rows (goal >= 0.8);
* ``world_bias_episode_caught`` — 1 when a version trained on the labels of a ``biased_labels`` episode was refused
  by the gate for bias, else 0; the versions trained before the episode (fair) are listed with their verdicts;
* ``world_180d_wall_s`` — the replay's wall time (recorded only for a 180-day run of 20,000 payments a day).

    python benchmarks/bench_world.py --bias-episode          # the bias episode alone, in a 58-day world

``--bias-episode`` replays a shorter world that holds only the scenario's ``biased_labels`` episode (its group and
share, from day 32 for its length) and retrains on the 1st and 28th of February: a fair version before the
episode and one trained on its labels. ``demo_wall_s`` is measured by ``make demo``, not here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

COMMAND = "python benchmarks/bench_world.py"


def replay(root: str, *, days: int, rows: int, scenario: Any, min_train_days: int, cron: str,
           max_rounds: int | None) -> float:
    """Generate and replay the world of ``scenario`` (a name or a Scenario); returns the wall time."""
    from distributed import Client, LocalCluster
    from mlscale.lake import Lake
    from mlscale.layout import declared
    from mlscale.simulation import SimulationSettings, simulate
    from mlscale.synthetic import generate_world
    from mlscale.synthetic.scenario import load_scenario

    lake = Lake(root)
    start = dt.date(2026, 1, 1)
    started = time.perf_counter()
    generate_world(lake.write_bytes, start=start, days=days, rows_per_day=rows, seed=11,
                   scenario=load_scenario(scenario) if isinstance(scenario, str) else scenario)
    settings = SimulationSettings(models=declared("models"), pii_key="bench-world-key", train_cron=cron,
                                  min_train_days=min_train_days, max_rounds=max_rounds)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        simulate(lake=lake, client=client, first=start.isoformat(),
                 last=(start + dt.timedelta(days=days - 1)).isoformat(), settings=settings,
                 report=lambda o: print(o.line(), flush=True))
    return time.perf_counter() - started


def drift_scores(lake: Any, model: str) -> dict[str, Any]:
    """False alarm days and detection delays of ``model``'s drift verdicts against the scenario's episodes, as the
    timeline report explains them (:mod:`mlscale.reports.timeline`); a missed episode counts its length."""
    from mlscale.reports.health_sources import SourceReader
    from mlscale.reports.timeline import (
        drift_verdicts,
        explain_alarms,
        lake_days,
        scenario_episodes,
        score_episodes,
    )

    src = SourceReader(lake)
    verdicts = {day: {model: by_model[model]} for day, by_model in drift_verdicts(src, tuple(lake_days(lake))).items()
                if model in by_model}
    episodes = scenario_episodes(src)
    alarms = explain_alarms(verdicts, episodes)
    delays = {e["name"]: e["delay_days"] if e["delay_days"] is not None
              else (dt.date.fromisoformat(e["last"]) - dt.date.fromisoformat(e["first"])).days + 1
              for e in score_episodes(episodes, verdicts) if e["kind"] == "drift" and e["monitored_days"]}
    return {"monitored_days": len(verdicts), "alarm_days": len(alarms),
            "false_alarm_days": [a["day"] for a in alarms if not a["explained_by"]], "delays": delays}


def bias_episode_scenario(name: str, first_day: int = 32) -> Any:
    """The ``biased_labels`` episode of scenario ``name`` alone, moved to start on ``first_day``."""
    import dataclasses

    from mlscale.synthetic.scenario import Scenario, load_scenario

    episode = next(e for e in load_scenario(name).episodes if e.kind == "biased_labels")
    moved = dataclasses.replace(episode, from_day=first_day, to_day=first_day + episode.to_day - episode.from_day)
    return Scenario(f"{name}_bias_only", (moved,))


def bias_scores(lake: Any, model: str) -> dict[str, Any] | None:
    """Per version: whether its training history holds a biased-labels episode, its audit verdict and the gate's
    decisions; caught = a version trained on the episode's labels was refused for bias."""
    from mlscale.reports.health_models import bias_reports, gate_decisions
    from mlscale.reports.health_sources import SourceReader
    from mlscale.reports.timeline import scenario_episodes

    src = SourceReader(lake)
    episodes = [e for e in scenario_episodes(src) if e["kind"] == "biased_labels"]
    if not episodes:
        return None
    first = min(dt.date.fromisoformat(e["first"]) for e in episodes)
    decisions: dict[str, list[dict[str, Any]]] = {}
    for decision in gate_decisions(src, "9999-12-31"):
        if decision["model"] == model:
            decisions.setdefault(decision["version"], []).append(decision)
    audits = bias_reports(src)
    versions = []
    for stored in lake.list_files(f"models/{model}/"):
        if not stored.key.endswith("/model.json"):
            continue
        doc = lake.read_json(stored.key)
        version = stored.key.split("/")[2]
        first_event, last_event = (dt.date.fromisoformat(d) for d in
                                   doc["tags"]["event_days"].split(".."))
        bias = audits.get((model, version), {})
        gate = sorted(decisions.get(version, []), key=lambda d: d.get("decided_at") or "")
        last = gate[-1] if gate else {}  # a version may be gated again (a rerun): its latest decision counts
        versions.append({"version": version, "event_days": f"{first_event}..{last_event}",
                         "exposed": last_event >= first, "bias_verdict": bias.get("verdict", "not audited"),
                         "bias_reasons": bias.get("reasons", [])[:3],
                         "refused_for_bias": any(r.startswith("bias") for r in last.get("reasons", [])),
                         "decisions": [d["decision"] for d in gate]})
    versions.sort(key=lambda v: int(v["version"]))
    exposed = [v for v in versions if v["exposed"]]
    fair = [v for v in versions if not v["exposed"]]
    return {"caught": int(any(v["refused_for_bias"] for v in exposed)), "versions": versions,
            "exposed_refused": sum(v["refused_for_bias"] for v in exposed), "exposed": len(exposed),
            "fair_refused": sum(v["refused_for_bias"] for v in fair), "fair": len(fair)}


def ceiling_ratio(lake: Any, model: str) -> dict[str, Any] | None:
    """The serving version's (the champion's, else the newest version's) holdout PR-AUC over the PR-AUC of the
    true probabilities on the same rows (:func:`mlscale.training.ceiling.holdout_ceiling`, as training reports it);
    None without a version or without truth."""
    from mlscale.lake import PartitionRef
    from mlscale.training import StoredModel, load_model_spec, read_split, registry
    from mlscale.training.ceiling import holdout_ceiling
    from mlscale.training.dataset import LABEL

    versions = sorted({f.key.split("/")[2] for f in lake.list_files(f"models/{model}/")
                       if f.key.endswith("/model.json")}, key=int)
    if not versions:
        return None
    champion = registry.alias_version(registry.client_for(registry.RegistryConfig.for_lake(lake)), model,
                                      registry.CHAMPION)
    serving = champion or versions[-1]
    stored, spec = StoredModel.load(lake, model, serving), load_model_spec(model)
    zone, dataset, day = stored.doc["training_set"]["partition"].split("/")
    holdout = read_split(lake, PartitionRef.of(zone, dataset, day.removeprefix("dt=")), "holdout").to_pandas()
    found = holdout_ceiling(lake, holdout[spec.event_key], holdout[spec.event_time], holdout[LABEL],
                            stored.predict(holdout))
    if not found["available"]:
        return None
    return {"version": serving, "rows": found["rows"], "holdout_rows": len(holdout), "positives": found["positives"],
            "pr_auc": found["pr_auc"], "ceiling": found["ceiling"], "ratio": found["ratio"],
            "trained_for": stored.doc.get("registered_day"), "ratio_interval": found["ratio_interval"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--rows-per-day", type=int, default=20_000)
    parser.add_argument("--scenario", default="half_year")
    parser.add_argument("--min-train-days", type=int, default=28)
    parser.add_argument("--lake", default="", help="replay into this folder (default: a temporary one)")
    parser.add_argument("--smoke", action="store_true", help="8 tiny days with a daily retrain; records nothing")
    parser.add_argument("--score-only", action="store_true",
                        help="score the replay already in --lake (its wall time is then not measured)")
    parser.add_argument("--bias-episode", action="store_true",
                        help="only the scenario's biased_labels episode, in a 58-day world retrained on Feb 1 and 28")
    args = parser.parse_args()
    if args.smoke:
        args.days, args.rows_per_day, args.min_train_days = 8, 1000, 5
    cron = "0 3 * * *" if args.smoke else "0 3 * * 0"
    scenario: Any = args.scenario
    if args.bias_episode:
        args.days, cron, scenario = 58, "0 3 1,28 2 *", bias_episode_scenario(args.scenario)
    from mlscale.lake import Lake

    if args.score_only and not args.lake:
        parser.error("--score-only needs --lake")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.lake or f"{tmp}/lake"
        wall = 0.0 if args.score_only else replay(root, days=args.days, rows=args.rows_per_day, scenario=scenario,
                                                  min_train_days=args.min_train_days, cron=cron,
                                                  max_rounds=30 if args.smoke else None)
        lake = Lake(root)
        drift = drift_scores(lake, "fraud_detector")
        model = ceiling_ratio(lake, "fraud_detector")
        bias = bias_scores(lake, "fraud_detector")
    delay = max(drift["delays"].values()) if drift["delays"] else None
    print(f"replayed {args.days} days x {args.rows_per_day:,} payments in {wall:.0f} s")
    print(f"drift: {drift['monitored_days']} days monitored, {drift['alarm_days']} alarm days, false alarms on "
          f"{len(drift['false_alarm_days'])} days {drift['false_alarm_days']}; detection delay per episode "
          f"{drift['delays']}")
    if model:
        print(f"model v{model['version']} (serving): holdout PR-AUC {model['pr_auc']:.3f} vs ceiling {model['ceiling']:.3f} "
              f"({model['rows']:,} rows, {model['positives']} positives): ratio {model['ratio']:.2f}")
    else:
        print("no model was trained: no PR-AUC ratio")
    if bias:
        for v in bias["versions"]:
            print(f"  v{v['version']} events {v['event_days']} {'trained on the biased labels' if v['exposed'] else 'fair'}:"
                  f" audit {v['bias_verdict']} {v['bias_reasons']}; gate {v['decisions']}"
                  f"{' (refused for bias)' if v['refused_for_bias'] else ''}")
        print(f"bias episode caught: {bias['caught']} ({bias['exposed_refused']}/{bias['exposed']} exposed versions "
              f"refused for bias, {bias['fair_refused']}/{bias['fair']} fair ones)")
    if args.smoke:
        return
    from results import record

    size = f"{args.days} days x {args.rows_per_day:,} payments, scenario {getattr(scenario, 'name', scenario)}"
    command = f"{COMMAND} {'--score-only --lake DIR ' if args.score_only else ''}--days {args.days} " \
              f"--rows-per-day {args.rows_per_day}"
    if bias and bias["exposed"]:  # no version trained on the biased labels yet: the episode was not reached
        record("world_bias_episode_caught", bias["caught"], unit="0/1", goal="1", baseline="scenario truth",
               command=f"{COMMAND} --bias-episode --rows-per-day {args.rows_per_day}" if args.bias_episode else command,
               notes=f"{size}; exposed versions refused for bias {bias['exposed_refused']}/{bias['exposed']}, "
                     f"fair versions refused for bias {bias['fair_refused']}/{bias['fair']}")
    if args.bias_episode:  # its drift figures cover no drift episode; its serving model is a fair one
        if model:
            record("model_pr_auc_vs_ceiling", model["ratio"], unit="ratio", goal=">= 0.8",
                   baseline="PR-AUC of the true probabilities on the same holdout rows",
                   command=f"{COMMAND} --bias-episode --rows-per-day {args.rows_per_day}", notes=_model_note(size, model))
        return
    record("world_drift_false_alarm_days", len(drift["false_alarm_days"]), unit="days", goal="<= 2",
           baseline="scenario truth", command=command, notes=f"{size}; {drift['monitored_days']} days monitored")
    if delay is not None:
        record("world_drift_detection_delay_days_max", delay, unit="days", goal="<= 1", baseline="scenario truth",
               command=command, notes=f"{size}; per episode {json.dumps(drift['delays'])}")
    if model:
        record("model_pr_auc_vs_ceiling", model["ratio"], unit="ratio", goal=">= 0.8",
               baseline="PR-AUC of the true probabilities on the same holdout rows", command=command,
               notes=_model_note(size, model))
    if args.days == 180 and args.rows_per_day == 20_000 and not args.score_only:
        record("world_180d_wall_s", wall, unit="s", goal="<= 1800", baseline="-", command=command, notes=size)


def _model_note(size: str, model: dict[str, Any]) -> str:
    interval = model["ratio_interval"]
    return (f"{size}; serving v{model['version']} (trained for {model['trained_for']}) {model['pr_auc']:.3f} / "
            f"{model['ceiling']:.3f}, {model['positives']} positives"
            + (f", 95% interval of the ratio {interval[0]:.2f}..{interval[1]:.2f}" if interval else ""))


if __name__ == "__main__":
    main()
