"""Rollups: statistics per local day (months are a view over days) and one-minute buckets.

Kept in the transaction that stores each sample, so a statistic is never older
than the newest sample; recomputed from raw samples by a rebuild that gives the
same rows. By noun:
- rollup_settings.py: what they are built with (the site's zone, the longest integrated gap);
- periods.py: local days and months as UTC spans, the minute;
- integration.py: the trapezoid between two samples, split at day boundaries;
- sql.py: the SQL text, with named parameters;
- meta.py: rollup_meta (zone, pruned horizon) and the version stamps;
- writer.py: `Rollups`, the incremental writer the Store calls per sample;
- rebuild.py: `rebuild` and `ensure_built` (import them from there).
"""

from .meta import META_PRUNED, META_TIMEZONE, max_version, read_meta, record_prune, write_meta
from .periods import MINUTE_MS, Periods
from .rollup_settings import RollupSettings
from .sql import bucket_means_sql
from .writer import Rollups

__all__ = ["META_PRUNED", "META_TIMEZONE", "MINUTE_MS", "Periods", "RollupSettings", "Rollups", "bucket_means_sql",
           "max_version", "read_meta", "record_prune", "write_meta"]
