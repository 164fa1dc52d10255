"""[[devices]]: several devices on one or more buses, declared as data; one clear line for each mistake."""

import pytest

from edge_store import config
from edge_store.devices import buses
from edge_store.errors import ConfigError
from tests.support import clean_env, kammthaar

THREE = '''
[modbus]
port = "/dev/epever"
inter_request_ms = 30
probe_max_s = 20

[[devices]]
name = "roof"
model = "epever-tracer"
unit = 1

[[devices]]
name = "side"
model = "epever-tracer"
unit = 2
interval_s = 2.5

[[devices]]
name = "rover"
model = "epever-tracer"
unit = 1
port = "/dev/ttyUSB1"
baudrate = 9600
'''


def write(tmp_path, text):
    path = tmp_path / "k.toml"
    path.write_text(text)
    return str(path)


def test_devices_are_read_in_order_with_the_bus_defaults(tmp_path):
    cfg = config.load(write(tmp_path, THREE), environ={"KAMMTHAAR_MODBUS_RETRIES": "5"})
    roof, side, rover = cfg.devices
    assert [d.name for d in cfg.devices] == ["roof", "side", "rover"]
    assert (str(roof.port), roof.unit, roof.baudrate, roof.interval_s) == ("/dev/epever", 1, 115200, 5.0)
    assert (side.unit, side.interval_s) == (2, 2.5)
    assert (str(rover.port), rover.baudrate) == ("/dev/ttyUSB1", 9600)
    assert all(d.retries == 5 for d in cfg.devices)  # an environment override reaches every device
    assert cfg.modbus.inter_request_ms == 30 and cfg.modbus.probe_max_s == 20
    assert {port: [d.name for d in group] for port, group in buses(cfg.devices).items()} == {
        "/dev/epever": ["roof", "side"], "/dev/ttyUSB1": ["rover"]}
    assert cfg.default_device == "roof"


def test_without_devices_one_epever_named_by_modbus_device(tmp_path):
    cfg = config.load(write(tmp_path, '[modbus]\ndevice = "tracer-2"\nunit = 7\n'),
                      environ={"KAMMTHAAR_MODBUS_PORT": "/dev/ttyS3"})
    (only,) = cfg.devices
    assert (only.name, only.model, only.unit, str(only.port)) == ("tracer-2", "epever-tracer", 7, "/dev/ttyS3")
    assert cfg.default_device == "tracer-2"
    assert config.load(None, environ={}).modbus.probe_max_s == 60


def test_default_device_names_a_configured_device(tmp_path):
    assert config.load(write(tmp_path, THREE + '[api]\ndefault_device = "rover"\n'), environ={}).default_device == "rover"
    with pytest.raises(ConfigError, match=r"\[api\] default_device = 'attic'.*roof, side, rover"):
        config.load(write(tmp_path, THREE + '[api]\ndefault_device = "attic"\n'), environ={})


@pytest.mark.parametrize("entry,named", [
    ('name = "Roof"\nmodel = "epever-tracer"\nunit = 3', "entry 4 ('Roof'): name = 'Roof'"),
    ('name = "attic"\nmodel = "victron"\nunit = 3', "entry 4 ('attic'): model = 'victron'"),
    ('name = "attic"\nmodel = "epever-tracer"', "entry 4 ('attic'): unit is required"),
    ('name = "attic"\nmodel = "epever-tracer"\nunit = 0', "[devices] unit = 0 ([[devices]] entry 4 ('attic')"),
    ('name = "attic"\nmodel = "epever-tracer"\nunit = 3\nbaud = 9600', "entry 4 ('attic'): unknown key baud"),
    ('name = "attic"\nmodel = "epever-tracer"\nunit = 3\ninterval_s = "fast"', "[devices] interval_s = 'fast'"),
    ('name = "attic"\nmodel = "epever-tracer"\nunit = 3\nport = "http://x:1"', "[devices] port = 'http://x:1'"),
    ('name = "roof"\nmodel = "epever-tracer"\nunit = 3', "entry 4: name = 'roof' is already the name of entry 1"),
    ('name = "attic"\nmodel = "epever-tracer"\nunit = 2', "entry 4 ('attic'): unit = 2 on /dev/epever is already taken by 'side'"),
    ('name = "attic"\nmodel = "epever-tracer"\nunit = 3\nbaudrate = 9600', "baudrate = 9600 differs from the 115200 of 'roof'"),
])
def test_a_wrong_device_entry_names_the_entry_and_the_key(tmp_path, entry, named):
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, THREE + "\n[[devices]]\n" + entry + "\n"), environ={})
    assert named in str(err.value)


def test_devices_must_be_an_array_of_tables(tmp_path):
    with pytest.raises(ConfigError, match="must be an array of tables"):
        config.load(write(tmp_path, '[devices]\nname = "roof"\n'), environ={})


def test_cli_config_show_prints_the_devices_it_can_read_back(tmp_path):
    proc = kammthaar("-c", write(tmp_path, THREE), "config", "show", env=clean_env(), timeout_s=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("[[devices]]") == 3 and 'name = "rover"' in proc.stdout
    shown = tmp_path / "shown.toml"
    shown.write_text(proc.stdout.split("\n", 1)[1])
    assert config.load(str(shown), environ={}).devices == config.load(str(tmp_path / "k.toml"), environ={}).devices
    bad = kammthaar("-c", write(tmp_path, THREE + '\n[[devices]]\nname = "x"\nmodel = "epever-tracer"\nunit = 300\n'),
                    "config", "show", env=clean_env(), timeout_s=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "entry 4 ('x')" in bad.stderr
