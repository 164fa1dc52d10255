"""Decoding against hand-computed register values, and block planning against the spec."""

import pytest

from edge_store.errors import DecodeError
from edge_store.catalogue.epever_tracer import REGISTERS as EPEVER_TRACER
from edge_store.registers import (
    CLOCK, DISCRETE, HOLDING, INPUT, LIVE, SETTINGS, STATS, Register,
    decode_block, decode_clock, decode_register, encode, plan_blocks, registers_of,
)

REG = {r.name: r for r in EPEVER_TRACER}

# (register, raw words as the device sends them, value computed by hand)
HAND_COMPUTED = [
    ("pv_voltage", [1834], 18.34),
    ("pv_current", [312], 3.12),
    ("pv_power", [0x2345, 0x0001], 745.65),            # 0x12345 = 74565 -> /100; high word non-zero
    ("battery_power", [5400, 0], 54.0),
    ("load_voltage", [1310], 13.1),
    ("load_current", [105], 1.05),
    ("load_power", [1376, 0], 13.76),
    ("battery_temperature", [0xFDF3], -5.25),          # two's complement of 525
    ("controller_temperature", [2650], 26.5),
    ("state_of_charge", [87], 87),                     # x1, a percentage
    ("remote_battery_temperature", [0xFF9C], -1.0),    # -100 -> -1.00 °C
    ("battery_real_rated_voltage", [1200], 12.0),
    ("battery_status", [0x8112], 0x8112),              # raw: decoded when read
    ("charging_equipment_status", [0x4009], 0x4009),
    ("discharging_equipment_status", [0x1001], 0x1001),
    ("battery_voltage", [1327], 13.27),
    ("battery_current", [0xFF6A, 0xFFFF], -1.5),       # -150 as s32, low word first
    ("battery_current", [0x1194, 0x0000], 45.0),
    ("device_over_temperature", [True], True),
    ("night", [False], False),
    ("maximum_pv_voltage_today", [2105], 21.05),
    ("minimum_pv_voltage_today", [0], 0.0),
    ("maximum_battery_voltage_today", [1442], 14.42),
    ("minimum_battery_voltage_today", [1218], 12.18),
    ("consumed_today", [57, 0], 0.57),
    ("consumed_this_month", [1234, 0], 12.34),
    ("consumed_this_year", [0x86A0, 0x0001], 1000.0),  # 100000 -> 1000.00 kWh
    ("total_consumed", [0x0000, 0x0002], 1310.72),     # 131072: only the high word set
    ("generated_today", [95, 0], 0.95),
    ("generated_this_month", [2500, 0], 25.0),
    ("generated_this_year", [0xFFFF, 0x0000], 655.35),
    ("total_generated", [0x0001, 0x0003], 1966.09),    # 3*65536+1 = 196609
    ("rated_charging_current", [4000], 40.0),
    ("rated_load_current", [4000], 40.0),
    ("battery_type", [2], 2),
    ("battery_capacity", [200], 200),
    ("temp_compensation_coefficient", [300], 3.0),
    ("over_voltage_disconnect", [1600], 16.0),
    ("charging_limit_voltage", [1500], 15.0),
    ("over_voltage_reconnect", [1500], 15.0),
    ("equalize_charging_voltage", [1460], 14.6),
    ("boost_charging_voltage", [1440], 14.4),
    ("float_charging_voltage", [1380], 13.8),
    ("boost_reconnect_voltage", [1320], 13.2),
    ("low_voltage_reconnect", [1260], 12.6),
    ("under_voltage_recover", [1220], 12.2),
    ("under_voltage_warning", [1200], 12.0),
    ("low_voltage_disconnect", [1110], 11.1),
    ("discharging_limit_voltage", [1060], 10.6),
    ("battery_rated_voltage", [1], 1),
    ("default_load_mode", [1], 1),
    ("equalize_duration", [120], 120),
    ("boost_duration", [120], 120),
    ("battery_discharge", [30], 30),
    ("battery_charge", [100], 100),
    ("charging_mode", [0], 0),
    # 2026-11-24 13:45:30: second|minute<<8, hour|day<<8, month|(year-2000)<<8
    ("device_time", [(45 << 8) | 30, (24 << 8) | 13, (26 << 8) | 11], "2026-11-24 13:45:30"),
]


@pytest.mark.parametrize("name,words,expected", HAND_COMPUTED)
def test_register_decodes_to_hand_computed_value(name, words, expected):
    value = decode_register(REG[name], words)
    assert value == expected
    assert type(value) is type(expected)


