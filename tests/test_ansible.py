"""Fleet deployment (ansible/): the real tools on the real role.

ansible-lint (production profile) and the syntax check; site.yml really run
against localhost (connection local) into a throwaway root prefix, with
`kammthaar_manage_system: false`, which skips only what needs the running
system (apt, the system account in /etc, systemd and udev, /health); a second
run that changes nothing; `systemd-analyze verify` on every unit the role
rendered; the example inventory, vault included, rendering configs that
edge_store.config accepts; and a three-host rollout gated by the /health of
the deployed site (simulator, collector and API run from the deployed venv).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from edge_store import config
from tests.support import Process, Processes, free_port, port_open

REPO = Path(__file__).resolve().parents[1]
ANSIBLE = REPO / "ansible"
ROLE = ANSIBLE / "roles" / "kammthaar"
EXAMPLE = ANSIBLE / "inventory" / "example"
EXAMPLE_VAULT_PASSWORD = EXAMPLE / "vault-password.example"
BIN = Path(sys.executable).parent  # ansible-core and ansible-lint come with the test extra
UNITS = ("kammthaar-collect.service", "kammthaar-replicate.service", "kammthaar-api.service")

# What the local run skips, and why: each needs the running system or real root.
SKIPPED_LOCALLY = {
    "Install the Debian packages kammthaar needs",  # apt on the real machine
    "Create the kammthaar group",  # accounts live in the real /etc
    "Create the kammthaar system user, in the groups that own the serial devices",
    "Look up the units already installed",  # systemd: stopping the services before an upgrade
    "Stop the services before the new version goes in (the collector first, it finishes its write)",
    "Enable and start the services (stop and disable the ones switched off)",
    "Wait until the API's /health answers 200 (with a fresh sample from the collector)",  # the API under systemd
    "Reload systemd",  # handlers: systemd and udev
    "Reload the udev rules",
    "Apply the udev rules to the serial devices present",
    "Restart the kammthaar services",
}
# Skipped in a first install on any system: no earlier install to replace, no older wheel.
SKIPPED_ON_FIRST_INSTALL = {
    "Reinstall kammthaar when the wheel changed under the same version number",
    "Remove the wheels of earlier versions",
}


def ansible_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAMMTHAAR_", "ANSIBLE_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"),
        ANSIBLE_HOME=str(home),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PY_COLORS="0",
    )
    return env


def run(argv: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=timeout)


def recap(output: str) -> dict[str, int]:
    match = re.search(r"^localhost\s+:\s+(.*)$", output.split("PLAY RECAP", 1)[1], re.M)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def task_statuses(output: str) -> dict[str, set[str]]:
    """Each task or handler of the role, with the statuses it printed (ok, changed, skipping...)."""
    statuses: dict[str, set[str]] = {}
    current = None
    for line in output.splitlines():
        header = re.match(r"^(?:TASK|RUNNING HANDLER) \[kammthaar : (.*)\] \**$", line)
        if header:
            current = statuses.setdefault(header.group(1), set())
        elif current is not None:
            status = re.match(r"^(ok|changed|skipping|fatal|failed):", line)
            if status:
                current.add(status.group(1))
    return statuses


@dataclass
class Deployment:
    root: Path
    first: subprocess.CompletedProcess
    second: subprocess.CompletedProcess
    secrets: dict[str, str]

    @property
    def venv(self) -> Path:
        return self.root / "opt/kammthaar/venv"

    @property
    def config_file(self) -> Path:
        return self.root / "etc/kammthaar/kammthaar.toml"


def current_account() -> tuple[str, str]:
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def copy_source(dest: Path) -> Path:
    """A snapshot of the source tree to build from: an edit made meanwhile cannot change the second run."""
    ignore = shutil.ignore_patterns(".git", ".venv", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
                                    "build", "dist", "tests", "bench", "ansible", "*.db", "*.db-*")
    shutil.copytree(REPO, dest, ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    """site.yml run twice against localhost into a throwaway root, secrets from an ansible-vault file."""
    tmp = tmp_path_factory.mktemp("ansible")
    env = ansible_env(tmp / "ansible-home")
    user, group = current_account()
    root = tmp / "root"
    vault_values = {
        "vault_kammthaar_cloud_token": 'test-token-"quoted"-é',
        "vault_kammthaar_api_jwt_secret": secrets.token_urlsafe(32),
        "vault_kammthaar_installer_password": "test-installer-password-9876",
    }

    inventory = tmp / "inventory"
    host_vars = inventory / "host_vars" / "localhost"
    host_vars.mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"kammthaar": {"hosts": {"localhost": {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
    }}}}))
    (host_vars / "vars.yml").write_text(yaml.safe_dump({
        "kammthaar_site_id": "van-test",
        "kammthaar_site_timezone": "Atlantic/Canary",
        "kammthaar_modbus_port": "/dev/epever",
        "kammthaar_modbus_baudrate": 9600,
        "kammthaar_cloud_url": "http://127.0.0.1:8086",  # written to the config, never contacted
        "kammthaar_cloud_org": "installers",
        "kammthaar_cloud_bucket": "fleet",
        "kammthaar_cloud_token": "{{ vault_kammthaar_cloud_token }}",
        "kammthaar_api_jwt_secret": "{{ vault_kammthaar_api_jwt_secret }}",
        "kammthaar_users": [{"name": "installer", "password": "{{ vault_kammthaar_installer_password }}"}],
    }))
    vault = host_vars / "vault.yml"
    vault.write_text(yaml.safe_dump(vault_values, allow_unicode=True))
    password = tmp / "vault-password"
    password.write_text("throwaway-test-password\n")
    encrypted = run([str(BIN / "ansible-vault"), "encrypt", "--vault-password-file", str(password), str(vault)], env)
    assert encrypted.returncode == 0, encrypted.stderr
    assert vault.read_text().startswith("$ANSIBLE_VAULT;")

    extra = tmp / "local.yml"
    extra.write_text(yaml.safe_dump({
        "kammthaar_root": str(root),
        "kammthaar_manage_system": False,
        "kammthaar_user": user, "kammthaar_group": group,
        "kammthaar_admin_user": user, "kammthaar_admin_group": group,
        "kammthaar_src": str(copy_source(tmp / "src")),
        "kammthaar_build_dir": str(tmp / "dist"),
        "kammthaar_build_python": sys.executable,
        "ansible_become": False,
    }))
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), "--vault-password-file", str(password),
            "-e", f"@{extra}", "site.yml"]
    first = run(argv, env)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    second = run(argv, env)
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-3000:]
    return Deployment(root, first, second, vault_values)


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
    user, group = current_account()
    extra = tmp_path / "local.yml"
    extra.write_text(yaml.safe_dump({
        "kammthaar_root": str(tmp_path / "{{ inventory_hostname }}"),
        "kammthaar_manage_system": False,
        "kammthaar_user": user, "kammthaar_group": group,
        "kammthaar_admin_user": user, "kammthaar_admin_group": group,
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False,
    }))
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


# -- the local run ----------------------------------------------------------------------------

def test_local_run_installs_the_package_into_a_venv_that_runs_kammthaar(deployment):
    kammthaar = deployment.venv / "bin" / "kammthaar"
    help_ = subprocess.run([str(kammthaar), "--help"], capture_output=True, text=True, timeout=60)
    assert help_.returncode == 0 and "usage: kammthaar" in help_.stdout
    # Installed from the wheel (not this checkout): the venv's own copy of the code.
    where = subprocess.run([str(deployment.venv / "bin/python"), "-c", "import edge_store; print(edge_store.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd="/")
    assert where.stdout.strip().startswith(str(deployment.venv)), where.stdout + where.stderr
    wheels = list((deployment.root / "opt/kammthaar/dist").glob("kammthaar_edge-*.whl"))
    assert len(wheels) == 1


def test_local_run_migrated_the_database_with_kammthaar_db_upgrade(deployment):
    assert "changed" in task_statuses(deployment.first.stdout)["Run the migrations (kammthaar db upgrade)"]
    db = deployment.root / "var/lib/kammthaar/kammthaar.db"
    assert db.is_file()
    kammthaar = [str(deployment.venv / "bin/kammthaar"), "-c", str(deployment.config_file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMMTHAAR_")}
    upgrade = subprocess.run(kammthaar + ["db", "upgrade"], capture_output=True, text=True, timeout=120, env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    current = subprocess.run(kammthaar + ["db", "current"], capture_output=True, text=True, timeout=120, env=env)
    assert re.search(r"at revision (\S+); code head is \1$", current.stdout.strip()), current.stdout


def test_local_run_adds_the_api_users_from_the_vault(deployment):
    statuses = task_statuses(deployment.first.stdout)
    assert statuses["Add the missing API users (passwords from ansible-vault)"] == {"changed"}
    listed = subprocess.run([str(deployment.venv / "bin/kammthaar"), "-c", str(deployment.config_file), "user", "list"],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["installer"]


def test_local_run_writes_the_hosts_config_with_its_vault_secrets(deployment):
    path = deployment.config_file
    written = tomllib.loads(path.read_text())
    assert {(section, key) for section, body in written.items() for key in body} == \
        {(s.section, s.key) for s in config.SETTINGS}
    cfg = config.load(str(path), environ={})
    assert cfg.site.id == "van-test" and cfg.site.timezone == "Atlantic/Canary"
    assert str(cfg.modbus.port) == "/dev/epever" and cfg.modbus.baudrate == 9600
    assert cfg.cloud.url == "http://127.0.0.1:8086" and cfg.cloud.bucket == "fleet"
    assert cfg.cloud.token == deployment.secrets["vault_kammthaar_cloud_token"]
    assert cfg.api.jwt_secret == deployment.secrets["vault_kammthaar_api_jwt_secret"]
    assert cfg.store.path == str(deployment.root / "var/lib/kammthaar/kammthaar.db")
    mode = path.stat()
    assert stat.S_IMODE(mode.st_mode) == 0o640 and mode.st_gid == os.getgid()
    assert stat.S_IMODE((deployment.root / "var/lib/kammthaar").stat().st_mode) == 0o750
    # The secrets never reach the output: the tasks that handle them are no_log.
    for secret in deployment.secrets.values():
        assert secret not in deployment.first.stdout + deployment.first.stderr


def test_local_run_renders_hardened_units_and_the_udev_rule(deployment):
    units = deployment.root / "etc/systemd/system"
    data = deployment.root / "var/lib/kammthaar"
    for name in UNITS:
        text = (units / name).read_text()
        command = name.split("-")[1].split(".")[0].replace("api", "serve")
        assert f"ExecStart={deployment.venv}/bin/kammthaar -c {deployment.config_file} {command}\n" in text
        for line in ("Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                     "PrivateTmp=yes", f"ReadWritePaths={data}", "DevicePolicy=closed", "KillSignal=SIGTERM",
                     "TimeoutStopSec=30", "StandardOutput=journal", "StandardError=journal"):
            assert f"\n{line}\n" in text, f"{name}: {line}"
        assert text.count("ReadWritePaths=") == 1
        if name == "kammthaar-collect.service":
            for line in ("DeviceAllow=/dev/epever rw", "SupplementaryGroups=dialout", "BindsTo=dev-epever.device"):
                assert f"\n{line}\n" in text, f"{name}: {line}"
        else:
            assert "DeviceAllow=" not in text and "SupplementaryGroups=" not in text
            assert "\nPrivateDevices=yes\n" in text
    rule = (deployment.root / "etc/udev/rules.d/99-kammthaar-serial.rules").read_text()
    for vendor, product in (("1a86", "7523"), ("0403", "6001"), ("04e2", "1410")):
        assert re.search(rf'^SUBSYSTEM=="tty", ATTRS{{idVendor}}=="{vendor}", ATTRS{{idProduct}}=="{product}", '
                         r'.*SYMLINK\+="epever".*TAG\+="systemd"', rule, re.M), (vendor, product)


def test_local_run_skips_only_what_needs_the_running_system(deployment):
    statuses = task_statuses(deployment.first.stdout)
    skipped = {task for task, seen in statuses.items() if seen == {"skipping"}}
    assert skipped == SKIPPED_LOCALLY | SKIPPED_ON_FIRST_INSTALL
    assert recap(deployment.first.stdout)["failed"] == 0


def test_second_run_changes_nothing(deployment):
    assert recap(deployment.first.stdout)["changed"] > 0
    second = recap(deployment.second.stdout)
    print(deployment.second.stdout.split("PLAY RECAP", 1)[1])
    assert second["changed"] == 0 and second["failed"] == 0, deployment.second.stdout


def test_systemd_analyze_verify_accepts_every_unit_the_role_renders(deployment):
    units = sorted((deployment.root / "etc/systemd/system").glob("*.service"))
    assert [u.name for u in units] == sorted(UNITS)
    result = subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True, timeout=120)
    print(f"systemd-analyze verify {' '.join(u.name for u in units)}: exit {result.returncode}\n{result.stdout}{result.stderr}")
    # verify exits 0 on warnings it "ignores" (an unknown key, a bad value): no output at all is the bar.
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result.stdout + result.stderr


# -- the rollout ----------------------------------------------------------------------------

class Site:
    """Processes started from the deployed venv and config, as the units start them, stopped at teardown."""

    def __init__(self, deployment: Deployment, logs: Path, env: dict[str, str]):
        self.deployment, self.env = deployment, env
        self.processes = Processes(logs)
        self.procs: dict[str, Process] = {}

    def start(self, name: str, *args: str) -> Process:
        self.procs[name] = proc = self.processes.start(
            [str(self.deployment.venv / "bin/kammthaar"), "-c", str(self.deployment.config_file), *args], name,
            env=self.env)
        return proc

    def alive(self, name: str) -> None:
        assert self.procs[name].alive(), \
            f"the deployed venv cannot run `kammthaar {name}`:\n" + self.procs[name].log()[-3000:]

    def stop(self) -> None:
        self.processes.stop()


@pytest.fixture
def site_health(deployment, tmp_path):
    """The deployed site running without systemd: the simulator as the EPEVER (on a free TCP port), the
    collector and `kammthaar serve` (on a free port), all from the deployed venv; yields /health's URL
    once it shows a fresh sample."""
    sim_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMMTHAAR_")}
    # The device is the simulator; the API asks the local store only (the config's cloud is never contacted).
    env.update(KAMMTHAAR_MODBUS_PORT=f"rtu+tcp://127.0.0.1:{sim_port}", KAMMTHAAR_API_LISTEN=f"127.0.0.1:{api_port}",
               KAMMTHAAR_API_SOURCES="local", KAMMTHAAR_CLOUD_URL="")
    site = Site(deployment, tmp_path, env)
    url = f"http://127.0.0.1:{api_port}/health"
    try:
        site.start("simulate", "simulate", "--tcp", f"127.0.0.1:{sim_port}", "--framer", "rtu")
        site.start("serve", "serve")
        deadline = time.monotonic() + 45
        collector_started = False
        while True:
            for name in site.procs:
                site.alive(name)
            if not collector_started and port_open(sim_port):
                site.start("collect", "collect")
                collector_started = True
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if json.load(answer)["collector"]["fresh"]:
                        break
            except (OSError, ValueError):
                pass
            assert time.monotonic() < deadline, "no fresh sample on /health within 45 s"
            time.sleep(0.3)
        yield url
    finally:
        site.stop()


def test_rollout_goes_a_host_at_a_time_and_stops_at_the_first_failed_health_check(site_health, tmp_path):
    """site.yml's serial/max_fail_percentage/any_errors_fatal with the role's /health check (200 and a fresh
    sample), for real: pi-1's site answers, pi-2's does not (nothing listens), so pi-3 is never touched."""
    closed = f"http://127.0.0.1:{free_port()}/health"
    inventory = tmp_path / "hosts.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(yaml.safe_dump({"kammthaar": {"hosts": {
        "pi-1": {**host, "kammthaar_health_url": site_health},
        "pi-2": {**host, "kammthaar_health_url": closed},
        "pi-3": {**host, "kammthaar_health_url": site_health},
    }}}))
    extra = tmp_path / "rollout.yml"
    extra.write_text(yaml.safe_dump({
        "kammthaar_manage_system": False, "ansible_become": False,
        "kammthaar_health_check": True,  # the role's default kammthaar_health_require_fresh: true
        "kammthaar_health_retries": 2, "kammthaar_health_delay_s": 1,
        "kammthaar_api_jwt_secret": secrets.token_urlsafe(32),
    }))
    result = run([str(BIN / "ansible-playbook"), "-i", str(inventory), "-e", f"@{extra}", "--tags", "health",
                  "site.yml"], ansible_env(tmp_path / "home"))
    out = result.stdout
    print(out)
    assert result.returncode != 0
    checks = out.split("TASK [kammthaar : Wait until the API's /health answers 200")[1:]
    assert len(checks) == 2, "the health check ran for pi-1 and pi-2 only"
    assert re.search(r"^ok: \[pi-1\]$", checks[0].split("PLAY [", 1)[0], re.M)
    assert re.search(r"^FAILED - RETRYING: \[pi-2\]", checks[1], re.M)
    assert re.search(r"^fatal: \[pi-2\]", checks[1], re.M)
    assert "pi-3" not in out, "the rollout went on after a failed host"
    batches = re.findall(r"^PLAY \[Deploy Kammthaar Edge, a batch of Pis at a time\]", out, re.M)
    assert len(batches) == 2  # pi-1, then pi-2; no third batch
