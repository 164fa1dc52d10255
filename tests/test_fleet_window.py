"""The fleet list stays bounded in time (api/fleet.py): its statements read the last day (alerts: 30 days),
and a site not seen in that window is looked up over the look-back, for those sites only, and kept for a
while. Against the real session influxd, a database of its own, through `fleet()` and a real reader."""

from __future__ import annotations

import pytest

from api.fleet import ALERTS_MS, DAY_MS, LOOK_BACK_MS, RECENT_MS, Beyond, Scope, fleet, list_statements
from edge_store.store import now_ms
from replicator.influxql import InfluxQLReader
from tests.fixtures_fleet import alert_line, heartbeat_lines, line

NOW = now_ms()
STALE_AFTER_S = 900.0


def live(site: str, ts: int) -> str:
    return line("batteryStatus", {"site": site, "device": "epever"}, {"voltage": 12.5}, ts)


@pytest.fixture
def fleet_db(influxd):
    """recent: beats now; months: last seen 200 days ago; ancient: beyond the look-back; mute: its device
    beats now but its newest data is 3 days old."""
    database = influxd.create_database()
    lines = [*heartbeat_lines("recent", NOW - 1_000), live("recent", NOW - 2_000),
             *heartbeat_lines("months", NOW - 200 * DAY_MS), live("months", NOW - 200 * DAY_MS - 5_000),
             *heartbeat_lines("ancient", NOW - LOOK_BACK_MS - 10 * DAY_MS),
             *heartbeat_lines("mute", NOW - 1_000), live("mute", NOW - 3 * DAY_MS),
             alert_line("recent", NOW - 10 * DAY_MS, rule="battery_low", severity="critical", state="firing",
                        event_id=1),
             alert_line("months", NOW - 200 * DAY_MS, rule="pv_low", severity="warning", state="firing", event_id=2)]
    status, body = influxd.write_lines(database, "\n".join(lines))
    assert status == 204, body
    reader = InfluxQLReader(influxd.url, database=database)
    yield influxd, database, reader
    reader.close()


def listed(reader, beyond=None, now=NOW) -> dict:
    return {s["site"]: s for s in fleet(reader, Scope(None), now_ms=now, stale_after_s=STALE_AFTER_S, beyond=beyond)}


def test_every_statement_of_the_list_is_bounded_in_time():
    statements = list_statements(Scope(("a", "b")), NOW)
    assert statements[0].startswith("SHOW TAG VALUES")  # the index, no data read
    for statement in statements[1:4]:
        assert f"time >= {NOW - RECENT_MS}ms" in statement, statement
    assert f"time >= {NOW - ALERTS_MS}ms" in statements[4]


def test_sites_beyond_the_window_are_listed_with_their_last_seen(fleet_db):
    _, _, reader = fleet_db
    by = listed(reader)
    assert set(by) == {"recent", "months", "ancient", "mute"}
    assert by["recent"]["stale"] is False and by["recent"]["alerts"]["critical"] == 1  # a 10-day-old firing event
    assert by["months"]["stale"] is True and by["months"]["last_seen"] is not None
    assert 199 * 86_400 < by["months"]["age_s"] < 201 * 86_400
    assert by["months"]["devices"][0]["last_sample"] is not None and by["months"]["heartbeat"]["backlog_rows"] == 0
    assert by["months"]["alerts"]["active"] == 1  # its alerts over the look-back too
    # Beyond the look-back: known from the index, never seen within it (sinks to the end).
    assert by["ancient"]["known"] is True and by["ancient"]["last_seen"] is None and by["ancient"]["stale"] is True
    # A device beating now without recent data: its newest sample is found beyond the window.
    assert by["mute"]["devices"][0]["last_sample"] is not None and by["mute"]["age_s"] < 60
    # Triage: the critical alert, the stale sites (the longest unseen last), the rest.
    assert list(by) == ["recent", "months", "ancient", "mute"]


def test_what_is_kept_beyond_the_window_yields_to_new_points_and_to_its_ttl(fleet_db):
    influxd, database, reader = fleet_db
    kept = Beyond(ttl_s=3600)
    assert listed(reader, kept)["months"]["age_s"] > 199 * 86_400
    # A backfilled point older than the window: not seen while kept, seen without keeping.
    assert influxd.write_lines(database, live("months", NOW - 100 * DAY_MS))[0] == 204
    assert listed(reader, kept)["months"]["age_s"] > 199 * 86_400
    assert listed(reader, Beyond(ttl_s=0))["months"]["age_s"] < 101 * 86_400
    # A point within the window: seen at once, whatever is kept.
    assert influxd.write_lines(database, "\n".join(heartbeat_lines("months", NOW - 1_000)))[0] == 204
    back = listed(reader, kept)["months"]
    assert back["stale"] is False and back["age_s"] < 60


def test_requests_side_by_side_answer_each_statement_in_order_and_raise_a_failure(fleet_db):
    """`query_groups` (the list's two requests at once) answers as one request would, statement for
    statement; a failing statement in either request is the caller's error, not a silently empty answer."""
    from replicator.influxql import QueryError

    _, _, reader = fleet_db
    statements = list_statements(Scope(None), NOW)
    alone = reader.query_each(statements)
    (first, side) = reader.query_groups([statements[:2], statements[2:]])
    assert first + side == alone and any(alone[1:])
    bad = "SELECT nonsense FROM"
    for groups in ([[bad], statements[:1]], [statements[:1], [bad]]):
        with pytest.raises(QueryError):
            reader.query_groups(groups)
