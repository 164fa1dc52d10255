"""Row ids of the sample tables: dense (AUTOINCREMENT) but for the rows a prune deleted out of id order,
which `sample_id_gaps` records, so a backlog is a difference of ids, never a count over the table."""

from __future__ import annotations

# The first row above an id, and the table's id span (min and max apart: each alone is one lookup).
FIRST_ABOVE = "SELECT ts_ms, id FROM {t} WHERE id > ? ORDER BY id LIMIT 1"
_ID_SPAN = "SELECT (SELECT min(id) FROM {t}), (SELECT max(id) FROM {t})"
_GAPS_ABOVE = ("SELECT coalesce(sum(min(last_id, :top) - max(first_id, :low + 1) + 1), 0) FROM sample_id_gaps "
               "WHERE stream = :stream AND first_id <= :top AND last_id > :low")


def rows_above(conn, table: str, after_id: int) -> int:
    """How many rows of sample table `table` have an id above `after_id`, without counting them.

    Ids are dense (AUTOINCREMENT) but for rows deleted: below the oldest row
    left they do not matter; above it, the deleters record them in
    sample_id_gaps (`note_deleted`). So: the ids above, minus those gaps.
    """
    low, top = conn.execute(_ID_SPAN.format(t=table)).fetchone()
    if top is None or top <= after_id:
        return 0
    low = max(after_id, low - 1)
    gaps = conn.execute(_GAPS_ABOVE, {"stream": table, "low": low, "top": top}).fetchone()[0]
    return top - low - gaps


def note_deleted(conn, table: str, ids: list[int]) -> None:
    """Record the ids just deleted from sample table `table` that lie above the oldest row left
    (deleted out of id order), and forget the gaps that are now below it."""
    low = conn.execute(f"SELECT min(id) FROM {table}").fetchone()[0]
    if low is None:
        conn.execute("DELETE FROM sample_id_gaps WHERE stream = ?", (table,))
        return
    runs: list[list[int]] = []
    for i in sorted(i for i in ids if i > low):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    conn.executemany("INSERT INTO sample_id_gaps (stream, first_id, last_id) VALUES (?, ?, ?)",
                     [(table, a, b) for a, b in runs])
    conn.execute("DELETE FROM sample_id_gaps WHERE stream = ? AND last_id < ?", (table, low))
