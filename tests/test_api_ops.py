"""Operating the API through `kammthaar serve`: /health, /metrics across gunicorn's workers, the one error
shape, the cookie login; and the command line (serve, user, demo). The error shape, /health,
/openapi.json, the offline docs page and CORS run in full in-process in tests/test_api_app.py."""

from __future__ import annotations

import os
import re
import select
import signal
import time

import pytest

from edge_store.store import Store
from tests.fixtures_api import PASSWORD, USER, Client, assert_health, assert_one_error_shape, error_answers
from tests.support import KAMMTHAAR, REPO, clean_env, free_port, kammthaar


@pytest.fixture(scope="module")
def client(local_api):
    c = local_api.client()
    c.token = c.login()
    return c


# -- the one error shape -----------------------------------------------------------------------------

def test_every_error_is_json_in_one_shape(client, cloud_api):
    cloud = cloud_api.client()
    answers = error_answers(client, cloud)
    assert_one_error_shape(answers)
    # JSON whatever the client prefers.
    html = client.get("/nope", headers={"Accept": "text/html"})
    assert html.status == 404 and html.headers["content-type"] == "application/json"


# -- /health and /metrics ---------------------------------------------------------------------------------

def test_health_reports_store_collector_replicator_and_cloud_without_a_token(local_api, cloud_api):
    body = local_api.client().get("/health").json()
    cloud = cloud_api.client().get("/health").json()
    assert_health(body, cloud)


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_add_up_every_worker_and_carry_the_store_figures(client, local_api, edge):
    with Store(edge.db) as store:  # a read error, as the collector records it
        store.record_error("crc", "input:0x3100+18", "bad frame (injected by the test)", device="epever")
    before = client.get("/metrics", token=client.token)
    assert before.status == 200 and before.headers["content-type"].startswith("text/plain")
    n = 40
    for _ in range(n):  # each on its own connection: spread over the 2 workers
        assert local_api.client().get("/server-time", token=client.token).status == 200
    after = client.get("/metrics", token=client.token).body.decode()
    counted = metric(after, "kammthaar_http_requests_total", route="/server-time", status="200") - \
        metric(before.body.decode(), "kammthaar_http_requests_total", route="/server-time", status="200")
    assert counted == n
    assert metric(after, "kammthaar_http_request_duration_seconds_count", route="/server-time") >= n
    assert metric(after, "kammthaar_modbus_errors_total", kind="crc") >= 1
    assert metric(after, "kammthaar_collector_fresh") == 1
    assert 0 <= metric(after, "kammthaar_collector_sample_age_seconds") < 60
    assert metric(after, "kammthaar_samples_stored_total", table="live_samples") >= 20
    for name in ("kammthaar_replicator_backlog_rows", "kammthaar_replicator_lag_seconds",
                 "kammthaar_replicator_last_success_timestamp_seconds", "kammthaar_replicator_points_sent_total"):
        assert re.search(rf"^{name} ", after, re.M), name
    assert metric(after, "kammthaar_cloud_reachable") == 1
    assert metric(after, "kammthaar_source_up", source="local") == 1
    assert metric(after, "kammthaar_store_up") == 1
    assert client.get("/metrics").status == 401  # the contract: every path but four needs a token


# -- the command line ----------------------------------------------------------------------------------

@pytest.mark.parametrize("secret,why", [(None, "not set"), ("short", "too short"),
                                        ("changeme" * 5, "too easy"), ("a" * 40, "too easy"),
                                        ("0123456789abcdefghijklmnopqrstuv", "bits"),  # issue 18's patterned one
                                        ("qwertyuiopasdfghjklzxcvbnm123456", "bits")])
