"""Reading back from InfluxDB with InfluxQL through `/query`.

InfluxDB 1.x, 2.x (DBRP mapping), 3.x and Cloud all answer `/query`.
Identifiers and literals that come from outside (measurement, field and tag
names, tag values, strings) go through `ident()` and `literal()`, so a value
such as `van"; DROP ...` stays a value. Times come back as UTC milliseconds.
"""

from __future__ import annotations

import json
import math
import os
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from edge_store.errors import KammthaarError


# Requests sent beside the caller's own (`query_groups`): a few threads for the process, made on first use (so
# after a server's workers fork).
_SIDE_THREADS = 4
_side: ThreadPoolExecutor | None = None
_side_lock = threading.Lock()


def _side_pool() -> ThreadPoolExecutor:
    global _side
    with _side_lock:
        if _side is None:
            _side = ThreadPoolExecutor(max_workers=_SIDE_THREADS, thread_name_prefix="influxql")
        return _side


def _forget_side_pool() -> None:
    """A forked child has none of its parent's threads: it makes its own pool."""
    global _side, _side_lock
    _side, _side_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_side_pool)


class QueryError(KammthaarError):
    """A query got no answer, an HTTP error or an error inside the answer."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message, retryable=status is None or status == 429 or status >= 500)
        self.status = status


class NotAnAnswer(QueryError):
    """The server answered /query with something other than the results of the statements asked
    (VictoriaMetrics answers every /query with a fixed list of databases)."""


def ident(name: str) -> str:
    """An InfluxQL identifier, double-quoted: measurement, field, tag, database names."""
    return '"' + str(name).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def literal(value: Any) -> str:
    """An InfluxQL literal: strings single-quoted and escaped, numbers, booleans, times (RFC 3339)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no InfluxQL literal")
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a naive datetime is ambiguous: give it a time zone")
        value = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


class InfluxQLReader:
    """`/query` on one database. v1: user and password; v2 (compat): a token."""

    def __init__(self, url: str, *, database: str, retention_policy: str = "", username: str = "",
                 password: str = "", token: str = "", timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Token {token}"
        elif username:
            self._headers.update(urllib3.make_headers(basic_auth=f"{username}:{password}", basic_auth_encoding="utf-8"))
        self._pool = urllib3.PoolManager(num_pools=1, maxsize=1 + _SIDE_THREADS, retries=False,
                                         timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s))

    def query(self, q: str) -> list[dict]:
        """Run one or more statements; every series of every result, as dicts (name, tags, columns, values)."""
        return [s for series in self._results(q) for s in series]

    def query_each(self, statements: list[str]) -> list[list[dict]]:
        """Run several statements in one request; the series of each statement, in order."""
        answers = self._results(";".join(statements))
        if len(answers) != len(statements):
            raise NotAnAnswer(f"asked {len(statements)} statements, got {len(answers)} results")
        return answers

    def query_groups(self, groups: list[list[str]]) -> list[list[list[dict]]]:
        """Each group of statements in its own request, the requests at the same time; the series of each
        statement, per group, in order.

        InfluxDB runs one request's statements one after the other, on one core; requests side by side use
        its other cores, and this thread decodes the first answer while the others are still computed.
        The first error raised is raised (once every request has ended: none is left running)."""
        side = [_side_pool().submit(self.query_each, group) for group in groups[1:]]
        try:
            first = self.query_each(groups[0])
        except BaseException:
            for future in side:
                future.cancel()  # not begun: never sent
            wait(side)  # none left running behind the error
            raise
        return [first] + [future.result() for future in side]

    def ping(self, timeout_s: float) -> None:
        """GET /ping within `timeout_s`; raises QueryError unless the server answers 2xx."""
        try:
            resp = self._pool.request("GET", f"{self.url}/ping", headers=self._headers,
                                      timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s))
        except Urllib3Error as exc:
            raise QueryError(f"{self.url}: no answer to /ping within {timeout_s:g}s ({exc})") from exc
        if not 200 <= resp.status < 300:
            raise QueryError(f"{self.url}/ping: HTTP {resp.status}", status=resp.status)

    def _results(self, q: str) -> list[list[dict]]:
        """The series of each statement's result, ordered by statement_id."""
        fields = {"q": q, "db": self.database, "epoch": "ms"}
        if self.retention_policy:
            fields["rp"] = self.retention_policy
        try:
            resp = self._pool.request("GET", f"{self.url}/query?{urllib.parse.urlencode(fields)}",
                                      headers=self._headers)
        except Urllib3Error as exc:
            raise QueryError(f"{self.url}: no answer ({exc})") from exc
        try:
            answer = json.loads(resp.data or b"{}")
        except ValueError:
            answer = {"error": resp.data[:300].decode("utf-8", "replace")}
        if resp.status != 200 or "error" in answer:
            raise QueryError(f"HTTP {resp.status}: {answer.get('error', '')}", status=resp.status)
        results = sorted(answer.get("results", []), key=lambda r: r.get("statement_id", 0))
        for result in results:
            if "error" in result:
                raise QueryError(f"query failed: {result['error']}", status=resp.status)
        return [result.get("series", []) for result in results]

    def records(self, q: str) -> list[dict]:
        """The rows of every series as flat dicts: `time` (UTC ms), the columns, and the series' tags."""
        out = []
        for s in self.query(q):
            tags = s.get("tags") or {}
            for values in s.get("values", []):
                out.append({**tags, **dict(zip(s["columns"], values)), "_measurement": s.get("name")})
        return out

    def select(self, measurement: str, fields: Iterable[str] | None = None, *,
               tags: Mapping[str, str] | None = None, start_ms: int | None = None, end_ms: int | None = None,
               limit: int | None = None) -> list[dict]:
        """SELECT fields FROM measurement WHERE tag = value AND time in [start, end) ORDER BY time."""
        what = ", ".join(ident(f) for f in fields) if fields else "*"
        where = [f"{ident(k)} = {literal(v)}" for k, v in (tags or {}).items()]
        if start_ms is not None:
            where.append(f"time >= {int(start_ms)}ms")
        if end_ms is not None:
            where.append(f"time < {int(end_ms)}ms")
        q = f"SELECT {what} FROM {ident(measurement)}"
        if where:
            q += " WHERE " + " AND ".join(where)
        q += " ORDER BY time ASC"
        if limit is not None:
            q += f" LIMIT {int(limit)}"
        return self.records(q)

    def close(self) -> None:
        self._pool.clear()


def reader_for(cloud, timeout_s: float) -> InfluxQLReader:
    """An InfluxQL reader on the database the `[cloud]` section names (v2: its bucket, through the DBRP
    mapping), answering within `timeout_s`."""
    if cloud.api == "v2":
        return InfluxQLReader(cloud.url, database=cloud.bucket, token=cloud.token, timeout_s=timeout_s)
    return InfluxQLReader(cloud.url, database=cloud.database, retention_policy=cloud.retention_policy,
                          username=cloud.username, password=cloud.password, timeout_s=timeout_s)
