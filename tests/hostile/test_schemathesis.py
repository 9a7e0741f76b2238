"""schemathesis against the API's OpenAPI schema (issue 7), unauthorised and as a reviewer and
an admin: no request may get a 5xx. Bounded: ``NIANBAO_SCHEMATHESIS_EXAMPLES`` per operation
and role (default 25; the whole file stays under ~2 min). Prints requests sent and server errors."""
from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")

from fastapi.testclient import TestClient  # noqa: E402

from worker.api import create_app  # noqa: E402
from worker.settings import from_env  # noqa: E402
from worker.store import Store, upgrade  # noqa: E402

ADMIN = "admin-token-for-schemathesis"
EXAMPLES = int(os.environ.get("NIANBAO_SCHEMATHESIS_EXAMPLES", "60"))
STATS = {"requests": 0, "server_errors": 0, "by_status": {}}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    d = tmp_path_factory.mktemp("schemathesis")
    os.environ.setdefault("NIANBAO_RULES", str(d / "rules.json"))
    url = f"sqlite:///{d / 'st.sqlite'}"
    upgrade(url)
    store = Store(url, str(d / "blobs"))
    cfg = from_env({"NIANBAO_HOME": str(d), "NIANBAO_DATABASE_URL": url, "NIANBAO_ADMIN_TOKEN": ADMIN,
                    "NIANBAO_BROKER_URL": "memory://", "NIANBAO_UPLOADS_PER_MINUTE": "100000"})
    app = create_app(cfg, store, enqueue=lambda _id: None, migrate=False)
    reviewer = store.create_token("sam", "reviewer")
    store.add_document("政府信息公开工作年度报告".encode(), "seed.txt")
    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 401
        schema_dict = client.get("/openapi.json", headers={"Authorization": f"Bearer {ADMIN}"}).json()
    yield app, schema_dict, {"none": None, "reviewer": reviewer, "admin": ADMIN}
    store.engine.dispose()


@pytest.mark.parametrize("role", ["none", "reviewer", "admin"])
def test_schemathesis_no_server_errors(api, role, capsys):
    app, schema_dict, tokens = api
    schema = schemathesis.openapi.from_dict(schema_dict)
    token = tokens[role]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    errors = []
    with TestClient(app, raise_server_exceptions=False) as client:
        for op in schema.get_all_operations():
            operation = op.ok()

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy())
            def run(case):
                kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
                kwargs.pop("base_url", None)
                method, url = kwargs.pop("method"), kwargs.pop("url")
                allowed = {k: v for k, v in kwargs.items() if k in ("headers", "params", "json", "data", "files",
                                                                     "content", "cookies")}
                client.cookies.clear()
                if allowed.get("cookies"):
                    client.cookies.update(allowed.pop("cookies"))
                else:
                    allowed.pop("cookies", None)
                resp = client.request(method, url, **allowed)
                STATS["requests"] += 1
                STATS["by_status"][resp.status_code] = STATS["by_status"].get(resp.status_code, 0) + 1
                if resp.status_code >= 500:
                    STATS["server_errors"] += 1
                    errors.append((method, url, resp.status_code, resp.text[:200]))
                if role == "none" and urlsplit(url).path != "/health":
                    assert resp.status_code == 401, (method, url, resp.status_code)
            run()
    with capsys.disabled():
        print(f"\nschemathesis as {role}: {STATS['requests']} requests so far, "
              f"{STATS['server_errors']} server errors, statuses {dict(sorted(STATS['by_status'].items()))}")
    assert not errors, errors[:5]
