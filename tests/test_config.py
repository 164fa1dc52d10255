"""Config: defaults, file, environment overrides, and one clear line for each mistake."""

import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge_store import config
from edge_store.errors import ConfigError
from edge_store.ports import HostPort, ModbusPort
from tests.support import kammthaar

README = Path(__file__).resolve().parents[1] / "README.md"


def write(tmp_path, text):
    path = tmp_path / "k.toml"
    path.write_text(text)
    return str(path)


def test_no_file_gives_the_demo_defaults():
    cfg = config.load(None, environ={})
    assert str(cfg.modbus.port) == "rtu+tcp://127.0.0.1:5020"
    assert cfg.modbus.baudrate == 115200 and cfg.modbus.unit == 1
    assert cfg.modbus.interval_s == 5.0 and cfg.modbus.slow_interval_s == 60.0
    assert cfg.modbus.device == "epever"
    assert cfg.store.synchronous == "NORMAL"
    assert cfg.site.id  # the host name
    assert cfg.site.timezone


def test_file_values_and_env_overrides(tmp_path):
    path = write(tmp_path, '[modbus]\nport = "/dev/ttyUSB0"\ninterval_s = 0.1\n[site]\nid = "van-1"\ntimezone = "Europe/Paris"\n')
    cfg = config.load(path, environ={"KAMMTHAAR_MODBUS_BAUDRATE": "9600", "KAMMTHAAR_STORE_SYNCHRONOUS": "full"})
    assert str(cfg.modbus.port) == "/dev/ttyUSB0"
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
    ('[cloud]\nheartbeat_s = 0.5\n', "[cloud] heartbeat_s"),
    ('[cloud]\nreconcile_every_h = -1\n', "[cloud] reconcile_every_h"),
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


def test_list_settings_from_a_toml_array_and_from_a_comma_string(tmp_path):
    path = write(tmp_path, '[api]\nsources = ["cloud", "local"]\ncors_origins = ["http://localhost:4200", "https://dash.example"]\n')
    cfg = config.load(path, environ={})
    assert cfg.api.sources == ("cloud", "local")
    assert cfg.api.cors_origins == ("http://localhost:4200", "https://dash.example")
    # An environment variable holds one string: comma-separated, spaces around items ignored.
    cfg = config.load(None, environ={"KAMMTHAAR_API_SOURCES": "cloud, local",
                                     "KAMMTHAAR_API_CORS_ORIGINS": "http://localhost:4200,https://dash.example"})
    assert cfg.api.sources == ("cloud", "local")
    assert cfg.api.cors_origins == ("http://localhost:4200", "https://dash.example")
    # The string form stays accepted in a file, and the defaults are lists too.
    assert config.load(write(tmp_path, '[api]\nsources = "local"\n'), environ={}).api.sources == ("local",)
    defaults = config.load(None, environ={})
    assert defaults.api.sources == ("local", "cloud") and defaults.api.cors_origins == ()


@pytest.mark.parametrize("text,named", [
    ('[api]\nsources = ["local", "edge"]\n', "[api] sources"),
    ('[api]\nsources = []\n', "[api] sources"),
    ('[api]\nsources = ["local", "local"]\n', "[api] sources"),
    ('[api]\nsources = [1]\n', "[api] sources"),
    ('[api]\ncors_origins = ["localhost:4200"]\n', "[api] cors_origins"),
    ('[api]\nlisten = "8000"\n', "[api] listen"),
    ('[modbus]\nport = "tcp://:502"\n', "[modbus] port"),
    ('[modbus]\nport = "rtu+tcp://host:70000"\n', "[modbus] port"),
])
def test_bad_list_and_address_values_name_the_key(tmp_path, text, named):
    with pytest.raises(ConfigError) as err:
        config.load(write(tmp_path, text), environ={})
    assert named in str(err.value)


