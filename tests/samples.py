"""Plausible decoded sample values for store-level tests (what the reader would hand over)."""

LIVE_VALUES = dict(
    device_over_temperature=False, night=False, pv_voltage=18.2, pv_current=3.1, pv_power=56.42,
    battery_power=54.0, load_voltage=13.1, load_current=1.0, load_power=13.1,
    battery_temperature=-3.5, controller_temperature=25.0, state_of_charge=80,
    remote_battery_temperature=None, battery_real_rated_voltage=12.0, battery_status=0,
    charging_equipment_status=9, discharging_equipment_status=1, battery_voltage=13.1,
    battery_current=-1.5,
)
