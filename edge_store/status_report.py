"""`kammthaar status`: what a technician wants to know at a glance."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from .health_figures import database_bytes, free_bytes
from .catalogue import EPEVER_TRACER, MODELS, Catalogue
from .registers import CLOCK, LIVE, SETTINGS, STATS
from .rollups import META_TIMEZONE, read_meta
from .store import Store, now_ms
from .write_failures import read_state

CLOCK_FIELD = EPEVER_TRACER.field("controller", "current_device_time")


def _when(ts_ms: int, tz: ZoneInfo) -> str:
    local = datetime.fromtimestamp(ts_ms / 1000, timezone.utc).astimezone(tz)
    age_s = max(0, (now_ms() - ts_ms) // 1000)
    return f"{local:%Y-%m-%d %H:%M:%S %Z} ({age_s} s ago)"


def report(store: Store, cfg) -> str:
    """The summary as text: newest samples, counters, recent errors, file size."""
    tz = ZoneInfo(cfg.site.timezone)
    lines = [f"site {cfg.site.id}, store {store.path}"]
    try:
        lines.append(f"database size: {database_bytes(store.path) / 1e6:.1f} MB (cap {cfg.store.max_size_mb} MB)")
    except OSError:
        pass
    lines.extend(writes_lines(store.path, cfg, tz))
    device_errors = store.device_errors()
    for device in cfg.devices:
        model = MODELS[device.model]
        errors = device_errors.get(device.name, {})
        settings = store.latest(SETTINGS, device.name) if model.reported_model else None
        reported = settings and settings[model.reported_model]  # what the device says it is (a Rover does)
        lines.append(f"device {device.name} ({device.model}{f' {reported}' if reported else ''}, "
                     f"unit {device.unit} on {device.port}): errors "
                     + (", ".join(f"{k}={v}" for k, v in sorted(errors.items())) or "none"))
        live = store.latest(LIVE, device.name)
        if live is None:
            lines.append("live: no sample yet")
        else:
            lines.append(f"live: {_when(live['ts_ms'], tz)}"
                         f"{'' if live['ntp_synced'] else ' [clock not NTP-synchronised]'}\n{live_lines(live, model)}")
        for group in (g for g in model.groups() if g != LIVE):
            row = store.latest(group, device.name)
            lines.append(f"{group}: " + (_when(row["ts_ms"], tz) if row else "not read yet")
                         + (f", device clock {row[CLOCK_FIELD.column]}" if row and group == CLOCK else ""))
    lines.append(f"rows: live {store.rows_kept(LIVE)}, statistics {store.rows_kept(STATS)}, "
                 f"settings {store.rows_kept(SETTINGS)}, clock {store.rows_kept(CLOCK)}")
    lines.append(rollups_line(store, cfg))
    lines.extend(alert_lines(store, tz))
    counters = store.counters()
    if counters:
        lines.append("counters: " + ", ".join(f"{k}={v}" for k, v in sorted(counters.items())))
    errors = store.errors(limit=5)
    if errors:
        lines.append("recent errors:")
        lines.extend(f"  {_when(e['ts_ms'], tz)} {e['device']} {e['kind']} {e['block']}: {e['detail']}" for e in errors)
    lines.extend(replication_lines(store, cfg, tz))
    return "\n".join(lines)


def live_lines(live: dict, model: Catalogue) -> str:
    """A live row's figures and codes in two lines, as the device's model decodes them."""
    def figure(obj: str, key: str, spec: str = "") -> str:
        f = model.field(obj, key)
        return f"{live[f.column]:{spec}} {model.unit(f)}".rstrip()

    codes = ", ".join(f.decode()(live[f.column]) for f in model.summary if live[f.column] is not None)
    return (f"  battery {figure('battery', 'voltage', '.2f')} {figure('battery', 'current', '+.2f')} "
            f"{figure('battery', 'state_of_charge')} {figure('battery', 'temperature', '.1f')}"
            + (f" ({codes})" if codes else "") + "\n"
            f"  pv {figure('solar', 'voltage', '.2f')} {figure('solar', 'power', '.1f')}; "
            f"load {figure('load', 'power', '.1f')}")


def writes_lines(path: str, cfg, tz: ZoneInfo) -> list[str]:
    """Free space against the floor, and whether the collector can write (its `<store>-writes` file)."""
    lines = []
    try:
        lines.append(f"filesystem: {free_bytes(path) / 1e6:.1f} MB free (floor {cfg.store.min_free_mb} MB)")
    except OSError:
        pass
    state = read_state(path)
    if state is None:
        lines.append("store writes: no collector state yet")
    elif state.get("failing"):
        lines.append(f"store writes: !! FAILING since {_when(state['since_ms'], tz)}: "
                     f"{state['episode_failures']} failed writes; the last: {state['last_error']}")
    else:
        lines.append(f"store writes: ok ({state['failed_writes']} failed since the collector started)")
    return lines


def rollups_line(store: Store, cfg) -> str:
    """In which zone the daily statistics are built, or why they wait for a rebuild."""
    with store.db.reading("could not read the rollups' zone") as conn:
        built = read_meta(conn, META_TIMEZONE)
    if built is None:
        return "rollups: none yet"
    if built == cfg.site.timezone:
        return f"rollups: days of {built}"
    return (f"rollups: !! WAITING FOR A REBUILD ({built}; [site] timezone is {cfg.site.timezone}): "
            "restart the collector, or run `kammthaar rollups rebuild`")


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds} s"


def replication_lines(store: Store, cfg, tz: ZoneInfo) -> list[str]:
    """The replicator's figures: backlog, oldest unsent row, last success and error, counters."""
    from .outbox import Outbox

    cloud = cfg.cloud
    outbox = Outbox(store.db)  # the same file, through the same Database
    try:
        s = outbox.summary()
    finally:
        outbox.close()
    target = cloud.url or "no [cloud] url: not replicating"
    lines = [f"replication: {target}"]
    if s["blocked"]:
        lines.append(f"  !! REPLICATION STOPPED since {_when(s['blocked_ms'], tz)}: {s['blocked']}")
    by_stream = ", ".join(f"{k} {v}" for k, v in s["backlog_by_stream"].items() if v)
    lines.append(f"  backlog: {s['backlog_rows']} rows" + (f" ({by_stream})" if by_stream else "")
                 + (f", oldest unsent sample {_age(s['oldest_unsent_age_s'])} old"
                    if s["oldest_unsent_age_s"] is not None else ""))
    lines.append("  last success: " + (_when(s["last_success_ms"], tz) if s["last_success_ms"] else "never"))
    if s["last_error_ms"]:
        status = f"HTTP {s['last_status']}" if s["last_status"] is not None else "no answer"
        lines.append(f"  last error: {_when(s['last_error_ms'], tz)} ({status}): {s['last_error']}")
    lines.append(f"  points sent {s['points_sent']}, bytes sent {s['bytes_sent']}, dead letters {s['dead_letters']}, "
                 f"dropped rows {s['dropped_rows']}" + (f", skipped as too old {s['skipped_old']}" if s["skipped_old"] else ""))
    lines.extend(reconciliation_lines(store, tz))
    return lines


