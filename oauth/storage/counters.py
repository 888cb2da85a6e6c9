"""Rate-limit counters kept in the application's own database: a ``limits`` storage.

The default limit storage, because it holds across every worker of one machine (SQLite) and
every instance sharing a PostgreSQL database, with nothing to install. Only failed attempts and
limited requests write; Redis (``redis://``) takes the writes off the database when wanted.
"""

from __future__ import annotations

import hashlib
import random
import time

import peewee
from limits.storage import Storage

from oauth.storage.models import RateLimitCounter

MAX_KEY = 200
PURGE_EVERY = 200  # on average, one incr in this many deletes the expired counters


def _key(key: str) -> str:
    if len(key) <= MAX_KEY:
        return key
    return key[: MAX_KEY - 65] + "#" + hashlib.sha256(key.encode()).hexdigest()


class DatabaseStorage(Storage):
    """Fixed-window counters as rows: one atomic upsert per hit, one indexed read per check."""

    STORAGE_SCHEME = ["portcullis-database"]

    @property
    def base_exceptions(self):
        return peewee.DatabaseError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        expired = RateLimitCounter.expires_at <= now
        query = (
            RateLimitCounter.insert(key=_key(key), count=amount, expires_at=now + expiry)
            .on_conflict(
                conflict_target=[RateLimitCounter.key],
                update={
                    RateLimitCounter.count: peewee.Case(
                        None, [(expired, amount)], RateLimitCounter.count + amount
                    ),
                    RateLimitCounter.expires_at: peewee.Case(
                        None, [(expired, now + expiry)], RateLimitCounter.expires_at
                    ),
                },
            )
            .returning(RateLimitCounter.count)
        )
        (count,) = next(iter(query.tuples().execute()))
        if random.randrange(PURGE_EVERY) == 0:
            self.purge_expired()
        return int(count)

    def _live(self, key: str):
        return RateLimitCounter.get_or_none(
            (RateLimitCounter.key == _key(key)) & (RateLimitCounter.expires_at > time.time())
        )

    def get(self, key: str) -> int:
        row = self._live(key)
        return row.count if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._live(key)
        return row.expires_at if row else time.time()

    def check(self) -> bool:
        try:
            RateLimitCounter.select().limit(1).count()
        except peewee.DatabaseError:
            return False
        return True

    def reset(self) -> int | None:
        return RateLimitCounter.delete().execute()

    def clear(self, key: str) -> None:
        RateLimitCounter.delete().where(RateLimitCounter.key == _key(key)).execute()

    @staticmethod
    def purge_expired() -> int:
        return RateLimitCounter.delete().where(RateLimitCounter.expires_at <= time.time()).execute()
