"""A simulated EPEVER Tracer: the physics (`model`) and a Modbus slave serving it (`server`)."""