def reconciliation_lines(store: Store, tz: ZoneInfo) -> list[str]:
    """What the checks of the cloud found: its completeness over the last 30 days, the last repair."""
    from .reconcile_log import WINDOW_DAYS, ReconcileLog

    r = ReconcileLog(store.db).summary()
    if r["unsupported"]:
        return [f"  !! RECONCILIATION OFF: {r['unsupported']}"]
    if r["completeness"] is None:
        return ["  reconciliation: no day checked yet (`kammthaar reconcile`)"]
    lines = [f"  cloud completeness {100 * r['completeness']:.2f} % over the last {WINDOW_DAYS} days "
             f"({r['days_checked']} days checked, {r['points_missing']} points were missing, "
             f"{r['hours_repaired']} ranges repaired"
             + (f", {r['hours_still_differing']} STILL DIFFER" if r["hours_still_differing"] else "") + ")"]
    if r["last_pass_ms"]:
        lines.append(f"  last reconciliation: {_when(r['last_pass_ms'], tz)}, "
                     + ("the cloud matches" if r["last_pass_ok"] else "!! the cloud still differs"))
    if r["last_repaired"]:
        day, ranges = r["last_repaired"]
        shown = ranges.split("\n")
        lines.append(f"  last repair ({day}): " + "; ".join(shown[:3])
                     + (f" and {len(shown) - 3} more" if len(shown) > 3 else ""))
    return lines


def alert_lines(store: Store, tz: ZoneInfo) -> list[str]:
    """The alerts firing now (edge_store/alerts), one line each, critical ones marked."""
    from .alerts.events import list_events, read

    firing = read(store.db, "active alerts", list_events, firing_only=True)
    if not firing:
        return ["alerts: none active"]
    lines = [f"alerts: {len(firing)} active"]
    for e in firing:
        mark = "!! " if e["severity"] == "critical" else ""
        lines.append(f"  {mark}{e['severity']} {e['rule']} on {e['device']} since {_when(e['ts_ms'], tz)}: "
                     f"{e['message']}")
    return lines