def test_every_register_of_the_spec_has_a_hand_computed_case():
    assert {name for name, _, _ in HAND_COMPUTED} == set(REG)


@pytest.mark.parametrize("name,words,expected", [c for c in HAND_COMPUTED if c[0] != "device_time"])
def test_encode_is_the_inverse_of_decode(name, words, expected):
    reg = REG[name]
    assert decode_register(reg, encode(reg, expected)) == expected


@pytest.mark.parametrize("name,words", [
    ("battery_voltage", [10001]),        # 100.01 V: no 12-48 V controller reports that
    ("state_of_charge", [101]),
    ("battery_current", [0x0000, 0x0001]),  # +655.36 A
    ("battery_temperature", [0x7FFF]),   # +327.67 °C
])
def test_physically_impossible_values_are_rejected(name, words):
    with pytest.raises(DecodeError, match=name):
        decode_register(REG[name], words)


def test_invalid_device_clock_is_rejected():
    with pytest.raises(DecodeError, match="device_time"):
        decode_clock([0, (31 << 8) | 10, (26 << 8) | 2])  # 31 February


def test_blocks_are_the_contiguous_reads_the_spec_recommends():
    spans = sorted((b.table, b.start, b.start + b.count - 1)
                   for g in (LIVE, STATS, SETTINGS, CLOCK) for b in plan_blocks(registers_of(g)))
    assert spans == sorted([
        (INPUT, 0x3100, 0x3111), (INPUT, 0x311A, 0x311D), (INPUT, 0x3200, 0x3202),
        (INPUT, 0x3300, 0x3313), (INPUT, 0x331A, 0x331C),
        (HOLDING, 0x9000, 0x900E), (HOLDING, 0x9013, 0x9015), (HOLDING, 0x9067, 0x9070),
        (DISCRETE, 0x2000, 0x2000), (DISCRETE, 0x200C, 0x200C),
        (INPUT, 0x3005, 0x3005), (INPUT, 0x300E, 0x300E),
    ])


def test_groups_partition_the_map():
    names = [r.name for g in (LIVE, STATS, SETTINGS, CLOCK) for r in registers_of(g)]
    assert sorted(names) == sorted(REG)


def test_decode_block_reads_each_register_at_its_offset():
    block = next(b for b in plan_blocks(registers_of(LIVE)) if b.start == 0x331A)
    assert decode_block(block, [1327, 0xFF6A, 0xFFFF]) == {"battery_voltage": 13.27, "battery_current": -1.5}
    with pytest.raises(DecodeError):
        decode_block(block, [1327])


# -- the encodings a second model needs (spec/renogy-rover.md): FC 3, high word first, bytes, ASCII ----

def _reg(kind, divisor=1):
    return Register("x", 0x0100, kind, HOLDING, LIVE, divisor)


@pytest.mark.parametrize("kind,divisor,words,expected", [
    ("u32hw", 1, [0x1501, 0xFFFF], 0x1501FFFF),           # high word at the lower address
    ("s32hw", 100, [0xFFFF, 0xFF6A], -1.5),
    ("u8hi", 1, [0x0A28], 10),                             # 0x000A: max system voltage | rated current
    ("u8lo", 1, [0x0A28], 40),
    ("sm8hi", 1, [0x8519], -5),                            # 0x0103: controller -5 °C, battery 25 °C
    ("sm8lo", 1, [0x8519], 25),
    ("sm8lo", 1, [0x0085], -5),                            # 0x85 is -5, not -123
    ("ascii16", 1, [0x2020, 0x524E, 0x472D, 0x4354, 0x524C, 0x2D52, 0x5652, 0x3430], "RNG-CTRL-RVR40"),
])
def test_encodings_of_a_second_model_decode_and_encode_back(kind, divisor, words, expected):
    reg = _reg(kind, divisor)
    assert decode_register(reg, words) == expected
    encoded = encode(reg, expected)
    assert decode_register(reg, encoded) == expected
    if kind in ("u32hw", "s32hw"):
        assert encoded == words


def test_two_values_in_one_register_are_read_in_one_block():
    hi, lo = Register("controller_temperature", 0x0103, "sm8hi", HOLDING, LIVE), \
        Register("battery_temperature", 0x0103, "sm8lo", HOLDING, LIVE)
    (block,) = plan_blocks([hi, lo])
    assert (block.start, block.count) == (0x0103, 1)
    assert decode_block(block, [0x8519]) == {"controller_temperature": -5, "battery_temperature": 25}
