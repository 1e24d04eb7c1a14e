"""Request statistics (seed, "Gateway": the number of requests of each kind, bytes in and out).

Counters are kept in memory per (user, bucket, S3 operation) and written
periodically, and on clean shutdown, to ``stats/<gateway name>`` in the service
bucket; a restarted gateway of the same name continues from its record.
Recording happens in aiohttp's access-log hook, which runs after the response
is completely sent, so the byte counts are what actually crossed the wire.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ostor.common.worker import Worker
from ostor.gateway.users import RECORD_VERSION, ServiceBucket

log = logging.getLogger(__name__)

STATS_PREFIX = "stats/"
#: Where app.py leaves ``(user id, bucket, operation name)`` for the statistics hook.
REQUEST_KEY = web.RequestKey("ostor.stats", tuple)


@dataclass
class UsageRow:
    """Counters of one (user, bucket, operation)."""

    user: str
    bucket: str
    operation: str
    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def as_list(self) -> list[Any]:
        """The row as a JSON-friendly list."""
        return [self.user, self.bucket, self.operation, self.requests, self.bytes_in, self.bytes_out]


def merge_rows(*sources: list[list[Any]]) -> dict[tuple[str, str, str], UsageRow]:
    """Sum rows (lists as stored) by (user, bucket, operation)."""
    merged: dict[tuple[str, str, str], UsageRow] = {}
    for rows in sources:
        for user, bucket, op, requests, bytes_in, bytes_out in rows:
            row = merged.setdefault((user, bucket, op), UsageRow(user, bucket, op))
            row.requests += requests
            row.bytes_in += bytes_in
            row.bytes_out += bytes_out
    return merged


class Statistics:
    """One gateway's counters, persisted in the service bucket under its name."""

    def __init__(self, bucket: ServiceBucket | None, name: str = "gateway-0") -> None:
        self.bucket = bucket
        self.name = name
        self.counters: dict[tuple[str, str, str], list[int]] = {}
        self._dirty = False
        self._worker: Worker | None = None

    @property
    def record_key(self) -> str:
        """This gateway's record in the service bucket."""
        return STATS_PREFIX + self.name

    def record(self, user: str, bucket: str, operation: str, bytes_in: int, bytes_out: int) -> None:
        """Count one request."""
        counter = self.counters.get((user, bucket, operation))
        if counter is None:
            counter = self.counters[(user, bucket, operation)] = [0, 0, 0]
        counter[0] += 1
        counter[1] += bytes_in
        counter[2] += bytes_out
        self._dirty = True

    def observe(self, request: Any, response: Any) -> None:
        """Count a finished aiohttp request that the gateway tagged with REQUEST_KEY."""
        tag = request.get(REQUEST_KEY)
        if tag is None:
            return  # health checks and requests that failed before routing
        user, bucket, operation = tag
        content = getattr(request, "content", None)
        bytes_in = getattr(content, "total_bytes", 0) or 0
        # aiohttp's output counter includes the status line and headers; count the body only
        # (Content-Length) when all of it went out, and what was written when it was cut short.
        written = response.body_length or 0
        declared = response.content_length
        if request.method == "HEAD":
            bytes_out = 0
        elif declared is not None and written >= declared:
            bytes_out = declared
        else:
            bytes_out = written
        self.record(user or "", bucket or "", operation, bytes_in, bytes_out)

    def rows(self) -> list[list[Any]]:
        """The in-memory counters as stored rows."""
        return [[u, b, op, *counter] for (u, b, op), counter in self.counters.items()]

    async def load(self) -> None:
        """Continue from this gateway's persisted record."""
        if self.bucket is None:
            return
        doc = await self.bucket.get(self.record_key)
        if doc and doc.get("version") == RECORD_VERSION:
            for (u, b, op), row in merge_rows(doc["rows"]).items():
                counter = self.counters.setdefault((u, b, op), [0, 0, 0])
                counter[0] += row.requests
                counter[1] += row.bytes_in
                counter[2] += row.bytes_out

    async def flush(self) -> bool:
        """Write the counters if they changed; returns whether anything was written."""
        if self.bucket is None or not self._dirty:
            return False
        self._dirty = False
        try:
            await self.bucket.put(self.record_key, {"version": RECORD_VERSION, "gateway": self.name,
                                                    "rows": self.rows()})
        except BaseException:
            self._dirty = True
            raise
        return True

    def start(self, interval: float = 10.0) -> None:
        """Persist every ``interval`` seconds in the background."""
        async def step() -> bool:
            await self.flush()
            return False

        self._worker = Worker("statistics-flush", step, interval)
        self._worker.start()

    async def stop(self) -> None:
        """Stop the background writer and persist what is left."""
        if self._worker is not None:
            await self._worker.stop()
            self._worker = None
        await self.flush()

    async def collect(self, user: str | None = None, bucket: str | None = None,
                      include_own: bool = True) -> list[UsageRow]:
        """Every gateway's counters (this one's live), summed and filtered, sorted."""
        sources: list[list[list[Any]]] = [self.rows()] if include_own else []
        if self.bucket is not None:
            for key, doc in (await self.bucket.load_all(STATS_PREFIX)).items():
                if include_own and key == self.record_key:
                    continue  # the live counters already include what was persisted
                if doc.get("version") == RECORD_VERSION:
                    sources.append(doc["rows"])
        rows = [row for row in merge_rows(*sources).values()
                if (user is None or row.user == user) and (bucket is None or row.bucket == bucket)]
        return sorted(rows, key=lambda r: (r.user, r.bucket, r.operation))

    def access_logger_class(self) -> type[AbstractAccessLogger]:
        """An aiohttp access-logger class that feeds this object (pass as ``access_log_class``)."""
        stats = self

        class StatisticsLogger(AbstractAccessLogger):
            """Counts each finished request; logs nothing (secrets stay out of logs)."""

            def log(self, request: Any, response: Any, time: float) -> None:
                try:
                    stats.observe(request, response)
                except Exception:  # statistics must never break serving
                    log.exception("statistics: cannot count a request")

            @property
            def enabled(self) -> bool:
                return True

        return StatisticsLogger
