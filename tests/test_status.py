"""Raw status words decode to the names and misspellings existing clients read."""

from tests import status_words as status


def test_battery_status_word():
    word = (1 << 15) | (1 << 8) | (2 << 4) | 3
    assert status.battery_status(word) == {
        "wrong_identifaction_for_rated_voltage": True,
        "battery_inner_resistence_abnormal": True,
        "temperature_warning_status": "LOW_TEMP",
        "battery_status": "OVER_DISCHARGE",
    }
    assert status.battery_status(0)["battery_status"] == "NORMAL"


def test_charging_status_word():
    word = (1 << 14) | (1 << 13) | (1 << 4) | (2 << 2) | 1
    decoded = status.charging_status(word)
    assert decoded["input_voltage_status"] == "NO_INPUT_POWER"
    assert decoded["charging_status"] == "BOOST"
    assert decoded["running"] is True and decoded["fault"] is False
    assert decoded["errors"]["charging_mosfet_short_circuit"] is True
    assert decoded["errors"]["pv_input_short_circuit"] is True
    assert sum(decoded["errors"].values()) == 2
    assert len(decoded["errors"]) == 9


def test_discharging_status_word():
    word = (3 << 14) | (2 << 12) | (1 << 11) | (1 << 4) | 2
    decoded = status.discharging_status(word)
    assert decoded["input_voltage_status"] == "NO_ACCESS"
    assert decoded["output_power_load"] == "RATED"
    assert decoded["running"] is False and decoded["fault"] is True
    assert decoded["errors"]["short_circuit"] is True
    assert decoded["errors"]["output_over_voltage"] is True
    assert sum(decoded["errors"].values()) == 2
    assert len(decoded["errors"]) == 8


def test_enums():
    assert status.enum_name("battery_type", 2) == "GEL"
    assert status.enum_name("battery_type", 6) == "LIFEPO4"
    assert status.enum_name("battery_type", 12) == "LI_NICOMN_O2"
    assert status.enum_name("battery_rated_voltage", 2) == "24V"
    assert status.enum_name("charging_mode", 1) == "SOC"
    assert status.enum_name("default_load_mode", 9) == "UNKNOWN_9"
