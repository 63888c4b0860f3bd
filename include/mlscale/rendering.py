"""HTML reports from the Jinja2 templates in ``mlscale/templates`` (autoescaped; no hand escaping).

One environment, built once: autoescaping on for every template, ``StrictUndefined`` (a missing value is an
error, not an empty string), and the number filters the reports share. Values are escaped as
:func:`html.escape` escapes them (``&quot;``, ``&#x27;``), so a page reads the same as before the
templates; markup made by a template or macro (``markupsafe.Markup``) passes through unchanged. ``None``
prints as nothing; ``{{ x|string }}`` prints it as ``None``.

Templates: one per report (``<report>.html.j2``, extending ``base.html.j2``), ``macros.html.j2`` for the
repeated HTML pieces (tables, links, lists) and ``charts.svg.j2`` for the inline SVG charts, whose macros
the report modules call through :func:`render_macro` with the geometry they computed.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

__all__ = ["binary_size", "environment", "fmt", "number", "percent", "points", "render", "render_macro",
           "template_names"]


def _escape(value: Any) -> Any:
    """The environment's ``finalize``: every printed value that is not markup, escaped like ``html.escape``."""
    if value is None:
        return ""
    return value if hasattr(value, "__html__") else Markup(html.escape(str(value), quote=True))


def fmt(value: Any, spec: str) -> str:
    """``{{ x|fmt(".4f") }}``: ``format(value, spec)``, e.g. ``","`` for thousands, ``".1f"`` for coordinates."""
    return format(value, spec)


def number(value: Any) -> str:
    """``{{ x|number }}``: ``–`` for None; integers and magnitudes from 100 as ``1,234``; else 4 significant digits."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def percent(value: Any) -> str:
    """``{{ x|percent }}``: ``–`` for None, a rate as ``12.34%``."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.2%}"


def points(pairs: Iterable[tuple[float, float]]) -> str:
    """``points="{{ xy|points }}"``: pixel coordinates as an SVG ``points`` list, ``x,y x,y`` to 0.1 px."""
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in pairs)


def binary_size(n: float) -> str:
    """``{{ x|binary_size }}``: a byte count in B, KiB, MiB, GiB or TiB (``12,345 B``, ``1.5 MiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{int(n):,} B" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} TiB"


@cache
def environment() -> Environment:
    env = Environment(loader=PackageLoader("mlscale", "templates"), autoescape=True, undefined=StrictUndefined,
                      finalize=_escape, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(fmt=fmt, number=number, percent=percent, points=points, binary_size=binary_size)
    return env


def template_names() -> list[str]:
    """Every template in ``mlscale/templates``."""
    return environment().list_templates(extensions=["j2"])


def render(template_name: str, /, **values: Any) -> str:
    """The page of ``template_name`` for ``values``."""
    return environment().get_template(template_name).render(**values)


def render_macro(template_name: str, macro_name: str, /, *args: Any, **kwargs: Any) -> Markup:
    """Call macro ``macro_name`` of ``template_name`` (e.g. a chart of ``charts.svg.j2``): escaped markup."""
    macro = getattr(environment().get_template(template_name).module, macro_name)
    return Markup(macro(*args, **kwargs))
