"""Fleet deployment (ansible/): the real tools on the real role.

(The static checks, lint included, are in test_ansible_static.py.) site.yml really run
against localhost (connection local) into a throwaway root prefix, with
`kammthaar_manage_system: false`, which skips only what needs the running
system (apt, the system account in /etc, systemd and udev, /health); a second
run that changes nothing; `systemd-analyze verify` on every unit the role
rendered; and a three-host rollout gated by the /health of
the deployed site (simulator, collector and API run from the deployed venv).
"""

from __future__ import annotations

import json
import os
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
from tests.fixtures_hostile import nginx_check
from tests.support import Process, Processes, free_port, port_open

from tests.ansible_support import BIN, REPO, SKIPPED_LOCALLY, SKIPPED_ON_FIRST_INSTALL, \
    SKIPPED_WITH_A_SELF_SIGNED_CERTIFICATE, UNITS, ansible_env, local_run_vars, recap, run, task_statuses

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
    extra.write_text(yaml.safe_dump(local_run_vars(root, kammthaar_src=str(copy_source(tmp / "src")),
                                                   kammthaar_build_dir=str(tmp / "dist"),
                                                   kammthaar_build_python=sys.executable)))
    argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), "--vault-password-file", str(password),
            "-e", f"@{extra}", "site.yml"]
    first = run(argv, env)
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    second = run(argv, env)
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-3000:]
    return Deployment(root, first, second, vault_values)


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


def test_local_run_bounds_every_unit_and_puts_nginx_in_front_of_a_loopback_api(deployment, tmp_path):
    units = deployment.root / "etc/systemd/system"
    for path in [*(units / name for name in UNITS), units / "nginx.service.d/kammthaar-limits.conf"]:
        text = path.read_text()
        assert re.search(r"^MemoryMax=\d+M$", text, re.M) and re.search(r"^TasksMax=\d+$", text, re.M), path.name
    cfg = config.load(str(deployment.config_file), environ={})
    assert str(cfg.api.listen).startswith("127.0.0.1:") and cfg.api.trusted_proxies == ("127.0.0.1",)
    site = deployment.root / "etc/nginx/conf.d/kammthaar.conf"
    key = deployment.root / "etc/kammthaar/tls/kammthaar.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_text().startswith("-----BEGIN PRIVATE KEY")
    assert "proxy_pass http://kammthaar_api;" in site.read_text() and "return 301 https://" in site.read_text()
    checked = nginx_check(site, tmp_path)  # the deployed file as Debian's nginx.conf includes it
    assert checked.returncode == 0, checked.stderr


def test_local_run_skips_only_what_needs_the_running_system(deployment):
    statuses = task_statuses(deployment.first.stdout)
    skipped = {task for task, seen in statuses.items() if seen == {"skipping"}}
    assert skipped == SKIPPED_LOCALLY | SKIPPED_ON_FIRST_INSTALL | SKIPPED_WITH_A_SELF_SIGNED_CERTIFICATE
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
