"""Turn what a person or a manifest names (a lake URI, a lake key, a local path) into a lake key."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mlscale.lake import ZONES, Lake
from mlscale.lake.storage import is_local


class OutsideLake(ValueError):
    """A URI or path that does not lie below the lake root."""


@dataclass(frozen=True)
class LakeLocator:
    """The spellings of one lake root: ``root`` as configured and, for a local lake, its absolute path.

    A local lake rooted at ``/data/lake`` (or ``file:///data/lake``) accepts ``file:///data/lake/raw/x``,
    ``/data/lake/raw/x``, ``raw/x`` and a relative path such as ``data/lake/raw/x`` from the directory
    that holds it; all give the key ``raw/x``.
    """

    root: str
    local_base: str = ""

    @classmethod
    def of(cls, lake: Lake) -> LakeLocator:
        return cls(root=lake.root, local_base=lake.path("") if is_local(lake.fs) else "")

    @property
    def prefixes(self) -> tuple[str, ...]:
        found = [self.root.rstrip("/")]
        if self.local_base:
            found += [f"file://{self.local_base}", self.local_base]
        return tuple(dict.fromkeys(p for p in found if p))

    def key_of(self, text: str) -> str:
        """The lake key ``text`` names; raises :class:`OutsideLake` for a URI or path outside the root.

        Deterministic and I/O-free: nothing is checked for existence here.
        """
        text = text.strip()
        for prefix in self.prefixes:
            if text == prefix:
                return ""
            if text.startswith(prefix + "/"):
                return _clean(text[len(prefix) + 1:])
        if "://" in text or text.startswith("/"):
            raise OutsideLake(f"{text} is outside the lake root {self.root}")
        first = text.strip("/").split("/", 1)[0]
        if first in ZONES or not self.local_base:
            return _clean(text)
        absolute = os.path.abspath(text)  # a relative local path, e.g. data/lake/raw/…
        if absolute.startswith(self.local_base + "/"):
            return _clean(absolute[len(self.local_base) + 1:])
        return _clean(text)


def _clean(key: str) -> str:
    return "/".join(p for p in key.split("/") if p and p != ".")
