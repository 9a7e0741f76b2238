"""worker/review_web.py over HTTP: sign-in, CSRF, roles (a reviewer gets 403 on admin routes),
the review flow through the JSON API, the document view."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from worker.review_web import create_app
from worker.settings import from_env

from reviewkit import seed_text, store_report

ADMIN_ROUTES = [("GET", "/review/api/admin/quality"), ("GET", "/review/api/admin/rules"),
                ("POST", "/review/api/admin/rules"), ("POST", "/review/api/admin/spot-checks"),
                ("POST", "/review/api/documents/1/reextract")]


@pytest.fixture
def web(sqlite_store, tmp_path):
    cfg = from_env({"NIANBAO_HOME": str(tmp_path / "home"), "NIANBAO_DATABASE_URL": sqlite_store.url,
                    "NIANBAO_ADMIN_TOKEN": "start-up-admin-token"})
    app = create_app(cfg, sqlite_store, enqueue=lambda _id: None, migrate=False)
    with TestClient(app) as client:
        yield client, sqlite_store


def _login(client, token):
    page = client.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/review/login", data={"token": token, "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/review", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    html = client.get("/review").text
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def test_review_web_reviewer_token_gets_403_on_admin_routes(web):
    client, store = web
    token = store.create_token("rita", "reviewer")
    for method, path in ADMIN_ROUTES:
        r = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, json={})
        assert r.status_code == 403, (path, r.status_code, r.text)
        assert r.json()["code"] == "forbidden"
    csrf = _login(client, token)
    assert client.get("/review/admin").status_code == 403
    assert "Admin" not in client.get("/review").text.split("<main")[0]          # no admin link either
    r = client.get("/review/api/admin/quality", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403


def test_review_web_admin_sees_admin_views(web):
    client, store = web
    admin = store.create_token("ada", "admin")
    r = client.get("/review/api/admin/quality", headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200 and "silent_error_rate" in r.json()
    _login(client, admin)
    page = client.get("/review/admin")
    assert page.status_code == 200 and "silent-error rate" in page.text and "Learned rules" in page.text
    # the start-up admin token signs in too (it acts as the user "admin")
    client.cookies.clear()
    _login(client, "start-up-admin-token")
    assert client.get("/review/admin").status_code == 200


def test_review_web_needs_sign_in_and_csrf(web):
    client, store = web
    assert client.get("/review", follow_redirects=False).headers["location"] == "/review/login"
    assert client.post("/review/api/claim", json={}).status_code == 401
    r = client.post("/review/login", data={"token": "nope", "csrf": "x"}, follow_redirects=False)
    assert "error=expired" in r.headers["location"]
    page = client.get("/review/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/review/login", data={"token": "wrong", "csrf": csrf}, follow_redirects=False)
    assert "error=token" in r.headers["location"]
    token = store.create_token("rudi", "reviewer")
    csrf = _login(client, token)
    assert client.post("/review/api/claim", json={}).status_code == 403                   # cookie, no CSRF
    assert client.post("/review/api/claim", json={}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/review/api/claim", json={}, headers={"X-CSRF-Token": csrf}).status_code == 200
    store.revoke_tokens("rudi")                                                            # revoking ends sessions
    assert client.post("/review/api/claim", json={}, headers={"X-CSRF-Token": csrf}).status_code == 401


def test_review_web_resolves_the_seed_through_the_api(web):
    client, store = web
    doc = store_report(store, seed_text().encode(), "luolong.txt")
    h = {"Authorization": f"Bearer {store.create_token('rob', 'reviewer')}"}
    bundle = client.post("/review/api/claim", json={"document_id": doc}, headers=h).json()
    assert bundle["item"]["field_key"] == "appeal.review.total" and len(bundle["items"]) == 5
    ctx = bundle["context"]
    assert ctx["labels"] == {"table": "政府信息公开行政复议、行政诉讼情况", "row": "行政复议", "column": "总计"}
    assert ctx["evidence"]["kind"] == "text" and any(ln["hit"] and "行政复议" in ln["cells"]
                                                     for ln in ctx["evidence"]["lines"])
    assert ctx["relations"][0]["name"] == "appeal_total"
    status = None
    while bundle["item"]:
        r = client.post(f"/review/api/items/{bundle['item']['id']}/decision",
                        json={"verdict": "confirmed", "blank": True}, headers=h)
        assert r.status_code == 200, r.text
        status, bundle = r.json()["result"]["status"], r.json()["next"]
    assert status == "extracted"
    exported = client.get(f"/review/api/documents/{doc}/export", headers=h).json()
    assert exported["fields"]["appeal.review.total"]["reviewed_by"] == "rob"
    table = client.get(f"/review/api/documents/{doc}", headers=h).json()
    assert table["flagged"] == 0 and len(table["tables"]) == 3


def test_review_web_document_view_highlights_flagged_cells(web):
    client, store = web
    doc = store_report(store, seed_text().encode(), "luolong.txt")
    _login(client, store.create_token("dora", "reviewer"))
    html = client.get(f"/review/documents/{doc}").text
    assert html.count('<td class="cell flagged"') == 5 and 'data-status="needs_review"' in html
    assert "Content-Security-Policy" in client.get(f"/review/documents/{doc}").headers


def test_review_web_crop_is_a_band_around_the_cell():
    import io

    from PIL import Image

    from worker.review_web import crop_png
    buf = io.BytesIO()
    Image.new("RGB", (1000, 1400), "white").save(buf, format="PNG")
    band = Image.open(io.BytesIO(crop_png(buf.getvalue(), (100, 300, 160, 320), scale=2.0)))
    # bbox in PDF points at 2 px/pt: rows 600-640 px, three cell heights (40 px) above and below
    assert band.size == (1000, 280)
    assert band.getpixel((197, 120)) != (255, 255, 255)          # the cell's outline is drawn
