"""Scenarios: what happens to the synthetic world on which days, as data (``scenarios/<name>.yaml``).

A scenario schedules **episodes** by day offset from the world's first day (day 0), so one file fits any
start date::

    scenario: half_year
    description: ...
    episodes:
      - {name: pricier_baskets, kind: drift, from_day: 40, to_day: 46, amount_scale: 1.3}
      - {name: crypto_arrives, kind: drift, from_day: 90, to_day: 179, new_category_share: 0.05}
      - {name: acquirer_b_down, kind: outage, from_day: 70, to_day: 70, dataset: transactions, share: 1.0}

Episode kinds and their settings:

* ``drift`` — the payments themselves change: ``amount_scale`` (amounts times this), ``new_category_share``
  (this share of payments at merchants of a new category), ``region_share`` (``{region: PL, share: 0.2}``:
  this share of payments made in that region), ``ecom_share`` (the e-commerce share of the channel mix);
* ``outage`` — a source delivers ``share`` (1: nothing) less of its files for the day (``dataset``:
  ``transactions``); the events exist, the drop does not;
* ``label_backlog`` — labels of events first delivered in the episode arrive ``extra_delay_days`` later;
* ``biased_labels`` — the label source reports ``share`` of the legitimate payments of customers whose
  protected ``attribute`` (``gender``, ``age_band`` or ``region``) is ``group`` as fraud (a biased review
  team). A model trained on those labels learns a proxy of the group (a customer's payments are mostly in
  the home region's currency) and flags the group more often: what the bias audit and the gate must catch.

A scenario may also declare how the ordinary world moves (``world:``, every key optional; without it the world
is flat: the same volume every day, labels within 1..5 days, none corrected, nobody leaves)::

    world:
      weekly: [1.0, 0.97, 0.98, 1.02, 1.12, 1.18, 0.73]   # volume by weekday, Monday first (their mean is kept)
      month_start: {days: 3, boost: 0.10}                 # +10 % volume on the first 3 days of each month (paydays)
      growth_per_30_days: 0.03                             # volume grows 3 % every 30 days (new customers)
      churn_per_30_days: 0.02                              # 2 % of the customers stop paying every 30 days
      label_delay_tail: {share: 0.15, max_days: 35}        # 15 % of labels arrive after 6..35 days, not 1..5
      label_corrections: {share: 0.10, max_days: 30}       # 10 % of frauds first reported legitimate, corrected
                                                           #   by a second report 3..30 days later

The generator writes every episode, with its days and the model-input columns it moves, and the world's
dynamics to ``_meta/generator/scenario.json``: the truth that monitors and gates are scored against.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlscale.config_schema import StrictModel, validated
from mlscale.errors import NotRetryable
from mlscale.layout import config_dir
from mlscale.synthetic.entities import AGE_BANDS, GENDERS, REGIONS

KINDS = ("drift", "outage", "label_backlog", "biased_labels")
#: the protected attributes of the world's customers a biased_labels episode can target, with their values
GROUPS = {"gender": GENDERS, "age_band": AGE_BANDS, "region": REGIONS}
DRIFT_SETTINGS = ("amount_scale", "new_category_share", "region_share", "ecom_share")
# the model-input columns each drift setting moves directly (derived features follow a day later)
MOVES = {"amount_scale": ("amount", "amount_log", "amount_vs_customer_mean", "amount_vs_category_p95"),
         "new_category_share": ("merchant_category",), "region_share": ("region", "currency"),
         "ecom_share": ("channel_ecom", "channel_pos", "channel_contactless", "channel_atm")}


class ScenarioError(ValueError, NotRetryable):
    """A scenario file is invalid; the message names the file, the episode and the key."""


# The shape of a scenario file: its keys, nesting and value types. _episode then checks the values with messages
# that say what to change (``Any``: a value only it can judge).
class RegionShareDoc(StrictModel):
    region: str
    share: float


class EpisodeDoc(StrictModel):
    name: Any = None
    kind: str | None = None
    from_day: int | None = None
    to_day: int | None = None
    dataset: str | None = None
    share: float | None = None
    extra_delay_days: float | None = None
    attribute: str | None = None
    group: str | None = None
    amount_scale: float | None = None          # the drift settings (DRIFT_SETTINGS)
    new_category_share: float | None = None
    region_share: RegionShareDoc | None = None
    ecom_share: float | None = None


class MonthStartDoc(StrictModel):
    days: int
    boost: float


class DelayDoc(StrictModel):
    share: float
    max_days: int


class WorldDoc(StrictModel):
    weekly: list[float] | None = None
    month_start: MonthStartDoc | None = None
    growth_per_30_days: float | None = None
    churn_per_30_days: float | None = None
    label_delay_tail: DelayDoc | None = None
    label_corrections: DelayDoc | None = None


class ScenarioDoc(StrictModel):
    scenario: Any = None
    description: str | None = None
    world: WorldDoc | None = None
    episodes: list[EpisodeDoc] | None = None


LABEL_DELAY_DAYS = (1, 5)          # an ordinary label arrives this many days after its event's delivery
CORRECTION_MIN_DAYS = 3            # a correction comes at least this long after the first report


@dataclass(frozen=True)
class WorldDynamics:
    """How the ordinary world moves from day to day (hashable: part of the day cache's key). Default: flat."""

    weekly: tuple[float, ...] = (1.0,) * 7
    month_start_days: int = 0
    month_start_boost: float = 0.0
    growth_per_30_days: float = 0.0
    churn_per_30_days: float = 0.0
    delay_tail_share: float = 0.0
    delay_tail_max_days: int = LABEL_DELAY_DAYS[1]
    correction_share: float = 0.0
    correction_max_days: int = 0

    def volume(self, day: dt.date, index: int, rows_per_day: int) -> int:
        """The payments delivered on ``day`` (day ``index`` of the world) for a base of ``rows_per_day``."""
        weekly = self.weekly[day.weekday()] / (sum(self.weekly) / 7)
        month = 1.0 + (self.month_start_boost if day.day <= self.month_start_days else 0.0)
        growth = (1.0 + self.growth_per_30_days) ** (index / 30)
        return max(1, round(rows_per_day * weekly * month * growth))

    def max_label_days(self) -> int:
        """The longest a label (first report or correction) can take after its event's delivery."""
        return max(LABEL_DELAY_DAYS[1], self.delay_tail_max_days,
                   self.delay_tail_max_days + self.correction_max_days if self.correction_share else 0)


@dataclass(frozen=True)
class Effects:
    """What the payments of one day look like, against an ordinary day (hashable: it keys the day cache)."""

    amount_scale: float = 1.0
    new_category_share: float = 0.0
    region: str = ""
    region_share: float = 0.0
    ecom_share: float | None = None

    @property
    def ordinary(self) -> bool:
        return self == Effects()


@dataclass(frozen=True)
class Episode:
    name: str
    kind: str
    from_day: int
    to_day: int
    effects: Effects = field(default_factory=Effects)
    dataset: str = "transactions"
    share: float = 1.0
    extra_delay_days: int = 0
    attribute: str = ""          # biased_labels: the protected attribute and the group whose labels are biased
    group: str = ""

    def active(self, index: int) -> bool:
        return self.from_day <= index <= self.to_day

    def columns(self) -> list[str]:
        """The event columns a drift episode moves, and the model inputs computed from them directly."""
        if self.kind != "drift":
            return []
        return [c for key, cols in MOVES.items() for c in cols
                if getattr(self.effects, key) != getattr(Effects(), key)]

    def as_dict(self, start: dt.date | None = None) -> dict[str, Any]:
        out = {**asdict(self), "columns": self.columns()}
        if start is not None:
            out["first"] = (start + dt.timedelta(days=self.from_day)).isoformat()
            out["last"] = (start + dt.timedelta(days=self.to_day)).isoformat()
        return out


@dataclass(frozen=True)
class Scenario:
    name: str
    episodes: tuple[Episode, ...] = ()
    description: str = ""
    world: WorldDynamics = field(default_factory=WorldDynamics)

    def effects(self, index: int) -> Effects:
        """The payments' effects on day ``index`` (active drift episodes combined)."""
        active = [e.effects for e in self.episodes if e.kind == "drift" and e.active(index)]
        if not active:
            return Effects()
        scale = 1.0
        for effects in active:
            scale *= effects.amount_scale
        region = next((e for e in active if e.region), Effects())
        ecom = next((e.ecom_share for e in active if e.ecom_share is not None), None)
        return Effects(amount_scale=scale, new_category_share=max(e.new_category_share for e in active),
                       region=region.region, region_share=region.region_share, ecom_share=ecom)

    def outage_share(self, index: int, dataset: str) -> float:
        """The share of ``dataset``'s files missing on day ``index`` (0: a full drop)."""
        return max((e.share for e in self.episodes if e.kind == "outage" and e.dataset == dataset
                    and e.active(index)), default=0.0)

    def extra_label_delay(self, index: int) -> int:
        """Extra days before the labels of events first delivered on day ``index`` arrive."""
        return max((e.extra_delay_days for e in self.episodes if e.kind == "label_backlog" and e.active(index)),
                   default=0)

    def biased_labels(self, index: int) -> Episode | None:
        """The biased-labels episode active for events first delivered on day ``index``, if any."""
        return next((e for e in self.episodes if e.kind == "biased_labels" and e.active(index)), None)

    def max_extra_label_delay(self) -> int:
        return max((e.extra_delay_days for e in self.episodes if e.kind == "label_backlog"), default=0)

    def as_dict(self, start: dt.date | None = None) -> dict[str, Any]:
        return {"scenario": self.name, "description": self.description, "world": asdict(self.world),
                "episodes": [e.as_dict(start) for e in self.episodes]}

    @classmethod
    def drift_from(cls, index: int | None) -> Scenario:
        """The single episode of the generator's ``drift_from`` option: pricier baskets, a new merchant category and
        more payments in Poland, from that day on."""
        if index is None:
            return cls("ordinary")
        return cls("drift_from", (Episode("injected_drift", "drift", index, 10**6,
                                          Effects(amount_scale=1.3, new_category_share=0.05, region="PL",
                                                  region_share=0.2)),))


def scenario_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    return path if path.suffix in (".yaml", ".yml") else config_dir("scenarios") / f"{name_or_path}.yaml"


def _number(where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ScenarioError(f"{where} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _episode(where: str, doc: Any) -> Episode:
    kind = doc.get("kind")
    if kind not in KINDS:
        raise ScenarioError(f"{where}.kind must be one of {list(KINDS)}, got {kind!r}")
    first, last = doc.get("from_day"), doc.get("to_day", doc.get("from_day"))
    if not isinstance(first, int) or not isinstance(last, int) or first < 0 or last < first:
        raise ScenarioError(f"{where}: from_day and to_day must be day offsets with 0 <= from_day <= to_day")
    region = doc.get("region_share") or {}
    effects = Effects(
        amount_scale=_number(f"{where}.amount_scale", doc.get("amount_scale", 1.0), 0.05, 20.0),
        new_category_share=_number(f"{where}.new_category_share", doc.get("new_category_share", 0.0), 0.0, 1.0),
        region=str(region.get("region", "")),
        region_share=_number(f"{where}.region_share.share", region.get("share", 0.0), 0.0, 1.0),
        ecom_share=None if doc.get("ecom_share") is None else _number(f"{where}.ecom_share", doc["ecom_share"], 0, 1))
    if kind == "drift" and effects.ordinary:
        raise ScenarioError(f"{where}: a drift episode needs at least one of {list(DRIFT_SETTINGS)}")
    attribute, group = str(doc.get("attribute") or ""), str(doc.get("group") or "")
    if kind == "biased_labels" and (attribute not in GROUPS or group not in GROUPS[attribute]):
        raise ScenarioError(f"{where}: a biased_labels episode needs attribute (one of {sorted(GROUPS)}) and a group "
                            f"among its values, got attribute {attribute!r}, group {group!r}")
    if kind == "biased_labels" and "share" not in doc:
        raise ScenarioError(f"{where}: a biased_labels episode needs share: the share of the group's legitimate "
                            "payments reported as fraud")
    return Episode(name=str(doc.get("name") or f"{kind}_{first}"), kind=kind, from_day=first, to_day=last,
                   effects=effects, dataset=str(doc.get("dataset", "transactions")),
                   share=_number(f"{where}.share", doc.get("share", 1.0), 0.0, 1.0),
                   extra_delay_days=int(_number(f"{where}.extra_delay_days", doc.get("extra_delay_days", 0), 0, 60)),
                   attribute=attribute, group=group)


def _world(where: str, doc: Any) -> WorldDynamics:
    """The ``world:`` section: how the ordinary world moves (see the module docstring)."""
    doc = doc or {}
    weekly = doc.get("weekly") or [1.0] * 7
    if len(weekly) != 7:
        raise ScenarioError(f"{where}.weekly needs 7 numbers (Monday first), got {len(weekly)}")
    weekly = tuple(_number(f"{where}.weekly[{i}]", w, 0.05, 10.0) for i, w in enumerate(weekly))
    month, tail, fixes = doc.get("month_start") or {}, doc.get("label_delay_tail") or {}, \
        doc.get("label_corrections") or {}
    tail_max = int(_number(f"{where}.label_delay_tail.max_days", tail.get("max_days", LABEL_DELAY_DAYS[1]),
                           LABEL_DELAY_DAYS[1], 120))
    if tail.get("share") and tail_max <= LABEL_DELAY_DAYS[1]:
        raise ScenarioError(f"{where}.label_delay_tail.max_days must exceed {LABEL_DELAY_DAYS[1]} (the ordinary "
                            "delays): the tail is what arrives later")
    fix_max = int(_number(f"{where}.label_corrections.max_days", fixes.get("max_days", 0), 0, 120))
    if fixes.get("share") and fix_max < CORRECTION_MIN_DAYS:
        raise ScenarioError(f"{where}.label_corrections.max_days must be at least {CORRECTION_MIN_DAYS}")
    return WorldDynamics(
        weekly=weekly, month_start_days=int(_number(f"{where}.month_start.days", month.get("days", 0), 0, 28)),
        month_start_boost=_number(f"{where}.month_start.boost", month.get("boost", 0.0), -0.9, 5.0),
        growth_per_30_days=_number(f"{where}.growth_per_30_days", doc.get("growth_per_30_days", 0.0), -0.5, 2.0),
        churn_per_30_days=_number(f"{where}.churn_per_30_days", doc.get("churn_per_30_days", 0.0), 0.0, 0.5),
        delay_tail_share=_number(f"{where}.label_delay_tail.share", tail.get("share", 0.0), 0.0, 1.0),
        delay_tail_max_days=tail_max,
        correction_share=_number(f"{where}.label_corrections.share", fixes.get("share", 0.0), 0.0, 1.0),
        correction_max_days=fix_max)


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load and validate a scenario by name (``scenarios/<name>.yaml`` of the configuration) or path."""
    path = scenario_path(name_or_path)
    if not path.exists():
        available = ", ".join(sorted(p.stem for p in config_dir("scenarios").glob("*.yaml"))) or "none"
        raise ScenarioError(f"no scenario {str(name_or_path)!r} ({path}); available: {available}")
    doc = yaml.safe_load(path.read_text()) or {}
    validated(ScenarioDoc, doc, str(path), ScenarioError)
    episodes = doc.get("episodes") or []
    return Scenario(name=str(doc.get("scenario") or path.stem), description=str(doc.get("description") or ""),
                    episodes=tuple(_episode(f"{path}: episodes[{i}]", e) for i, e in enumerate(episodes)),
                    world=_world(f"{path}: world", doc.get("world")))
