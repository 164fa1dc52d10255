"""`kammthaar publish`: the store's newest values to an MQTT broker, with Home Assistant discovery.

- `devices.py`: what Home Assistant is told about each controller of `cfg.devices`.
- `entities.py`: one Home Assistant entity per catalogue field, plus the energy totals
  the Energy dashboard needs (`device_class`/`state_class` from one table).
- `snapshot.py`: what the store holds now, read-only through edge_store/db.py.
- `link.py`: the MQTT connection (paho-mqtt 2.x): last will, TLS, reconnects.
- `publisher.py`: `publish_once()` and the loop around it.
- `commands.py`: `kammthaar publish`.

It reads the store only; it never touches the serial bus, and its read-only WAL
reads never make the collector wait.
"""
