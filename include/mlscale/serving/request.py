"""What a scoring request must hold: the model's event columns, typed and checked as the events contract says.

The fields are those batch scoring reads from the raw events (:meth:`ModelSpec.event_columns`), with the
types, required flags, bounds and allowed values of the events dataset's contract, so a request is held to the
same rules as a row of a drop. A request with problems is refused as a whole, every problem named by its
event and field (HTTP 422); nothing is scored from a half-valid batch.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from mlscale.contracts import Column, load_contract
from mlscale.training.spec import ModelSpec

MAX_EVENTS = 10_000


@dataclass(frozen=True)
class Problem:
    index: int          #: the event's position in the request
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": ["events", self.index, self.field], "msg": self.message}


class RequestInvalid(ValueError):
    """The request cannot be scored; :attr:`problems` names every bad field."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"events[{first.index}].{first.field}: {first.message}{more}")


@dataclass(frozen=True)
class EventSchema:
    """The checked fields of a model's events and their Arrow schema (the raw zone's types)."""

    key: str
    event_time: str
    columns: tuple[Column, ...]
    arrow: pa.Schema

    @classmethod
    def for_spec(cls, spec: ModelSpec) -> EventSchema:
        from mlscale.ingest.validate import TYPES

        contract = load_contract(spec.events_dataset)
        names = spec.event_columns()
        columns = tuple(contract.column(name) for name in names)
        return cls(key=spec.event_key, event_time=spec.event_time, columns=columns,
                   arrow=pa.schema([pa.field(c.name, TYPES[c.type]) for c in columns]))

    def parse(self, events: Any) -> list[dict[str, Any]]:
        """Typed event rows from a request body (one event object, or ``{"events": [...]}``)."""
        rows = events.get("events") if isinstance(events, dict) and "events" in events else events
        if isinstance(rows, dict):
            rows = [rows]
        if not isinstance(rows, list) or not rows:
            raise RequestInvalid([Problem(0, "events", "expected one event object or a non-empty list of events")])
        if len(rows) > MAX_EVENTS:
            raise RequestInvalid([Problem(MAX_EVENTS, "events", f"at most {MAX_EVENTS} events per request")])
        problems: list[Problem] = []
        parsed = []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(Problem(i, "event", "expected an object of fields"))
                continue
            typed = {}
            for column in self.columns:
                value, message = _typed(column, row.get(column.name))
                if message:
                    problems.append(Problem(i, column.name, message))
                typed[column.name] = value
            parsed.append(typed)
        if problems:
            raise RequestInvalid(problems)
        return parsed


def _typed(column: Column, value: Any) -> tuple[Any, str]:
    """(the typed value, '' or what is wrong with it)."""
    if value is None or value == "":
        return None, "is required" if column.required else ""
    kind = column.type
    if kind == "string":
        if not isinstance(value, str | int) or isinstance(value, bool):
            return None, f"expected a string, got {type(value).__name__}"
        text = str(value)
        if column.enum:
            allowed = {v.lower() if column.case == "insensitive" else v: v for v in column.enum}
            found = allowed.get(text.lower() if column.case == "insensitive" else text)
            if found is None:
                return None, f"{text!r} is not one of {', '.join(column.enum)}"
            text = found
        return text, ""
    if kind == "timestamp":
        return _timestamp(value)
    if kind in ("decimal", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None, f"expected a number, got {type(value).__name__}"
        try:
            number = float(value) if kind == "decimal" else int(value)
        except ValueError:
            return None, f"{value!r} is not a number"
        if isinstance(number, float) and not math.isfinite(number):
            return None, f"{value!r} is not a finite number"
        if column.min is not None and number < column.min:
            return None, f"{number} is below the minimum {column.min}"
        if column.max is not None and number > column.max:
            return None, f"{number} is above the maximum {column.max}"
        return number, ""
    if kind == "boolean":
        return (value, "") if isinstance(value, bool) else (None, f"expected true or false, got {value!r}")
    return value, ""


def _timestamp(value: Any) -> tuple[dt.datetime | None, str]:
    """ISO 8601 (no offset: UTC) or epoch milliseconds, as an aware UTC datetime."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return dt.datetime.fromtimestamp(value / 1000.0, tz=dt.UTC), ""
        if isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)), ""
    except (ValueError, OverflowError, OSError):
        pass
    return None, f"{value!r} is not an ISO 8601 time or epoch milliseconds"
