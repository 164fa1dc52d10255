"""Simulated charge controllers: the physics (`model`, `rover`) and the Modbus units serving them (`slave`, `serving`)."""