def test_serve_refuses_to_start_without_a_strong_secret(tmp_path, secret, why):
    settings = dict(store_path=tmp_path / "k.db", api_listen=f"127.0.0.1:{free_port()}")
    if secret is not None:
        settings["api_jwt_secret"] = secret
    done = kammthaar("serve", env=clean_env(**settings), timeout_s=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "[api] jwt_secret" in done.stderr and why in done.stderr


def test_user_commands_add_list_passwd_remove(tmp_path):
    env = clean_env(store_path=tmp_path / "k.db")
    added = kammthaar("user", "add", "bob", env=env, stdin="bobs-password\n")
    assert added.returncode == 0 and "bob added" in added.stdout, added.stderr
    again = kammthaar("user", "add", "bob", env=env, stdin="another-password\n")
    assert again.returncode == 1 and "exists already" in again.stderr
    short = kammthaar("user", "add", "carol", env=env, stdin="short\n")
    assert short.returncode == 1 and "too short" in short.stderr
    assert kammthaar("user", "passwd", "bob", env=env, stdin="bobs-new-password\n").returncode == 0
    listed = kammthaar("user", "list", env=env)
    assert listed.returncode == 0 and listed.stdout.startswith("bob\t") and "password" not in listed.stdout.split("\t")[0]
    assert kammthaar("user", "remove", "bob", env=env).returncode == 0
    assert kammthaar("user", "list", env=env).stdout == ""
    assert kammthaar("user", "remove", "bob", env=env).returncode == 1


def test_demo_starts_the_api_and_prints_its_url_and_login_once(tmp_path, processes):
    api_port, sim_port = free_port(), free_port()
    env = clean_env(store_path=tmp_path / "demo.db", modbus_port=f"rtu+tcp://127.0.0.1:{sim_port}",
                    modbus_interval_s=0.2, api_listen=f"127.0.0.1:{api_port}")
    proc = processes.start([*KAMMTHAAR, "demo"], "demo", env=env, stdout=True)
    try:
        out = proc.wait_for(lambda: "stop:" in proc.output() and proc.output(), 60, "no stop: line on stdout")
        url = re.search(r"API:\s+(http://\S+)", out).group(1)
        user, password = re.search(r"login:\s+user '([^']+)', password '([^']+)'", out).groups()
        assert url == f"http://127.0.0.1:{api_port}" and user == "demo" and len(password) >= 16
        assert out.count(password) == 2  # the login line and the curl line, nowhere else
        c = Client(url)
        token = c.login(user, password)
        deadline = time.monotonic() + 30
        while (resp := c.get("/battery/last", token=token)).status != 200:
            assert time.monotonic() < deadline, resp.body
            time.sleep(0.2)
        assert resp.source == "local"
    finally:
        proc.interrupt()
    assert proc.returncode == 0
    with pytest.raises(OSError):
        Client(f"http://127.0.0.1:{api_port}").get("/health", timeout_s=2)  # the API stopped with it


def test_readme_says_the_demo_starts_the_api():
    text = (REPO / "README.md").read_text()
    assert "kammthaar serve" in text and "kammthaar user add" in text and "/api/swagger-ui" in text


def test_login_over_the_cookie_only_dashboard_flow(local_api):
    c = local_api.client(keep_cookies=True)
    assert c.post("/login", json_body={"username": USER, "password": PASSWORD}).status == 200
    for path in ("/battery/realtime", "/solarData/last/24h/power", "/statistics/energy/7days", "/user"):
        assert c.get(path).status == 200, path
    assert os.environ.get("KAMMTHAAR_API_JWT_SECRET") is None  # the tests' secret never leaks into this process


def _on_a_terminal(args: list[str], env: dict, answers: list[str]) -> tuple[int, str]:
    """Run `kammthaar ARGS` with a pseudo-terminal as its controlling terminal, answering each prompt."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal's side; never back into pytest
        try:
            os.chdir(REPO)
            os.execve(KAMMTHAAR[0], [*KAMMTHAAR, *args], env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + 60
    pending = list(answers)
    try:
        while True:
            assert time.monotonic() < deadline, out
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                prompts = out.count(b"password: ") + out.count(b"again: ")
                if pending and prompts > len(answers) - len(pending) and out.endswith((b"password: ", b"again: ")):
                    os.write(fd, pending.pop(0).encode() + b"\n")
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        until = time.monotonic() + 10
        while not done and time.monotonic() < until:  # let it finish, never hang on it
            time.sleep(0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


def test_user_add_on_a_terminal_asks_the_password_twice_without_echo(tmp_path):
    env = clean_env(store_path=tmp_path / "k.db")
    code, out = _on_a_terminal(["user", "add", "dana"], env, ["danas-password", "danas-password"])
    assert code == 0, out
    assert "password:" in out and "again:" in out and "dana added" in out
    assert "danas-password" not in out  # getpass: nothing echoed
    code, out = _on_a_terminal(["user", "add", "erin"], env, ["erins-password", "something-else"])
    assert code == 2 and "differ" in out
    assert kammthaar("user", "list", env=env).stdout.split()[0] == "dana"
