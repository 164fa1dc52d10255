"""The Ansible role without running it: one variable per setting, ansible-lint, the syntax check, the example inventory rendered."""

from __future__ import annotations

import subprocess
import sys

import yaml

from edge_store import config

from tests.ansible_support import ANSIBLE, BIN, EXAMPLE, EXAMPLE_VAULT_PASSWORD, ROLE, ansible_env, local_run_vars, run


def local_example_vars(tmp_path) -> dict:
    """The example inventory's hosts run on this machine, each into tmp_path/HOST."""
    return local_run_vars(tmp_path / "{{ inventory_hostname }}", ansible_connection="local",
                          ansible_python_interpreter=sys.executable)

# -- static checks -----------------------------------------------------------------------

def test_role_has_one_documented_variable_per_config_setting():
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    specs = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
    defaults_text = (ROLE / "defaults/main.yml").read_text()
    names = {f"kammthaar_{s.section}_{s.key}": s for s in config.SETTINGS}
    # Pi-specific values (or computed ones) instead of the application's defaults.
    differs_on_a_pi = {"kammthaar_site_id", "kammthaar_site_timezone", "kammthaar_store_path", "kammthaar_modbus_port"}
    for name, setting in names.items():
        assert name in specs, f"{name} missing from meta/argument_specs.yml"
        assert f"[{setting.section}] {setting.key}" in defaults_text, f"{name} undocumented in defaults/main.yml"
        if setting.secret:
            assert name not in defaults, f"{name} is a secret: no default, it comes from ansible-vault"
            assert specs[name].get("no_log") is True
            continue
        assert name in defaults, f"{name} missing from defaults/main.yml"
        if name not in differs_on_a_pi:
            assert defaults[name] == setting.default, f"{name}: role default {defaults[name]!r} != {setting.default!r}"
    prefixes = tuple(f"kammthaar_{section}_" for section in config.SECTIONS)
    stale = {n for n in list(defaults) + list(specs) if n.startswith(prefixes) and n not in names}
    assert not stale, f"variables named like config keys that edge_store/config.py does not have: {stale}"
    # Every variable is typed and described; defaults given in the spec are the role's.
    assert set(defaults) <= set(specs)
    for name, spec in specs.items():
        assert spec.get("description") and spec.get("type"), name
        if "default" in spec:
            assert spec["default"] == defaults[name], name


def test_ansible_lint_passes_with_the_production_profile(tmp_path):
    env = ansible_env(tmp_path)
    env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(EXAMPLE_VAULT_PASSWORD)  # lints the example vault files too
    result = run([str(BIN / "ansible-lint"), "--profile", "production", "--offline", "--nocolor"], env)
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0, output
    assert "Profile 'production' was required, and it passed." in output


def test_site_playbook_passes_the_syntax_check(tmp_path):
    result = run([str(BIN / "ansible-playbook"), "-i", str(EXAMPLE), "--vault-password-file", str(EXAMPLE_VAULT_PASSWORD),
                  "--syntax-check", "site.yml"], ansible_env(tmp_path))
    print(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "playbook: site.yml" in result.stdout


def test_example_inventory_renders_configs_and_units_for_each_site(tmp_path):
    """The example hosts' vars and vault files (throwaway password) give valid configs and collector units."""
    extra = tmp_path / "local.yml"
    extra.write_text(yaml.safe_dump(local_example_vars(tmp_path)))
    result = run([str(BIN / "ansible-playbook"), "-i", str(EXAMPLE), "--vault-password-file", str(EXAMPLE_VAULT_PASSWORD),
                  "-e", f"@{extra}", "-e", "kammthaar_batch_size=3", "--tags", "config,systemd", "site.yml"], ansible_env(tmp_path / "home"))
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    hosts = yaml.safe_load((EXAMPLE / "hosts.yml").read_text())["kammthaar"]["hosts"]
    assert len(hosts) >= 2
    for host in hosts:
        cfg = config.load(str(tmp_path / host / "etc/kammthaar/kammthaar.toml"), environ={})
        assert cfg.site.id == host
        assert len(cfg.api.jwt_secret) >= 32
        if cfg.cloud.url:
            assert cfg.cloud.token or cfg.cloud.password
        # The collector is bound to the configured device, named as systemd names it.
        device_unit = subprocess.run(["systemd-escape", "--path", "--suffix=device", str(cfg.modbus.port)],
                                     capture_output=True, text=True, check=True).stdout.strip()
        unit = (tmp_path / host / "etc/systemd/system/kammthaar-collect.service").read_text()
        assert f"\nBindsTo={device_unit}\n" in unit and f"\nDeviceAllow={cfg.modbus.port} rw\n" in unit, host
        # kammthaar_devices: each one in [[devices]], every port it opens reachable by the collector.
        declared = yaml.safe_load((EXAMPLE / "host_vars" / host / "vars.yml").read_text()).get("kammthaar_devices")
        if declared:
            assert [(d.name, d.model, d.unit) for d in cfg.devices] == [(e["name"], e["model"], e["unit"]) for e in declared]
            assert {d.name: (d.port.path, d.baudrate, d.interval_s) for d in cfg.devices} == {
                e["name"]: (e.get("port", cfg.modbus.port.path), e.get("baudrate", cfg.modbus.baudrate),
                            e.get("interval_s", cfg.modbus.interval_s)) for e in declared}
            for port in {d.port.path for d in cfg.devices}:
                assert f"\nDeviceAllow={port} rw\n" in unit, (host, port)
        else:
            assert [(d.name, d.model) for d in cfg.devices] == [(cfg.modbus.device, "epever-tracer")], host
    assert any(yaml.safe_load((EXAMPLE / "host_vars" / h / "vars.yml").read_text()).get("kammthaar_devices") for h in hosts)


def test_cloud_play_passes_the_syntax_check_and_renders_a_cloud_config(tmp_path):
    """cloud.yml on the example's cloud host: the API alone, cloud-only, its state in PostgreSQL, users with roles."""
    result = run([str(BIN / "ansible-playbook"), "-i", str(EXAMPLE), "--vault-password-file", str(EXAMPLE_VAULT_PASSWORD),
                  "--syntax-check", "cloud.yml"], ansible_env(tmp_path))
    assert result.returncode == 0 and "playbook: cloud.yml" in result.stdout, result.stdout + result.stderr
    # Of the role's units, the API alone runs there (nothing to collect, replicate, publish or notify).
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    (play,) = [p for p in yaml.safe_load((ANSIBLE / "cloud.yml").read_text()) if "vars" in p]
    units = {k: play["vars"].get(k, v) for k, v in defaults.items() if k.startswith("kammthaar_enable_")}
    assert units == {**dict.fromkeys(units, False), "kammthaar_enable_api": True}, units
    extra = tmp_path / "local.yml"
    extra.write_text(yaml.safe_dump(local_example_vars(tmp_path)))
    result = run([str(BIN / "ansible-playbook"), "-i", str(EXAMPLE), "--vault-password-file", str(EXAMPLE_VAULT_PASSWORD),
                  "-e", f"@{extra}", "--tags", "config,systemd", "cloud.yml"], ansible_env(tmp_path / "home"))
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    hosts = yaml.safe_load((EXAMPLE / "hosts.yml").read_text())["kammthaar_cloud"]["hosts"]
    for host in hosts:
        cfg = config.load(str(tmp_path / host / "etc/kammthaar/kammthaar.toml"), environ={})
        assert cfg.api.sources == ("cloud",) and cfg.cloud.url and cfg.cloud.token
        assert cfg.api.state_url.startswith("postgresql+psycopg://kammthaar:") and len(cfg.api.jwt_secret) >= 32
