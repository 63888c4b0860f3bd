"""How good a model could be: its holdout PR-AUC against the PR-AUC of the world's true probabilities.

A synthetic world knows each event's true label probability (``mlscale generate`` writes it per delivery
day to ``_meta/generator/truth/``). No model can rank the holdout better than those probabilities do, so
their PR-AUC on the same rows is the **ceiling**, and ``pr_auc / ceiling`` says how much of what is there
the model learned. Intervals come from one paired bootstrap: every resample of the rows scores the model and
the truth together, so the ratio's interval accounts for both. A lake without truth (real data) gets
``{"available": false, "reason": ...}`` and nothing else.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlscale.bootstrap import paired_average_precision_bootstrap, percentile_interval, seeded_rng
from mlscale.lake import Lake

logger = logging.getLogger(__name__)

RESAMPLES = 200
LEVEL = 0.95
TRUTH_COLUMNS = ("event_id", "p_fraud")  # the generator's truth: event key and true probability


@dataclass(frozen=True)
class Ceiling:
    rows: int                 # holdout rows with a known true probability
    positives: int
    pr_auc: float
    ceiling: float
    ratio: float
    pr_auc_interval: tuple[float | None, float | None]
    ceiling_interval: tuple[float | None, float | None]
    ratio_interval: tuple[float | None, float | None]
    level: float = LEVEL
    resamples: int = RESAMPLES

    def as_dict(self) -> dict[str, Any]:
        return {"available": True, **asdict(self)}

    def describe(self) -> str:
        lo, hi = self.ratio_interval
        span = f" ({self.level:.0%} interval {lo:.2f}..{hi:.2f})" if lo is not None and hi is not None else ""
        return (f"holdout PR-AUC {self.pr_auc:.3f} vs ceiling {self.ceiling:.3f} (true probabilities, {self.rows} rows, "
                f"{self.positives} positive): ratio {self.ratio:.2f}{span}")


def truth_probabilities(lake: Lake, first_day: dt.date, last_day: dt.date) -> Any:
    """The generator's per-event truth (event_id, p_fraud) of events delivered from ``first_day`` to a few days
    after ``last_day`` (late events arrive later), or None when the lake holds no truth for those days."""
    import pandas as pd

    from mlscale.synthetic.generate import truth_key
    from mlscale.synthetic.world import LATENESS_DAYS

    days = [first_day + dt.timedelta(days=k) for k in range((last_day - first_day).days + LATENESS_DAYS + 1)]
    parts = [pd.read_parquet(io.BytesIO(lake.read_bytes(truth_key(d))), columns=list(TRUTH_COLUMNS))
             for d in days if lake.exists(truth_key(d))]
    return pd.concat(parts, ignore_index=True).drop_duplicates("event_id") if parts else None


def holdout_ceiling(lake: Lake, event_ids: Any, times: Any, label: Any, score: Any, *,
                    seed: int = 0) -> dict[str, Any]:
    """The ceiling of the holdout rows (``event_ids``, event ``times``, 0/1 ``label``, model ``score``)."""
    import pandas as pd

    if len(event_ids) == 0:
        return {"available": False, "reason": "the holdout is empty"}
    times = pd.to_datetime(times, utc=True)
    truth = truth_probabilities(lake, times.min().date(), times.max().date())
    if truth is None:
        return {"available": False, "reason": "no generator truth (_meta/generator/truth/) for the holdout's days: "
                                              "the ceiling is known for synthetic worlds only"}
    rows = pd.DataFrame({"event_id": np.asarray(event_ids).astype(str), "label": np.asarray(label, dtype=np.int8),
                         "score": np.asarray(score, dtype=np.float64)}).merge(truth, on="event_id", how="inner")
    y = rows["label"].to_numpy()
    if not 0 < y.sum() < len(y):
        return {"available": False, "reason": f"{len(rows)} holdout rows with truth hold one class only"}
    result = ceiling_of(y, rows["score"].to_numpy(), rows["p_fraud"].to_numpy(), seed=seed)
    logger.info("%s", result.describe())
    if len(rows) < len(event_ids):
        logger.info("ceiling: %d of %d holdout rows have a true probability", len(rows), len(event_ids))
    return result.as_dict()


def ceiling_of(y: np.ndarray, score: np.ndarray, truth: np.ndarray, *, seed: int = 0,
               resamples: int = RESAMPLES) -> Ceiling:
    """PR-AUC of ``score`` and of the true probabilities ``truth`` on labels ``y``, their ratio, and paired
    bootstrap intervals."""
    from sklearn.metrics import average_precision_score

    pr_auc, ceiling = float(average_precision_score(y, score)), float(average_precision_score(y, truth))
    draws = paired_average_precision_bootstrap(y, {"model": score, "truth": truth}, resamples,
                                               seeded_rng(seed, "ceiling"))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio_draws = draws["model"] / draws["truth"]
    return Ceiling(rows=len(y), positives=int(y.sum()), pr_auc=round(pr_auc, 6), ceiling=round(ceiling, 6),
                   ratio=round(pr_auc / ceiling, 6) if ceiling else float("nan"),
                   pr_auc_interval=_rounded(percentile_interval(draws["model"], LEVEL)),
                   ceiling_interval=_rounded(percentile_interval(draws["truth"], LEVEL)),
                   ratio_interval=_rounded(percentile_interval(ratio_draws, LEVEL)), resamples=resamples)


def _rounded(interval: tuple[float | None, float | None]) -> tuple[float | None, float | None]:
    return tuple(None if v is None else round(v, 6) for v in interval)  # type: ignore[return-value]
