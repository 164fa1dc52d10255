"""Store-and-forward of the edge store's rows to InfluxDB (built by the replicator issue)."""
