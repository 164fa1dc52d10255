"""The Grafana dashboard and provisioning of grafana/: the JSON validated, and every query in it run against a
real influxd holding what the real replicator sent from a store filled with two days of the simulator's model."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from edge_store.catalogue.epever_tracer import CHARGING_STAGE
from edge_store.simulator import history
from tests.fixtures_influx import SITE, reader_of, replicator_on, v1
from tests.samples import ZONE
from tests.support import REPO

GRAFANA = REPO / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "kammthaar-edge.json"
DEVICE = "epever"
# Grafana's own variables the queries may use; every other $name must be a dashboard variable.
BUILT_IN = {"timeFilter", "__interval", "__interval_ms"}
VARIABLE = re.compile(r"\$\{?(\w+)\}?")
STATS = {"State of charge": "state_of_charge", "PV power": "pv_power", "Battery voltage": "battery_voltage",
         "Load power": "load_power"}


def _dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _queries(dash: dict):
    """(where, query, time range) of every query: panels' targets, query variables, annotations."""
    default_range = dash["time"]["from"].removeprefix("now-")
    for panel in dash["panels"]:
        for target in panel["targets"]:
            yield panel, target["query"], panel.get("timeFrom", default_range)
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            yield var, var["query"], default_range
    for anno in dash["annotations"]["list"]:
        if anno["datasource"]["type"] == "influxdb":
            yield anno, anno["query"], default_range


def _substitute(query: str, time_range: str) -> str:
    values = {"site": re.escape(SITE), "device": re.escape(DEVICE), "timeFilter": f"time >= now() - {time_range}",
              "__interval": "5m"}
    out = VARIABLE.sub(lambda m: values[m.group(1)], query)
    assert not VARIABLE.search(out), out
    return out


def test_dashboard_json_is_well_formed_with_unique_ids_and_known_variables():
    dash = _dashboard()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), ids
    variables = [v["name"] for v in dash["templating"]["list"]]
    assert len(variables) == len(set(variables)) and {"datasource", "site", "device"} <= set(variables)
    for panel in dash["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"] == {"type": "influxdb", "uid": "${datasource}"}, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert all(t["rawQuery"] and t["datasource"] == panel["datasource"] for t in panel["targets"])
    types = sorted(p["type"] for p in dash["panels"])
    assert types.count("stat") == 4 and "state-timeline" in types
    assert {p["title"] for p in dash["panels"] if p["type"] == "stat"} == set(STATS)
    for panel in dash["panels"]:
        if panel["type"] == "stat":
            assert len(panel["fieldConfig"]["defaults"]["thresholds"]["steps"]) >= 2, panel["title"]
    for _, query, _ in _queries(dash):
        used = set(VARIABLE.findall(query))
        assert used <= set(variables) | BUILT_IN, (query, used - set(variables) - BUILT_IN)
    alerts = [a for a in dash["annotations"]["list"] if a["name"] == "Alerts"]
    assert len(alerts) == 1 and alerts[0]["query"] == alerts[0]["target"]["query"]
    assert '"alerts"' in alerts[0]["query"]


def test_provisioning_files_point_grafana_at_influxql_and_the_dashboards():
    (source,) = yaml.safe_load((GRAFANA / "provisioning/datasources/kammthaar.yaml").read_text())["datasources"]
    assert (source["type"], source["access"]) == ("influxdb", "proxy")
    assert source["jsonData"]["dbName"] and "version" not in source["jsonData"]  # InfluxQL, the default
    (provider,) = yaml.safe_load((GRAFANA / "provisioning/dashboards/kammthaar.yaml").read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


@pytest.fixture
def replicated(open_store, db_path, influxd, influx_db):
    """Two days of the simulator's model through the store and its rollups, replicated; one firing alert."""
    store = open_store(tz=ZONE, max_gap_s=180.0)
    counts = history.fill(store, 2.0, interval_s=60.0, slow_interval_s=600.0, device=DEVICE, tz=ZoneInfo(ZONE))
    assert counts["live"] > 2800
    replicator = replicator_on(db_path, v1(influxd, influx_db))
    try:
        done = replicator.drain()
        assert done.error is None and not done.blocked
    finally:
        replicator.close()
    newest = store.latest("live", DEVICE)
    # The agreed `alerts` shape (issue 13 writes it): one firing event an hour before the newest sample.
    line = (f'alerts,site={SITE},device={DEVICE},rule=battery_low,severity=warning,state=firing '
            f'value=11.6,threshold=11.8,event_id=1i,message="battery below 11.8 V" {newest["ts_ms"] - 3_600_000}')
    status, body = influxd.write_lines(influx_db, line)
    assert status == 204, body
    return newest


def _numbers(series: list[dict]) -> list[float]:
    return [v for s in series for row in s["values"] for v in row[1:] if isinstance(v, (int, float))]


def test_every_dashboard_query_answers_its_panel_from_replicated_data(replicated, influxd, influx_db):
    reader = reader_of(influxd, influx_db)
    dash = _dashboard()
    checked = 0
    for where, query, time_range in _queries(dash):
        series = reader.query(_substitute(query, time_range))
        kind = where.get("type")
        what = where.get("title") or where.get("name")
        assert series, f"{what}: no data for {query}"
        if kind == "stat":
            (s,) = series
            assert len(s["values"]) == 1, what
            value = s["values"][0][1]
            assert math.isclose(value, replicated[STATS[what]], abs_tol=1e-9), (what, value)
        elif kind == "timeseries" and "timeFrom" in where and where["timeFrom"] == "24h":
            (s,) = series
            assert len(s["values"]) >= 200 and len(_numbers(series)) >= 200, what
        elif kind == "timeseries":  # daily and monthly energy bars from the edge's statistics
            (s,) = series
            assert s["columns"] == ["time", "generated", "consumed", "battery_in", "battery_out"], what
            assert len(s["values"]) >= (2 if "daily" in where["title"].lower() else 1), what
            assert all(v is not None and v >= 0 for row in s["values"] for v in row[1:]), what
            assert max(row[1] for row in s["values"]) > 0, what
        elif kind == "state-timeline":
            stages = {row[1] for s in series for row in s["values"]} - {None}
            assert stages and stages <= set(CHARGING_STAGE.values()), stages
        elif kind == "query":  # a variable
            values = {row[1] for s in series for row in s["values"]}
            assert values == ({SITE} if where["name"] == "site" else {DEVICE}), (what, values)
        else:  # the alert annotations
            (s,) = series
            record = dict(zip(s["columns"], s["values"][0]))
            assert (record["message"], record["rule"], record["severity"]) == \
                ("battery below 11.8 V", "battery_low", "warning")
        checked += 1
    assert checked == sum(len(p["targets"]) for p in dash["panels"]) + 3
