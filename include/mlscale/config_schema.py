"""Strict shapes of the declarative YAML files (contracts, feature sets, model specs, policies, scenarios).

Each loader describes its document with :class:`StrictModel` subclasses and calls :func:`validated` before its
own checks, so a misspelt key is an error instead of a silently ignored setting. The error is the loader's own
exception class, and its message names the file, the dotted key path and, for an unknown key, the keys allowed
at that level::

    transactions.yaml: sources.acquirer_a.delimter: unknown key 'delimter' in sources.acquirer_a
    (allowed: decimal, delimiter, encoding, files, format, null_values, rename, thousands, timestamp)

Sections keyed by user names (columns, sources, features...) are ``dict[str, Model]``: any name, each value
checked.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound="StrictModel")

#: pydantic error types -> how the message reads after the key path
_PHRASES = {
    "model_type": "must be a mapping", "dict_type": "must be a mapping", "model_attributes_type": "must be a mapping",
    "list_type": "must be a list", "tuple_type": "must be a list", "string_type": "must be text",
    "bool_type": "must be true or false", "bool_parsing": "must be true or false",
    "int_type": "must be a whole number", "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number", "float_type": "must be a number", "float_parsing": "must be a number",
}


class StrictModel(BaseModel):
    """A level of a declarative document: only the declared keys are allowed (the base of every level)."""

    model_config = ConfigDict(extra="forbid")


def validated(model: type[M], doc: Any, where: str, error: type[Exception]) -> M:
    """``doc`` checked against ``model``; raise ``error`` naming ``where`` (the file) and every problem found."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(_describe(model, e) for e in exc.errors(include_url=False))
        raise error(f"{where}: {problems}") from None


def load_yaml_document(path: str | Path, model: type[M], error: type[Exception], what: str) -> M:
    """The YAML file ``path`` read and checked against ``model``; ``error`` (naming the file) when it is missing,
    is not YAML or does not fit. ``what`` names the document in the message of a missing file."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise error(f"{what} {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}") from exc
    return validated(model, raw, str(path), error)


def _describe(model: type[StrictModel], err: Any) -> str:
    loc = tuple(err["loc"])
    path, parent = _dotted(loc), _dotted(loc[:-1])
    level = f" in {parent}" if parent else ""
    if err["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(_allowed_keys(model, loc[:-1])))
        return f"{path}: unknown key {loc[-1]!r}{level} (allowed: {allowed})"
    if err["type"] == "missing":
        return f"{path}: missing required key {loc[-1]!r}{level}"
    phrase = _PHRASES.get(err["type"], err["msg"])
    got = repr(err.get("input"))
    return f"{path or 'the document'} {phrase}, got {got if len(got) <= 80 else got[:77] + '...'}"


def _dotted(loc: tuple[Any, ...]) -> str:
    """``('rules', 0, 'zone')`` -> ``rules[0].zone``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(model: type[StrictModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys of the model found at ``loc`` (following fields, mapping values and list items)."""
    node: Any = model
    for part in loc:
        node = _unwrap_optional(node)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = next(f for name, f in node.model_fields.items() if (f.alias or name) == part)
            node = field.annotation
        else:  # dict[str, X] keyed by a user name, or list[X] indexed
            node = get_args(node)[-1]
    node = _unwrap_optional(node)
    return [f.alias or name for name, f in node.model_fields.items()]


def _unwrap_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
