"""Several units and models on one simulated bus (`kammthaar simulate --device ...`), read by the real reader
over a socat pty pair: each unit answers with its own model and seed; silent and slow units."""

from __future__ import annotations

import argparse

import pytest

from edge_store.catalogue import MODELS
from edge_store.modbus_reader import Reader
from edge_store.errors import ModbusError
from edge_store.registers import LIVE, decode_block, registers_of
from edge_store.simulator.options import add_arguments, options_from_args
from tests.samples import FROZEN, SEED, expected_unit_values

UNITS = {1: "epever-tracer", 2: "epever-tracer", 3: "renogy-rover"}
DEVICES = [arg for unit, model in UNITS.items() for arg in ("--device", f"unit={unit},model={model}")]


def _reader(port: str, unit: int, model: str, timeout_s: float = 0.5) -> Reader:
    return Reader(port, unit=unit, baudrate=115200, timeout_s=timeout_s, retries=1, model=MODELS[model])


def test_the_reader_gets_from_each_unit_on_one_bus_what_that_unit_serves(serial_pair, start_simulator):
    start_simulator("--port", serial_pair.device, *FROZEN, *DEVICES)
    served = {unit: expected_unit_values(model, int(SEED) + unit - 1, unit) for unit, model in UNITS.items()}
    assert served[1]["pv_power"] != served[2]["pv_power"]  # their own seeds: two different units
    for unit, model in UNITS.items():
        catalogue = MODELS[model]
        reader = _reader(serial_pair.client, unit, model)
        try:
            for group in catalogue.groups():
                got = reader.read_group(group)
                assert got.values is not None, (unit, group, got.errors)
                want = {r.name: served[unit][r.name] for r in registers_of(group, catalogue.registers)}
                assert {k: got.values[k] for k in want} == want, (unit, group)
                assert got.values == {**dict.fromkeys(got.values), **catalogue.derive(group, dict(want))}
        finally:
            reader.close()
    assert served[3]["device_model"] == "RNG-CTRL-RVR40" and served[3]["device_address"] == 3


def _read_live(port: str, unit: int, model: str, timeout_s: float = 0.5):
    reader = _reader(port, unit, model, timeout_s)  # one owner of the port at a time, as on a bus
    try:
        return reader.read_group(LIVE)
    finally:
        reader.close()


def test_a_silent_unit_never_answers_and_a_slow_one_answers_late(serial_pair, start_simulator):
    start_simulator("--port", serial_pair.device, *FROZEN, "--device", "unit=1,model=epever-tracer",
                    "--device", "unit=4,model=renogy-rover,silent", "--device", "unit=5,model=epever-tracer,slow=0.4")
    port = serial_pair.client
    silent = _read_live(port, 4, "renogy-rover")
    assert silent.values is None and {e.kind for e in silent.errors} == {"timeout"}
    assert _read_live(port, 1, "epever-tracer").values is not None  # the bus is not stalled by it
    assert _read_live(port, 5, "epever-tracer", timeout_s=2.0).values is not None  # waited for
    impatient = _read_live(port, 5, "epever-tracer", timeout_s=0.1)
    assert impatient.values is None and impatient.errors[0].kind == "timeout"


def _options(*flags: str):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return options_from_args(parser.parse_args(["--port", "/dev/null", *flags]), parser)


def test_units_get_their_own_seed_and_faults_and_one_epever_is_served_without_device_flags():
    (one,) = _options("--seed", "7", "--unit", "3", "--slow", "0.2").units
    assert (one.unit, one.model, one.seed, one.silent, one.slow) == (3, "epever-tracer", 7, False, 0.2)
    units = _options("--seed", "7", "--slow", "0.1", "--device", "unit=2,model=renogy-rover",
                     "--device", "unit=9,model=epever-tracer,seed=1,slow=0.8,silent").units
    assert [(u.unit, u.model, u.seed, u.silent, u.slow) for u in units] == [
        (2, "renogy-rover", 8, False, 0.1), (9, "epever-tracer", 1, True, 0.8)]


@pytest.mark.parametrize("spec, said", [
    ("unit=2,model=victron", "victron"),
    ("model=renogy-rover", "no unit"),
    ("unit=2,colour=red", "colour=red"),
    ("unit=300", "1..255"),
    ("unit=2,slow=-1", "slow"),
])
def test_a_bad_device_flag_ends_in_a_usage_error_naming_it(spec, said, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _options("--device", spec)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--device" in err and said in err


def test_a_unit_given_twice_is_refused(capsys):
    with pytest.raises(SystemExit):
        _options("--device", "unit=2", "--device", "unit=2,model=renogy-rover")
    assert "unit 2 is given twice" in capsys.readouterr().err


def test_a_late_answer_keeps_its_own_unit_id_and_is_never_taken_for_anothers(serial_pair, start_simulator):
    # One model, one block: only the unit id in an answer tells unit 2's late answer from unit 1's.
    start_simulator("--port", serial_pair.device, *FROZEN, "--device", "unit=1,model=epever-tracer,slow=0.3",
                    "--device", "unit=2,model=epever-tracer,slow=0.2", "--device", "unit=3,model=epever-tracer,silent")
    impatient = Reader(serial_pair.client, unit=2, timeout_s=0.05, retries=0)
    block = next(b for b in impatient.plan(LIVE) if b.start == 0x3100)  # values that differ by unit
    try:
        with pytest.raises(ModbusError):
            impatient.read_block(block)  # unit 2 answers later, while unit 1 is asked
        impatient.unit = 3
        with pytest.raises(ModbusError):
            impatient.read_block(block)  # a request nobody answers meanwhile loses nothing
    finally:
        impatient.close()
    patient = Reader(serial_pair.client, unit=1, timeout_s=1.5, retries=0)
    try:
        words = patient.read_block(block)
    finally:
        patient.close()
    served = expected_unit_values("epever-tracer", int(SEED), 1)
    assert decode_block(block, words) == {r.name: served[r.name] for r in block.registers}
