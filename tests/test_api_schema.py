"""Schemathesis against /openapi.json of the running server: no 5xx, every answer matches the schema."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from requests.adapters import HTTPAdapter

EXAMPLES_PER_OPERATION = 20
CLIENT_ADDRESS = "127.0.0.4"  # its random logins are throttled as this client's, nobody else's


class FromAddress(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (CLIENT_ADDRESS, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture(scope="module")
def schema_server(tmp_path_factory, edge, api_servers):
    """On the live store (realtime fresh: its poll intervals are long enough), local then cloud."""
    return api_servers(tmp_path_factory.mktemp("schemathesis"), "schemathesis", store_path=edge.db,
                       api_sources="local,cloud", cloud_url=edge.influxd.url, cloud_api="v1",
                       cloud_database=edge.database, modbus_interval_s=5, modbus_slow_interval_s=30)


def test_every_operation_answers_within_its_schema_and_never_5xx(schema_server):
    token = schema_server.client(source_address=CLIENT_ADDRESS).login()
    schema = schemathesis.openapi.from_url(f"{schema_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 50
    session = requests.Session()
    session.mount("http://", FromAddress())
    failures, calls = [], []
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call_and_validate(base_url=schema_server.url, session=session,
                                              headers={"Authorization": f"Bearer {token}"})
            calls.append(response.status_code)
            assert response.status_code < 500, response.text[:300]

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, report them all
            failures.append(f"{operation.label}: {exc}"[:1500])
    assert not failures, "\n\n".join(failures)
    assert len(calls) >= len(operations) and 200 in calls
