"""The InfluxDB schema is documented in the repository, generated from what the replicator writes."""

from __future__ import annotations

import re

from replicator import influx_schema, points
from tests.support import REPO

DOC = REPO / "docs" / "influx-schema.md"


def test_the_influx_schema_doc_is_generated_from_the_catalogue_and_the_renderer():
    # Regenerate with `python -m replicator.influx_schema > docs/influx-schema.md`.
    assert DOC.read_text() == influx_schema.markdown()


def test_the_doc_names_every_measurement_field_and_type_the_replicator_writes():
    text = DOC.read_text()
    sections = dict(re.findall(r"^## `([^`]+)`\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    written = points.field_types()
    assert set(sections) == set(written)
    names = {"float": points.FLOAT, "boolean": points.BOOLEAN, "string": points.STRING, "integer": "integer"}
    for measurement, fields in written.items():
        documented = {m[0]: names[m[1]] for m in re.findall(r"^\| `([^`]+)` \| (\w+) \|", sections[measurement], re.M)}
        assert documented == fields, measurement
    assert "| `real_rated_voltage` | float | V |" in sections["batteryStatus"]
    assert "`site`" in text and "`device`" in text  # the tags


def test_the_readme_links_the_schema_doc_that_exists():
    readme = (REPO / "README.md").read_text()
    assert "shared/spec/influx.md" not in readme
    assert "(docs/influx-schema.md)" in readme and DOC.exists()


def test_the_doc_describes_the_heartbeat_as_replicator_heartbeat_writes_it():
    from replicator import heartbeat

    text = DOC.read_text().split("## Heartbeat: `edge_health`", 1)[1]
    site, device = text.split("and one point per device", 1)
    for part, fields in ((site, heartbeat.SITE_FIELDS), (device, heartbeat.DEVICE_FIELDS)):
        assert re.findall(r"^\| `([^`]+)` \| (\w+) \|", part, re.M) == [(n, t) for n, t, _ in fields]
