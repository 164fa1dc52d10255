"""Writers: one batch of line protocol to InfluxDB, one HTTP request, gzip-compressed.

- `V2Writer`: `/api/v2/write` through influxdb-client's synchronous write API
  (token, org, bucket): InfluxDB 2.x, Cloud, 3.x, 1.8+ and other servers that
  speak it.
- `V1Writer`: InfluxDB 1.x `/write` (database, retention policy, optional
  user and password as HTTP basic auth), through urllib3.

A writer encodes a batch (`encode(lines) -> bytes`, which a helper thread
may do ahead) and sends it in exactly one attempt (`send(body)`): it returns
the bytes it put on the wire when the server said 2xx, and raises `WriteError` otherwise, saying what the
server said (status, message, Retry-After). Deciding what to do about it is
the policy's job (policy.py).
"""

from __future__ import annotations

import email.utils
import gzip
import json
import time
import urllib.parse
from datetime import timezone
from typing import Mapping

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from edge_store.errors import KammthaarError

GZIP_LEVEL = 6  # about 40x smaller than the text; level 9 costs twice the CPU for 2 % less


class WriteError(KammthaarError):
    """A batch was not acknowledged. `status` is None when no HTTP answer came at all.

    retryable: connection errors, timeouts, 5xx, 429. `too_large`: 413 (split
    the batch). `bad_data`: 400 or 422 (a parse error or a field type conflict:
    bisect down to the bad points). `auth`: 401 or 403 (stop sending).
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after_s: float | None = None):
        retryable = status is None or status == 429 or status >= 500
        super().__init__(message, retryable=retryable)
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def too_large(self) -> bool:
        return self.status == 413

    @property
    def bad_data(self) -> bool:
        return self.status in (400, 422)

    @property
    def auth(self) -> bool:
        return self.status in (401, 403)


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    # Not urllib3's Retry.parse_retry_after: it reads time.time() (a test could not fix `now_s`), refuses a
    # fractional or negative delta that a server may still send (we clamp it), and raises instead of None.
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = time.time() if now_s is None else now_s
    return max(0.0, when.timestamp() - now)


def _server_message(body: bytes | str | None) -> str:
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        decoded = json.loads(text)
    except ValueError:
        return text.strip()[:2000]
    if isinstance(decoded, dict):
        return str(decoded.get("error") or decoded.get("message") or text).strip()[:2000]
    return text.strip()[:2000]


def _http_error(status: int, body, headers: Mapping[str, str] | None) -> WriteError:
    message = _server_message(body) or f"HTTP {status}"
    retry_after = parse_retry_after((headers or {}).get("Retry-After")) if status in (429, 503) else None
    return WriteError(f"HTTP {status}: {message}", status=status, retry_after_s=retry_after)


class V1Writer:
    """InfluxDB 1.x `/write?db=&rp=&precision=ms`, gzip body, basic auth when a user is set."""

    def __init__(self, url: str, *, database: str, retention_policy: str = "", username: str = "",
                 password: str = "", timeout_s: float = 10.0, gzip_level: int = GZIP_LEVEL):
        self.url = url.rstrip("/")
        self.target = f"database {database}" + (f", retention policy {retention_policy}" if retention_policy else "")
        fields = {"db": database, "precision": "ms"}
        if retention_policy:
            fields["rp"] = retention_policy
        self._endpoint = f"{self.url}/write?{urllib.parse.urlencode(fields)}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"}
        if username:  # InfluxDB compares the UTF-8 bytes of the password
            self._headers.update(urllib3.make_headers(basic_auth=f"{username}:{password}", basic_auth_encoding="utf-8"))
        self._gzip_level = gzip_level
        self._pool = urllib3.PoolManager(num_pools=1, maxsize=1, retries=False,
                                         timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s))

    def encode(self, lines: list[str]) -> bytes:
        """The request body for `lines`: line protocol, gzip-compressed."""
        return gzip.compress("\n".join(lines).encode(), compresslevel=self._gzip_level)

    def send(self, data: bytes) -> int:
        """POST one encoded body; the bytes sent, or WriteError."""
        try:
            resp = self._pool.request("POST", self._endpoint, body=data, headers=self._headers,
                                      preload_content=True, redirect=False)
        except Urllib3Error as exc:
            raise WriteError(f"{self.url}: {_describe(exc)}") from exc
        if 200 <= resp.status < 300:
            return len(data)
        raise _http_error(resp.status, resp.data, resp.headers)

    def close(self) -> None:
        self._pool.clear()


class V2Writer:
    """`/api/v2/write` through influxdb-client's synchronous write API, gzip on."""

    def __init__(self, url: str, *, token: str, org: str, bucket: str, timeout_s: float = 10.0):
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.url = url.rstrip("/")
        self.target = f"bucket {bucket}" + (f" of org {org}" if org else "")
        self.bucket = bucket
        self.org = org or "-"
        self._client = InfluxDBClient(url=self.url, token=token, org=self.org, timeout=int(timeout_s * 1000),
                                      enable_gzip=True)
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        # The client compresses the body itself; remember the size it hands to the socket.
        conf = self._client.api_client.configuration
        compress = conf.update_request_body
        self._last_size = 0

        def measured(path, body):
            out = compress(path, body)
            self._last_size = len(out) if isinstance(out, (bytes, str)) else 0
            return out

        conf.update_request_body = measured

    def encode(self, lines: list[str]) -> bytes:
        """The line protocol for `lines` (the client compresses it when sending)."""
        return "\n".join(lines).encode()

    def send(self, body: bytes) -> int:
        """Write one encoded body through the client; the bytes sent (compressed), or WriteError."""
        from influxdb_client.rest import ApiException

        from .points import PRECISION

        self._last_size = 0
        try:
            self._api.write(bucket=self.bucket, org=self.org, record=body, write_precision=PRECISION)
        except ApiException as exc:
            raise _http_error(exc.status or 0, exc.body, exc.headers) from exc
        except Urllib3Error as exc:
            raise WriteError(f"{self.url}: {_describe(exc)}") from exc
        return self._last_size or len(body)

    def close(self) -> None:
        self._api.close()
        self._client.close()


def _describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    text = str(reason or exc)
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return f"timeout ({text})"
    return f"connection failed ({text})"
