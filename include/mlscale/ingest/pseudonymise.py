"""PII treatment: keyed HMAC-SHA256 tokens and IP prefixes, computed once per distinct value."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mlscale.errors import NotRetryable

IPV4 = r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$"
_NORMALISE = {"pan": r"[^0-9]", "phone": r"[^0-9+]"}
_PAN_TEXT = re.compile(r"(?<!\d)\d(?:[ -]?\d){11,18}(?!\d)")
_EMAIL_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_TEXT = re.compile(r"\+\d[\d \-]{6,}\d")


class MissingPiiKey(ValueError, NotRetryable):
    """No key is configured for pseudonymisation."""


def check_key(key: bytes | str | None) -> bytes:
    if not key:
        raise MissingPiiKey("no PII key: set the password of the Airflow connection 'pii_hmac_default' "
                            "(or its secret-backend entry) to the key earlier days were written with — a different "
                            "key changes every token, so joins with those days break; refusing to write "
                            "PII-derived data")
    return key.encode() if isinstance(key, str) else key


def normalise(values: pa.Array, pii_class: str) -> pa.Array:
    """The canonical form that is tokenised: digits of a PAN, lower-case e-mail, digits of a phone."""
    values = pc.utf8_trim_whitespace(values)
    if pii_class in _NORMALISE:
        return pc.replace_substring_regex(values, _NORMALISE[pii_class], "")
    if pii_class == "email":
        return pc.utf8_lower(values)
    return values


def _token(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


class _TokenCache:
    """Tokens of recently seen values, per process and key (customers' cards recur across chunks)."""

    def __init__(self, max_items: int = 2_000_000) -> None:
        self.max_items = max_items
        self.by_key: dict[bytes, tuple[Any, dict[str, str]]] = {}

    def tokens(self, key: bytes, values: list[str]) -> list[str]:
        base, cache = self.by_key.get(key) or self.by_key.setdefault(
            key, (hmac.new(key, digestmod=hashlib.sha256), {}))
        if len(cache) > self.max_items:
            cache.clear()
        out = []
        for value in values:
            token = cache.get(value)
            if token is None:
                mac = base.copy()
                mac.update(value.encode())
                token = cache[value] = mac.hexdigest()
            out.append(token)
        return out


_CACHE = _TokenCache()


def hmac_tokens(values: pa.Array, key: bytes, pii_class: str) -> pa.Array:
    """HMAC-SHA256 (hex) of each normalised value; nulls and empty values stay null.

    Deterministic for a key, so joins on tokens work across datasets and days.
    """
    norm = normalise(values, pii_class)
    norm = pc.if_else(pc.equal(norm, ""), pa.scalar(None, pa.string()), norm)
    encoded = pc.dictionary_encode(norm).combine_chunks() if isinstance(norm, pa.ChunkedArray) else pc.dictionary_encode(norm)
    tokens = pa.array(_CACHE.tokens(key, encoded.dictionary.to_pylist()), pa.string())
    return pc.take(tokens, encoded.indices)


def ip_prefixes(values: pa.Array) -> pa.Array:
    """IPv4 truncated to its /24, IPv6 to its /48; anything else becomes null."""
    values = pc.utf8_trim_whitespace(values)
    v4 = pc.match_substring_regex(values, IPV4).fill_null(False)
    v4_prefix = pc.replace_substring_regex(values, IPV4, r"\1.\2.\3.0/24")
    others = pc.unique(pc.filter(values, pc.invert(v4)).drop_null()).to_pylist()
    mapping = {v: _other_prefix(v) for v in others}
    if mapping:
        keys = pa.array(list(mapping), pa.string())
        mapped = pc.take(pa.array(list(mapping.values()), pa.string()), pc.index_in(values, keys))
    else:
        mapped = pa.nulls(len(values), pa.string())
    valid_v4 = pc.and_(v4, _octets_valid(values, v4))
    return pc.if_else(valid_v4, v4_prefix, pc.if_else(v4, pa.scalar(None, pa.string()), mapped))


def _octets_valid(values: pa.Array, v4: pa.Array) -> pa.Array:
    """Every octet of a dotted quad is at most 255 (rows that are not IPv4 count as valid)."""
    parts = pc.split_pattern(pc.if_else(v4, values, "0.0.0.0"), ".")
    octets = pc.cast(pc.list_flatten(parts), pa.int32()).to_numpy(zero_copy_only=False)
    return pa.array((octets <= 255).reshape(-1, 4).all(axis=1))


def _other_prefix(value: str) -> str | None:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def redact_text(text: str, key: bytes) -> str:
    """Replace card numbers, e-mails and phone numbers inside free text with their tokens."""
    text = _PAN_TEXT.sub(lambda m: "pan:" + _token(key, re.sub(r"\D", "", m.group()))[:16], text)
    text = _EMAIL_TEXT.sub(lambda m: "email:" + _token(key, m.group().lower())[:16], text)
    return _PHONE_TEXT.sub(lambda m: "phone:" + _token(key, re.sub(r"[^0-9+]", "", m.group()))[:16], text)
