"""Notifications, store-and-forward, against real receivers on loopback (tests/fixtures_notify.py)."""

import random
import re
import sqlite3
import threading
import time

from edge_store.alerts import Engine, load_alerts
from edge_store.store import Store
from notifier.sender import RESENT, Notifier
from tests.fixtures_notify import HttpReceiver
from tests.support import KAMMTHAAR, clean_env, kammthaar, wait_until

ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
CUSTOM = [{"name": f"silent_{i}", "field": "collector.silent_polls", "above": i, "clear_at": 0} for i in range(40)]


def fire(db_path, n_rules=1, start_ms=1_764_000_000_000):
    """n_rules firing events in the outbox (custom rules on the silent-poll count)."""
    quiet = {"builtin": {"device_silent": {"enabled": False}}, "rules": CUSTOM[:n_rules]}
    store = Store(db_path, alerts=Engine(load_alerts(quiet)))
    store.alerts.observe(store.db, "collector.silent_polls", "epever", 100, start_ms)
    store.close()


def notifier(db_path, urls, **kw):
    store = Store(db_path)
    return Notifier(store.db, tuple(urls), site="van", timezone="Europe/Paris", retry_max_s=0.2, **kw)


def test_receivers_down_then_up_get_every_notification_with_both_times(db_path, http_receiver, smtp_receiver):
    fire(db_path, 2)
    n = notifier(db_path, [http_receiver.url, smtp_receiver.url])
    sending = threading.Thread(target=n.pass_once)
    sending.start()  # both links down: it waits and tries again
    time.sleep(1.0)
    assert sending.is_alive() and http_receiver.got == []
    http_receiver.start()
    smtp_receiver.start()
    sending.join(30)
    assert not sending.is_alive()
    assert len(http_receiver.got) == 2 and len(smtp_receiver.got) == 2
    for text in [m["message"] for m in http_receiver.got] + smtp_receiver.got:
        assert re.search(rf"happened {ISO}, sent {ISO}", text.replace("=\r\n", "")), text
        assert "silent_" in text and "epever" in text
    assert n.pass_once() == 0  # nothing repeats an event already sent


def test_a_storm_becomes_one_summary_naming_every_rule(db_path, http_receiver):
    http_receiver.start()
    fire(db_path, 6)
    assert notifier(db_path, [http_receiver.url], storm=3).pass_once() == 6
    [summary] = http_receiver.got
    assert all(f"silent_{i}" in summary["title"] for i in range(6))


def test_the_command_hook_gets_the_alert_and_is_killed_after_its_timeout(db_path, http_receiver, tmp_path):
    http_receiver.start()
    fire(db_path, 1)
    out = tmp_path / "hook.txt"
    n = notifier(db_path, [http_receiver.url], command=f'echo "$ALERT_RULE $ALERT_SEVERITY $ALERT_STATE" > {out}; '
                                                      "sleep 30", command_timeout_s=0.5)
    assert n.pass_once() == 1
    assert out.read_text().strip() == "silent_0 warning firing"


def test_sigkill_while_sending_loses_nothing_and_sends_at_most_twice(db_path, tmp_path, processes):
    receiver = HttpReceiver(delay_s=0.02).start()
    try:
        fire(db_path, 40)
        env = clean_env(store_path=db_path, notify_urls=receiver.url, notify_storm=1000, notify_interval_s=0.1,
                        notify_retry_max_s=0.2)
        rng = random.Random(13)
        for round_ in range(6):
            proc = processes.start([*KAMMTHAAR, "notify"], f"notify{round_}", env=env, ready_line="notifying through")
            time.sleep(rng.uniform(0.0, 0.6))  # 40 messages take ~0.8 s: the kill lands while it sends
            proc.kill()  # SIGKILL
        proc = processes.start([*KAMMTHAAR, "notify"], "notify-last", env=env)
        wait_until(lambda: sqlite3.connect(db_path).execute(
            "SELECT count(*) FROM notifications WHERE sent_ms IS NULL").fetchone()[0] == 0, 60, "the outbox drained")
        proc.stop()
    finally:
        receiver.stop()
    ids = [int(re.search(r"event (\d+)", m["message"]).group(1)) for m in receiver.got]
    counts = {i: ids.count(i) for i in set(ids)}
    assert sorted(counts) == list(range(1, 41))  # every notification arrived
    duplicates = sum(c - 1 for c in counts.values())
    assert max(counts.values()) <= 2
    resent = sqlite3.connect(db_path).execute("SELECT coalesce(sum(value), 0) FROM counters WHERE name = ?",
                                              (RESENT,)).fetchone()[0]
    print(f"duplicates: {duplicates} (notifications re-sent after a crash, counted: {resent})")
    assert duplicates <= resent


def test_alerts_test_fires_a_test_event_end_to_end(db_path, http_receiver):
    http_receiver.start()
    env = clean_env(store_path=db_path, notify_urls=http_receiver.url)
    done = kammthaar("alerts", "test", "battery_voltage_low", env=env)
    assert done.returncode == 0, done.stderr
    [msg] = http_receiver.got
    assert "TEST of battery_voltage_low on epever" in msg["message"]
    listed = kammthaar("alerts", "list", env=env)
    assert listed.returncode == 0 and "battery_voltage_low on epever: TEST" in listed.stdout
    wrong = kammthaar("alerts", "test", "nope", env=env)
    assert wrong.returncode == 2 and "no rule 'nope'" in wrong.stderr


def test_stopped_again_and_again_while_no_link_works_the_notification_still_goes_out(db_path, http_receiver):
    """A van switched off each night with no signal: waiting for a link never puts a message in doubt."""
    fire(db_path, 1)
    for _ in range(3):  # three stops while the receiver is down
        n = notifier(db_path, [http_receiver.url])
        sending = threading.Thread(target=n.pass_once)
        sending.start()
        time.sleep(0.5)
        n.stop_event.set()
        sending.join(10)
        assert not sending.is_alive() and http_receiver.got == []
    http_receiver.start()
    assert notifier(db_path, [http_receiver.url]).pass_once() == 1
    assert len(http_receiver.got) == 1 and "silent_0" in http_receiver.got[0]["message"]
