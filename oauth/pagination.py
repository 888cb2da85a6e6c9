"""Page through a peewee query (admin lists)."""

from __future__ import annotations

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