@pytest.mark.parametrize("text,kind,path,host,port", [
    ("/dev/ttyUSB0", "serial", "/dev/ttyUSB0", None, None),
    ("tcp://192.168.1.20:502", "tcp", None, "192.168.1.20", 502),
    ("rtu+tcp://127.0.0.1:5020", "rtu+tcp", None, "127.0.0.1", 5020),
    ("tcp://[::1]:502", "tcp", None, "::1", 502),
])
def test_the_modbus_port_is_parsed_once_into_a_typed_value(tmp_path, text, kind, path, host, port):
    cfg = config.load(write(tmp_path, f'[modbus]\nport = "{text}"\n'), environ={})
    typed = cfg.modbus.port
    assert isinstance(typed, ModbusPort) and typed.kind == kind and typed.path == path
    if host is None:
        assert typed.address is None
    else:
        assert typed.address == HostPort(host, port)
    assert typed.framer == ("socket" if kind == "tcp" else "rtu")
    assert str(typed) == text  # the written form, as `config show` prints it


def test_the_listen_address_is_a_typed_host_and_port():
    listen = config.load(None, environ={"KAMMTHAAR_API_LISTEN": "0.0.0.0:8080"}).api.listen
    assert listen == HostPort("0.0.0.0", 8080) and str(listen) == "0.0.0.0:8080"
    assert listen.url_host == "127.0.0.1"  # the demo's URL for a wildcard address
    assert config.load(None, environ={}).api.listen == HostPort("127.0.0.1", 8000)


def test_config_sections_are_frozen():
    cfg = config.load(None, environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.modbus.interval_s = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.api = None


def test_cli_config_show_prints_list_settings_as_arrays_it_can_read_back(tmp_path):
    proc = run_cli("config", "show", env_extra={"KAMMTHAAR_API_SOURCES": "cloud,local",
                                               "KAMMTHAAR_API_CORS_ORIGINS": "http://localhost:4200"})
    assert proc.returncode == 0, proc.stderr
    assert 'sources = ["cloud", "local"]' in proc.stdout
    assert 'cors_origins = ["http://localhost:4200"]' in proc.stdout
    again = config.load(write(tmp_path, proc.stdout.split("\n", 1)[1]), environ={})
    assert again.api.sources == ("cloud", "local")


def test_serve_and_cloud_checks_live_in_the_config():
    strong = "Jx8vQ2mZr7TnK4pW9cYb3LhF6sDg1uAe5RoVi0Nk"
    with pytest.raises(ConfigError, match=r"\[api\] jwt_secret is not set"):
        config.load(None, environ={}).require_serve()
    config.load(None, environ={"KAMMTHAAR_API_JWT_SECRET": strong}).require_serve()
    cloud_only = {"KAMMTHAAR_API_JWT_SECRET": strong, "KAMMTHAAR_API_SOURCES": "cloud"}
    with pytest.raises(ConfigError, match=r"needs \[cloud\] url"):
        config.load(None, environ=cloud_only).require_serve()
    with_url = {**cloud_only, "KAMMTHAAR_CLOUD_URL": "http://127.0.0.1:8086"}
    with pytest.raises(ConfigError, match=r"\[cloud\] bucket is required"):
        config.load(None, environ=with_url).require_serve()
    with pytest.raises(ConfigError, match=r"\[cloud\] database is required"):
        config.load(None, environ={**with_url, "KAMMTHAAR_CLOUD_API": "v1"}).require_cloud()
    config.load(None, environ={**with_url, "KAMMTHAAR_CLOUD_BUCKET": "site"}).require_serve()


def test_edge_store_imports_neither_replicator_nor_api():
    """Not even lazily: every import statement of edge_store/, and what importing its commands loads."""
    root = README.parent / "edge_store"
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in ("replicator", "api", "publisher"), f"{path}:{node.lineno} imports {name}"
    probe = ("import sys, argparse, edge_store.commands as c; c.register(argparse.ArgumentParser().add_subparsers()); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('replicator', 'api', 'publisher', 'kammthaar')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            cwd=README.parent)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"
