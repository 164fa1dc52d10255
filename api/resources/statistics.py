"""Statistics: the device's own (/statistics/daily/..., /statistics/energy/...) and the edge's rollups
(/statistics/daily, /statistics/monthly, /statistics/energy/7days)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import falcon

from edge_store.catalogue import INTEGER
from edge_store.catalogue.rollup_figures import FIGURES

from ..errors import BadRequest
from ..families import NULLABLE_NUMBER, family, obj, r3
from ..site_totals import sum_days, sum_periods
from ..sources import DAILY, MONTHLY, PERIOD_COLUMN
from edge_store.catalogue.rollup_figures import PERIOD_FIELD
from .base import (ALL_DEVICES, DEVICE_OR_ALL_PARAM, SITE_PARAM, Route, answer, devices_read, object_routes,
                   requested_site)

DAILY_DEVICE = family("daily statistics", "daily")
ENERGY = family("energy statistics", "energy")

def stat_schema(key: str, pattern: str) -> dict:
    props = {key: {"type": "string", "pattern": pattern}}
    for f in FIGURES:
        schema: dict = {"type": "integer" if f.type == INTEGER else "number"}
        if f.nullable:
            schema["nullable"] = True
        if f.minimum is not None:
            schema["minimum"] = f.minimum
        if f.description:
            schema["description"] = f.description
        props[f.name] = schema
    return obj(props)


DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MONTH_RE = re.compile(r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])$")


def _month_index(key: str) -> int:
    return int(key[:4]) * 12 + int(key[5:7]) - 1


def _month_key(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _day_param(req: falcon.Request, name: str, default: date) -> date:
    value = req.get_param(name)
    if value is None:
        return default
    try:
        if not DAY_RE.match(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name} must be a date YYYY-MM-DD, not {value[:40]!r}") from None


def _month_param(req: falcon.Request, name: str, default: str) -> str:
    value = req.get_param(name)
    if value is None:
        return default
    if not MONTH_RE.match(value):
        raise BadRequest(f"{name} must be a month YYYY-MM, not {value[:40]!r}")
    return value


class PeriodsResource:
    """GET the edge's statistics per local day or month, oldest first, both bounds included."""

    def __init__(self, api, kind: str):
        self.api = api
        self.kind = kind

    def today(self) -> date:
        tz = ZoneInfo(self.api.settings.timezone)
        return datetime.fromtimestamp(self.api.clock_ms() / 1000, tz).date()

    def fetch(self, source, site: str, device: str, lo: str, hi: str, names: list[str]) -> list[dict]:
        """The period objects of one device, or of every device of the site (`names`) summed (`all`), from one
        source."""
        if device != ALL_DEVICES:
            return source.periods(site, self.kind, lo, hi, device)
        return sum_periods((source.periods(site, self.kind, lo, hi, name) for name in names),
                           PERIOD_FIELD[PERIOD_COLUMN[self.kind]])

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = requested_site(self.api, req)
        device, names = devices_read(req, self.api, site)
        today = self.today()
        if self.kind == DAILY:
            last = _day_param(req, "to", today)
            first = _day_param(req, "from", last - timedelta(days=29) if last.toordinal() > 29 else date.min)
            lo, hi = first.isoformat(), last.isoformat()
        else:
            hi = _month_param(req, "to", today.isoformat()[:7])
            lo = _month_param(req, "from", _month_key(max(_month_index(hi) - 11, _month_index("0001-01"))))
        if lo > hi:  # an empty period
            answer(resp, [], self.api.sources.answer(site, lambda s: True, what="statistics")[1])
            return
        rows, source = self.api.sources.answer(site, lambda s: self.fetch(s, site, device, lo, hi, names),
                                               what="statistics")
        answer(resp, rows, source)


class SevenDaysResource:
    """GET energy per local day for the last 7 days, oldest first: what the controller reported at the
    end of each day (its consumed_today / generated_today), else what the edge integrated; null for a day
    without data."""

    def __init__(self, api):
        self.api = api
        self.periods = PeriodsResource(api, DAILY)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        site = requested_site(self.api, req)
        _, names = devices_read(req, self.api, site)
        today = self.periods.today()
        days = [(today - timedelta(days=n)).isoformat() for n in range(6, -1, -1)]
        per_device, source = self.api.sources.answer(
            site, lambda s: [s.periods(site, DAILY, days[0], days[-1], name) for name in names], what="statistics")
        answer(resp, sum_days(self.energy(days, rows) for rows in per_device), source)

    @staticmethod
    def energy(days: list[str], rows: list[dict]) -> dict[str, dict]:
        """One device's energy per day, from its statistics objects."""
        by_day = {r["date"]: r for r in rows}
        out = {}
        for day in days:
            r = by_day.get(day)
            if r is None or not (r["samples"] or r["device_consumed_kwh"] is not None):
                out[day] = {"consumed_today": None, "generated_today": None}
                continue
            consumed = r["device_consumed_kwh"] if r["device_consumed_kwh"] is not None else r["energy_consumed_kwh"]
            generated = r["device_generated_kwh"] if r["device_generated_kwh"] is not None else r["energy_generated_kwh"]
            out[day] = {"consumed_today": r3(consumed), "generated_today": r3(generated)}
        return out


SEVEN_DAYS_SCHEMA = {
    "type": "object",
    "description": "7 keys, the local days YYYY-MM-DD oldest first",
    "minProperties": 7, "maxProperties": 7,
    "additionalProperties": obj({"consumed_today": {**NULLABLE_NUMBER, "description": "kWh"},
                                 "generated_today": {**NULLABLE_NUMBER, "description": "kWh"}}),
}


def routes(api) -> list:
    day_params = tuple({"name": n, "in": "query", "required": False,
                        "description": f"{'first' if n == 'from' else 'last'} local day, included",
                        "schema": {"type": "string", "format": "date"}} for n in ("from", "to"))
    month_params = tuple({"name": n, "in": "query", "required": False,
                          "description": f"{'first' if n == 'from' else 'last'} local month, included",
                          "schema": {"type": "string", "pattern": MONTH_RE.pattern}} for n in ("from", "to"))
    return [
        *object_routes(api, DAILY_DEVICE, "/statistics/daily", "Device statistics of today", tag="statistics"),
        *object_routes(api, ENERGY, "/statistics/energy", "Device energy counters", tag="statistics"),
        Route("/statistics/energy/7days", SevenDaysResource(api), "Energy of the last 7 local days",
              SEVEN_DAYS_SCHEMA, tag="statistics", params=(SITE_PARAM, DEVICE_OR_ALL_PARAM), errors=(400, 404, 503),
              description="Per local day: what the controller reported at the end of the day (its "
                          "consumed_today, generated_today), else what the edge integrated; null without data."),
        Route("/statistics/daily", PeriodsResource(api, DAILY), "Statistics per local day (computed on the edge)",
              {"type": "array", "items": stat_schema("date", DAY_RE.pattern)}, tag="statistics",
              params=(SITE_PARAM, DEVICE_OR_ALL_PARAM, *day_params), errors=(400, 404, 503),
              description="One object per local day with data, oldest first; default the last 30 days."),
        Route("/statistics/monthly", PeriodsResource(api, MONTHLY),
              "Statistics per local month (computed on the edge)",
              {"type": "array", "items": stat_schema("month", MONTH_RE.pattern)}, tag="statistics",
              params=(SITE_PARAM, DEVICE_OR_ALL_PARAM, *month_params), errors=(400, 404, 503),
              description="One object per local month with data, oldest first; default the last 12 months."),
    ]
