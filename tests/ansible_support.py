"""What the Ansible tests share: the role's paths, the units it installs, the variables of a local run,
running ansible and reading its recap."""

from __future__ import annotations

import grp
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path



REPO = Path(__file__).resolve().parents[1]
ANSIBLE = REPO / "ansible"
ROLE = ANSIBLE / "roles" / "kammthaar"
EXAMPLE = ANSIBLE / "inventory" / "example"
EXAMPLE_VAULT_PASSWORD = EXAMPLE / "vault-password.example"
BIN = Path(sys.executable).parent  # ansible-core and ansible-lint come with the test extra
UNITS = ("kammthaar-collect.service", "kammthaar-replicate.service", "kammthaar-publish.service", "kammthaar-notify.service",
         "kammthaar-api.service")

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
    "Enable and start nginx",  # nginx under systemd
    "Check the nginx configuration",  # handlers: the system's nginx (tests/test_proxy.py checks the rendered file)
    "Reload nginx",
}
# Skipped when the inventory gives no certificate: a self-signed one is made instead.
SKIPPED_WITH_A_SELF_SIGNED_CERTIFICATE = {
    "Install the TLS certificate from the inventory",
    "Install the TLS key from the inventory (ansible-vault)",
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


def current_account() -> tuple[str, str]:
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def local_run_vars(root: Path | str, **more) -> dict:
    """Extra variables of a run on this machine into the throwaway `root` (a Jinja path is fine): the
    system left alone (packages, accounts, systemd), everything owned by the current account, no become."""
    user, group = current_account()
    return {"kammthaar_root": str(root), "kammthaar_manage_system": False,
            "kammthaar_user": user, "kammthaar_group": group,
            "kammthaar_admin_user": user, "kammthaar_admin_group": group,
            "ansible_become": False, **more}
