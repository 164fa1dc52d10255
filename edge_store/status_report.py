"""`kammthaar status`: what a technician wants to know at a glance."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from .registers import CLOCK, LIVE, SETTINGS, STATS
from .status import battery_status, charging_status
from .store import Store, now_ms


def _when(ts_ms: int, tz: ZoneInfo) -> str:
    local = datetime.fromtimestamp(ts_ms / 1000, timezone.utc).astimezone(tz)
    age_s = max(0, (now_ms() - ts_ms) // 1000)
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({age_s} s ago)"


def report(store: Store, cfg) -> str:
    """The summary as text: newest samples, counters, recent errors, file size."""
    tz = ZoneInfo(cfg.site.timezone)
    lines = [f"site {cfg.site.id}, device {cfg.modbus.device}, store {store.path}"]
    try:
        size = sum(os.path.getsize(store.path + ext) for ext in ("", "-wal") if os.path.exists(store.path + ext))
        lines.append(f"database size: {size / 1e6:.1f} MB (cap {cfg.store.max_size_mb} MB)")
    except OSError:
        pass
    live = store.latest(LIVE)
    if live is None:
        lines.append("live: no sample yet")
    else:
        stage = charging_status(live["charging_equipment_status"])["charging_status"]
        batt = battery_status(live["battery_status"])["battery_status"]
        lines.append(
            f"live: {_when(live['ts_ms'], tz)}{'' if live['ntp_synced'] else ' [clock not NTP-synchronised]'}\n"
            f"  battery {live['battery_voltage']:.2f} V {live['battery_current']:+.2f} A "
            f"{live['state_of_charge']} % {live['battery_temperature']:.1f} °C ({batt}, {stage})\n"
            f"  pv {live['pv_voltage']:.2f} V {live['pv_power']:.1f} W; load {live['load_power']:.1f} W"
        )
    for group in (STATS, SETTINGS, CLOCK):
        row = store.latest(group)
        lines.append(f"{group}: " + (_when(row["ts_ms"], tz) if row else "not read yet")
                     + (f", device clock {row['device_time']}" if row and group == CLOCK else ""))
    lines.append(f"rows: live {store.count(LIVE)}, statistics {store.count(STATS)}, "
                 f"settings {store.count(SETTINGS)}, clock {store.count(CLOCK)}")
    counters = store.counters()
    if counters:
        lines.append("counters: " + ", ".join(f"{k}={v}" for k, v in sorted(counters.items())))
    errors = store.errors(limit=5)
    if errors:
        lines.append("recent errors:")
        lines.extend(f"  {_when(e['ts_ms'], tz)} {e['kind']} {e['block']}: {e['detail']}" for e in errors)
    return "\n".join(lines)
