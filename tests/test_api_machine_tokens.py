"""Machine tokens through `kammthaar serve`: a scraper's long-lived token opens /metrics and /health, is
refused on every data path (403), and ends with `kammthaar token revoke`; the commands, on a real store."""

from __future__ import annotations

import sqlite3

from tests.support import clean_env, kammthaar


def create(env: dict, name: str) -> str:
    done = kammthaar("token", "create", name, "--scope", "metrics", env=env)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token.startswith("kmt_") and len(token) > 40 and "\n" not in token
    assert "only this once" in done.stderr
    return token


def test_a_metrics_token_reads_metrics_and_health_and_nothing_else(edge, local_api):
    env = clean_env(store_path=edge.db)
    token = create(env, "prometheus-it")
    c = local_api.client()
    resp = c.get("/metrics", token=token)
    assert resp.status == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.body.decode()
    assert "# TYPE kammthaar_collector_fresh gauge" in text and "kammthaar_samples_stored_total" in text
    assert c.get("/health", token=token).status == 200
    for path in ("/battery/last", "/batterie/last/24hVoltage", "/statistics/daily", "/user", "/serveur/infos"):
        refused = c.get(path, token=token)
        assert refused.status == 403, (path, refused.status)
        assert refused.json()["error"] == "forbidden" and "/metrics" in refused.json()["message"]
    listed = kammthaar("token", "list", env=env)
    line = next(x for x in listed.stdout.splitlines() if x.startswith("prometheus-it\t"))
    name, scope, created, last_used = line.split("\t")
    assert scope == "metrics" and created[:2] == "20" and last_used != "never"  # the scrape was noted
    # Only a hash is stored: the token itself is nowhere in the file.
    with sqlite3.connect(f"file:{edge.db}?mode=ro", uri=True) as conn:
        stored = conn.execute("SELECT token_hash FROM machine_tokens WHERE name = 'prometheus-it'").fetchone()[0]
    assert token not in stored and len(stored) == 64
    revoked = kammthaar("token", "revoke", "prometheus-it", env=env)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    after = c.get("/metrics", token=token)
    assert after.status == 401 and after.json()["error"] == "unauthorized"
    assert c.get("/metrics", token="kmt_" + "x" * 43).status == 401  # a guessed one


def test_token_commands_refuse_what_cannot_be_used(tmp_path):
    env = clean_env(store_path=tmp_path / "k.db")
    first = create(env, "scraper")
    assert create(env, "other") != first  # random, each
    again = kammthaar("token", "create", "scraper", "--scope", "metrics", env=env)
    assert again.returncode == 1 and "exists already" in again.stderr
    no_scope = kammthaar("token", "create", "x", env=env)
    assert no_scope.returncode != 0 and "--scope" in no_scope.stderr
    bad_scope = kammthaar("token", "create", "x", "--scope", "data", env=env)
    assert bad_scope.returncode == 2 and "--scope" in bad_scope.stderr
    bad_name = kammthaar("token", "create", "a b", "--scope", "metrics", env=env)
    assert bad_name.returncode == 1 and "not allowed" in bad_name.stderr
    listed = kammthaar("token", "list", env=env).stdout.splitlines()
    assert listed[0] == "name\tscope\tcreated\tlast used"
    assert [x.split("\t")[0] for x in listed[1:]] == ["other", "scraper"]
    assert all(x.split("\t")[3] == "never" for x in listed[1:])
    assert kammthaar("token", "revoke", "nobody", env=env).returncode == 1
