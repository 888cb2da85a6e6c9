"""Page through a peewee query: numbered pages (admin lists), keyset pages (the management API)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

import peewee


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def page_number(value: Any) -> int:
    """A page number from a query string: junk and out-of-range values mean page 1."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 1
    return number if 1 <= number <= 1_000_000 else 1


def paginate(query: peewee.ModelSelect, number: int, per_page: int) -> Page:
    """One page of ``query`` (which must already be ordered); past the end gives the last page."""
    total = query.count()
    last = max(1, math.ceil(total / per_page))
    number = min(max(1, number), last)
    return Page(list(query.paginate(number, per_page)), number, per_page, total)


# --- keyset pages (the management API) --------------------------------------------------

MAX_CURSOR_CHARS = 600


@dataclass(frozen=True)
class KeysetPage:
    items: list[Any]
    next_cursor: str | None


def encode_cursor(value: str | int) -> str:
    """An opaque cursor for the last key of a page."""
    raw = json.dumps([value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | int:
    """The key a cursor holds; ValueError for anything ``encode_cursor`` did not make."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR_CHARS:
        raise ValueError("bad cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        (value,) = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise ValueError("bad cursor") from None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("bad cursor")
    if isinstance(value, str) and (not value.isprintable() or len(value) > 2048):
        raise ValueError("bad cursor")  # no NUL (PostgreSQL refuses it), nothing odd
    if isinstance(value, int) and not -(2**63) < value < 2**63:
        raise ValueError("bad cursor")
    return value


def keyset(
    query: peewee.ModelSelect,
    key: peewee.Field,
    *,
    limit: int,
    cursor: str | None = None,
    descending: bool = False,
) -> KeysetPage:
    """One page of ``query`` in the order of the unique ``key`` (keyset pagination: rows
    added or removed meanwhile never make a walk repeat or skip another row).

    ValueError for a cursor that is not ours."""
    if cursor:
        after = decode_cursor(cursor)
        if isinstance(key, peewee.AutoField | peewee.IntegerField) != isinstance(after, int):
            raise ValueError("bad cursor")
        query = query.where(key < after if descending else key > after)
    rows = list(query.order_by(key.desc() if descending else key).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    last = getattr(rows[-1], key.name) if rows and more else None
    return KeysetPage(rows, encode_cursor(last) if last is not None else None)
