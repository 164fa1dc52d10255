"""`kammthaar scan`: the real command against the multi-unit simulator over a socat pty pair: the units that
answer, their models told apart, the [[devices]] block to paste; a silent unit costs one timeout."""

from __future__ import annotations

import os
import pty
import subprocess
import tomllib

import pytest

from edge_store.modbus_reader import Reader
from edge_store.scan import Found, devices_toml, parse_units, probe
from tests.samples import FROZEN
from tests.support import KAMMTHAAR, REPO, clean_env, kammthaar

BUS = ["--device", "unit=1,model=epever-tracer", "--device", "unit=2,model=epever-tracer",
       "--device", "unit=3,model=renogy-rover", "--device", "unit=4,model=renogy-rover,silent"]


@pytest.fixture
def bus(serial_pair, start_simulator):
    start_simulator("--port", serial_pair.device, *FROZEN, *BUS)
    return serial_pair.client


def test_scan_finds_each_unit_tells_the_models_apart_and_prints_the_block_to_paste(bus):
    done = kammthaar("scan", "--port", bus, "--units", "1-5", "--timeout-s", "0.2", env=clean_env(), timeout_s=60)
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(done.stdout)["devices"] == [
        {"name": "epever-tracer-1", "model": "epever-tracer", "unit": 1, "port": bus, "baudrate": 115200},
        {"name": "epever-tracer-2", "model": "epever-tracer", "unit": 2, "port": bus, "baudrate": 115200},
        {"name": "renogy-rover-3", "model": "renogy-rover", "unit": 3, "port": bus, "baudrate": 115200},
    ]
    assert "reports 'RNG-CTRL-RVR40'" in done.stdout and "3 of 5 unit ids answered" in done.stdout
    # stderr is no terminal here: a plain counter, no bar.
    assert "probed 5/5 (unit 5)" in done.stderr and "\r" not in done.stderr


def test_on_a_terminal_scan_draws_a_progress_bar_and_no_unit_answering_fails(bus):
    master, slave = pty.openpty()
    try:
        done = subprocess.run([*KAMMTHAAR, "scan", "--port", bus, "--units", "5,6", "--timeout-s", "0.1"],
                              stdout=subprocess.PIPE, stderr=slave, env=clean_env(), cwd=REPO, timeout=60, text=True)
        os.close(slave)
        slave = -1
        seen = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal's other end is closed: all was read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert done.returncode == 1 and "0 of 2 unit ids answered" in done.stdout
    text = seen.decode()
    assert "\r[" in text and "2/2 unit 6" in text and "no unit answered" in text


def test_a_silent_unit_costs_one_request_and_a_present_one_at_most_two(bus):
    reader = Reader(bus, timeout_s=0.2, retries=0)
    try:
        costs = {}
        for unit in (4, 3, 1):
            before = reader.requests_sent
            costs[unit] = (probe(reader, unit, sleep=lambda s: None), reader.requests_sent - before)
    finally:
        reader.close()
    assert costs[4] == (None, 1)
    assert costs[3] == (Found(3, "renogy-rover", "RNG-CTRL-RVR40"), 1)
    assert costs[1] == (Found(1, "epever-tracer"), 2)  # the Rover's request first: an exception


def test_units_parse_as_lists_and_ranges_and_a_bad_one_names_the_flag():
    assert parse_units("1-4,16, 17,255") == (1, 2, 3, 4, 16, 17, 255)
    for bad in ("0-3", "5-2", "x", "256", ""):
        with pytest.raises(Exception, match="--units"):
            parse_units(bad)
    done = kammthaar("scan", "--port", "/dev/null", "--units", "9-300", env=clean_env())
    assert done.returncode == 2 and "--units" in done.stderr


def test_the_block_names_each_device_once_and_notes_a_unit_of_no_known_model():
    text = devices_toml([Found(1, "epever-tracer"), Found(7, None), Found(255, "renogy-rover", "ML2440")],
                        port='/dev/serial/by-id/usb-"x"', baudrate=9600)
    devices = tomllib.loads(text)["devices"]
    assert [d["name"] for d in devices] == ["epever-tracer-1", "renogy-rover-255"]
    assert devices[0]["port"] == '/dev/serial/by-id/usb-"x"' and "# unit 7 answered" in text
