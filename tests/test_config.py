"""Config: defaults, file, environment overrides, and one clear line for each mistake."""

import os
from pathlib import Path

import pytest

from edge_store import config
from edge_store.errors import ConfigError
from tests.support import kammthaar

README = Path(__file__).resolve().parents[1] / "README.md"


def write(tmp_path, text):
    path = tmp_path / "k.toml"
    path.write_text(text)
    return str(path)


def test_no_file_gives_the_demo_defaults():
    cfg = config.load(None, environ={})
    assert cfg.modbus.port == "rtu+tcp://127.0.0.1:5020"
    assert cfg.modbus.baudrate == 115200 and cfg.modbus.unit == 1
    assert cfg.modbus.interval_s == 5.0 and cfg.modbus.slow_interval_s == 60.0
    assert cfg.modbus.device == "epever"
    assert cfg.store.synchronous == "NORMAL"
    assert cfg.site.id  # the host name
    assert cfg.site.timezone


def test_file_values_and_env_overrides(tmp_path):
    path = write(tmp_path, '[modbus]\nport = "/dev/ttyUSB0"\ninterval_s = 0.1\n[site]\nid = "van-1"\ntimezone = "Europe/Paris"\n')
    cfg = config.load(path, environ={"KAMMTHAAR_MODBUS_BAUDRATE": "9600", "KAMMTHAAR_STORE_SYNCHRONOUS": "full"})
    assert cfg.modbus.port == "/dev/ttyUSB0"
    assert cfg.modbus.interval_s == 0.1
    assert cfg.modbus.baudrate == 9600
    assert cfg.store.synchronous == "FULL"
    assert cfg.site.id == "van-1"


def test_config_file_from_environment_variable(tmp_path):
    path = write(tmp_path, '[modbus]\ndevice = "tracer-2"\n')
    assert config.load(None, environ={"KAMMTHAAR_CONFIG": path}).modbus.device == "tracer-2"


@pytest.mark.parametrize("text,named", [
    ('[modbus]\nbaud = 9600\n', "[modbus] baud"),
    ('[modbuss]\nport = "x"\n', "[modbuss]"),
    ('[modbus]\ninterval_s = "fast"\n', "[modbus] interval_s"),
    ('[modbus]\nbaudrate = 12345\n', "[modbus] baudrate"),
    ('[modbus]\nport = "http://x:1"\n', "[modbus] port"),
    ('[modbus]\nunit = 0\n', "[modbus] unit"),
    ('[store]\nsynchronous = "OFF"\n', "[store] synchronous"),
    ('[store]\nretention_days = 1.5\n', "[store] retention_days"),
    ('[site]\ntimezone = "Mars/Olympus"\n', "[site] timezone"),
    ('[modbus\n', "not valid TOML"),
])
def test_bad_file_names_the_key(tmp_path, text, named):
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text), environ={})
    assert named in str(err.value)


def test_bad_environment_variable_names_itself():
    with pytest.raises(ConfigError, match="KAMMTHAAR_MODBUS_BAUD"):
        config.load(None, environ={"KAMMTHAAR_MODBUS_BAUD": "9600"})
    with pytest.raises(ConfigError, match=r"\[modbus\] timeout_s"):
        config.load(None, environ={"KAMMTHAAR_MODBUS_TIMEOUT_S": "-1"})


def run_cli(*args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMMTHAAR_")}
    env.update(env_extra or {})
    return kammthaar(*args, env=env, timeout_s=60)


def test_cli_bad_key_is_one_line_exit_2_no_traceback(tmp_path):
    path = write(tmp_path, '[modbus]\nbaud = 9600\n')
    proc = run_cli("-c", path, "config", "show")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "[modbus] baud" in proc.stderr and "baudrate" in proc.stderr


def test_cli_config_show_prints_the_effective_config(tmp_path):
    path = write(tmp_path, '[modbus]\nport = "/dev/ttyXRUSB0"\n')
    proc = run_cli("-c", path, "config", "show", env_extra={"KAMMTHAAR_MODBUS_UNIT": "3"})
    assert proc.returncode == 0, proc.stderr
    assert 'port = "/dev/ttyXRUSB0"' in proc.stdout
    assert "unit = 3" in proc.stdout
    # What it prints is itself a valid config.
    again = config.load(write(tmp_path, proc.stdout.split("\n", 1)[1]), environ={})
    assert again.modbus.unit == 3


def test_readme_settings_table_matches_the_declared_settings():
    text = README.read_text()
    for s in config.SETTINGS:
        assert f"`[{s.section}] {s.key}`" in text and s.env in text, f"README lacks [{s.section}] {s.key}"


def test_readme_settings_block_is_generated_from_the_settings():
    text = README.read_text()
    block = text.split("<!-- settings:begin", 1)[1].split("-->", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert block.strip() == config.settings_table().strip()
