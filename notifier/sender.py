"""Store-and-forward: drain the `notifications` outbox through apprise, acknowledging only what went out.

Each pass reads what is waiting, runs the `[notify] command` hook for events
seen for the first time, sends (one message per event, or one summary naming every rule
when more than `storm` wait), retrying each failing URL with tenacity (the
wait doubles up to `retry_max_s`, 60 s by default) until it goes out or the
process is stopped, then acknowledges it (`sent_ms`) before the next one. Each
attempt is noted as started (`tries` + 1, its own transaction) and taken back
when it fails (nothing left): waiting for a link, or being stopped while
waiting, never puts a message in doubt. A crash between a send and its
acknowledgement sends that message once more on
restart (counted: `notify.resent_in_doubt`); a notification in doubt twice
is taken as delivered (counted: `notify.taken_as_sent_in_doubt`), so none
goes out more than twice. The doubt is the moment the request is in flight.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from typing import Callable
from zoneinfo import ZoneInfo

from edge_store.alerts.events import iso, read, unsent
from edge_store.db import Database
from edge_store.store import BUMP_COUNTER, now_ms

log = logging.getLogger(__name__)
RESENT = "notify.resent_in_doubt"
# In doubt twice (two crashes inside its send): taken as delivered, never a third copy; counted.
GIVEN_UP = "notify.taken_as_sent_in_doubt"
MAX_TRIES = 2
SENT = "notify.sent"


def _channel(url: str):
    import apprise

    obj = apprise.Apprise()
    if not obj.add(url):
        raise ValueError(url)
    return obj


class Notifier:
    """One sender on one store: `pass_once` drains the outbox once, `run` until stopped."""

    def __init__(self, db: Database, urls: tuple[str, ...], *, site: str, timezone: str = "UTC",
                 command: str = "", command_severities: tuple[str, ...] = ("warning", "critical"),
                 command_timeout_s: float = 10.0, storm: int = 3, interval_s: float = 5.0,
                 retry_max_s: float = 60.0, clock_ms: Callable[[], int] = now_ms):
        self.db = db
        self.urls = urls
        self.channels = [_channel(u) for u in urls]
        self.site = site
        self.tz = ZoneInfo(timezone)
        self.command = command
        self.command_severities = command_severities
        self.command_timeout_s = command_timeout_s
        self.storm = storm
        self.interval_s = interval_s
        self.retry_max_s = retry_max_s
        self._clock_ms = clock_ms
        self.stop_event = threading.Event()

    # -- messages -------------------------------------------------------------------------

    def _when(self, ts_ms: int) -> str:
        return iso(ts_ms, self.tz)

    def messages(self, batch: list[dict], sent_ms: int) -> list[tuple[str, str, list[dict]]]:
        """(title, body, events) to send: one per event, or one summary naming every rule past `storm`."""
        sent = self._when(sent_ms)

        def line(e):
            return (f"{e['severity'].upper()} {e['rule']} {e['state']} on {e['device']}: {e['message']} "
                    f"(event {e['id']}, happened {self._when(e['ts_ms'])}, sent {sent})")

        if len(batch) > self.storm:
            rules = sorted({e["rule"] for e in batch})
            title = f"[kammthaar {self.site}] {len(batch)} alert events: {', '.join(rules)}"
            return [(title, "\n".join(line(e) for e in batch), batch)]
        return [(f"[kammthaar {self.site}] {e['severity']}: {e['rule']} {e['state']} on {e['device']}", line(e), [e])
                for e in batch]

    # -- the hook ---------------------------------------------------------------------------

    def run_hook(self, e: dict) -> None:
        """`[notify] command` with the alert in its environment; killed after command_timeout_s."""
        if not self.command or e["severity"] not in self.command_severities:
            return
        env = {**os.environ, "ALERT_RULE": e["rule"], "ALERT_DEVICE": e["device"], "ALERT_SEVERITY": e["severity"],
               "ALERT_STATE": e["state"], "ALERT_VALUE": "" if e["value"] is None else repr(e["value"]),
               "ALERT_TIME": self._when(e["ts_ms"]), "ALERT_MESSAGE": e["message"], "ALERT_SITE": self.site}
        try:
            done = subprocess.run(self.command, shell=True, env=env, timeout=self.command_timeout_s,
                                  stdin=subprocess.DEVNULL, capture_output=True)
        except subprocess.TimeoutExpired:
            log.warning("[notify] command killed after %gs (event %d)", self.command_timeout_s, e["id"])
            return
        if done.returncode:
            log.warning("[notify] command exited %d (event %d): %s", done.returncode, e["id"],
                        done.stderr.decode(errors="replace").strip()[:200])

    # -- sending ----------------------------------------------------------------------------

    def _note(self, ids: list[tuple[int]], step: int) -> None:
        with self.db.writing("could not note a send") as conn:
            conn.executemany(f"UPDATE notifications SET tries = tries + {int(step)} WHERE id = ?", ids)

    def _attempt(self, channel, ids: list[tuple[int]], title: str, body: str) -> bool:
        """One try on one channel, in doubt only while it is in flight (a crash then: sent once more)."""
        self._note(ids, +1)
        ok = bool(channel.notify(title=title, body=body))
        if not ok:  # refused or no link: nothing went out
            self._note(ids, -1)
        return ok

    def _send(self, title: str, body: str, ids: list[tuple[int]]) -> bool:
        """One message to every channel, retrying what fails; False when stopped first."""
        from tenacity import RetryError, Retrying, retry_if_result, stop_when_event_set, wait_exponential

        for url, channel in zip(self.urls, self.channels):
            retrying = Retrying(wait=wait_exponential(multiplier=0.5, max=self.retry_max_s),
                                retry=retry_if_result(lambda ok: not ok),
                                stop=stop_when_event_set(self.stop_event), sleep=self.stop_event.wait,
                                before_sleep=lambda rs, u=url: log.info(
                                    "could not notify %s (try %d); trying again", u.split("://")[0],
                                    rs.attempt_number))
            try:
                retrying(self._attempt, channel, ids, title, body)
            except RetryError:
                return False
        return True

    def pass_once(self) -> int:
        """Send what is waiting, each message acknowledged as soon as it went out; how many were."""
        batch = read(self.db, "the notification outbox", unsent)
        if not batch or not self.channels:
            return 0
        doubtful = [e for e in batch if e["tries"] >= MAX_TRIES]
        if doubtful:
            now = self._clock_ms()
            with self.db.writing("could not acknowledge notifications") as conn:
                conn.executemany("UPDATE notifications SET sent_ms = ? WHERE id = ?",
                                 [(now, e["notification_id"]) for e in doubtful])
                conn.execute(BUMP_COUNTER, (GIVEN_UP, len(doubtful), now))
            log.warning("%d notifications were in doubt twice (crashes while sending): taken as sent", len(doubtful))
            batch = [e for e in batch if e["tries"] < MAX_TRIES]
        done = 0
        for title, body, events in self.messages(batch, self._clock_ms()):
            ids = [(e["notification_id"],) for e in events]
            for e in events:
                if not e["tries"]:
                    self.run_hook(e)
            if not self._send(title, body, ids):
                break
            sent_ms = self._clock_ms()
            in_doubt = sum(1 for e in events if e["tries"])
            with self.db.writing("could not acknowledge notifications") as conn:
                conn.executemany("UPDATE notifications SET sent_ms = ? WHERE id = ?", [(sent_ms, i) for (i,) in ids])
                conn.execute(BUMP_COUNTER, (SENT, len(ids), sent_ms))
                if in_doubt:
                    conn.execute(BUMP_COUNTER, (RESENT, in_doubt, sent_ms))
            done += len(ids)
        if done:
            log.info("sent %d notifications", done)
        return done

    def run(self) -> None:
        """Drain the outbox until stopped; an empty outbox is looked at every interval_s."""
        log.info("notifying through %d channel(s)", len(self.channels))
        while not self.stop_event.is_set():
            if not self.pass_once():
                self.stop_event.wait(self.interval_s)

    def stop(self, *_args) -> None:
        self.stop_event.set()

