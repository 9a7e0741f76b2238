"""The reviewer page in a real browser (Debian chromium driven by Playwright; never a downloaded
browser): sign in, resolve the seed's five blank 行政复议 cells with the keyboard only, see the
document turn ``extracted``; screenshots go to tests/artifacts/ (git-ignored).

Prints keystrokes and seconds per reviewed field. The seconds are the page's own latency (key
press -> decision stored -> next field shown), a floor for a trained reviewer's time, who also
reads the context."""
from __future__ import annotations

import shutil
import socket
import threading
import time

import pytest

from worker.review_web import create_app
from worker.settings import from_env

from reviewkit import ARTIFACTS, seed_text, store_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(sqlite_store, tmp_path):
    import uvicorn
    cfg = from_env({"NIANBAO_HOME": str(tmp_path / "home"), "NIANBAO_DATABASE_URL": sqlite_store.url})
    app = create_app(cfg, sqlite_store, enqueue=lambda _id: None, migrate=False)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", sqlite_store
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


class Keys:
    """Counts what the reviewer types."""

    def __init__(self, page):
        self.page, self.count = page, 0

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.count += 1

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)
        self.count += len(text)


def _sign_in(page, base: str, token: str) -> int:
    page.goto(base + "/review/login")
    keys = Keys(page)
    keys.type(token)                  # the token field has autofocus
    keys.press("Enter")
    page.wait_for_url(base + "/review")
    return keys.count


@pytest.mark.integration
def test_review_playwright_seed_resolved_by_keyboard(served, browser):
    base, store = served
    doc = store_report(store, seed_text().encode(), "luolong-minzheng-2020.txt")
    token = store.create_token("reviewer-1", "reviewer")
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the page's CSP (rightly) forbids
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _sign_in(page, base, token)

    page.wait_for_selector("#work:not([hidden])")
    assert page.inner_text("#field-key") == "appeal.review.total"
    assert page.inner_text("#doc-status") == "needs_review"
    assert "行政复议" in page.inner_text("#evidence")
    assert "appeal_total[review]" in page.inner_text("#relations")
    # help opens and closes, j/k move between the document's fields (not decisions)
    page.keyboard.press("?")
    assert page.is_visible("#help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")
    page.keyboard.press("j")
    page.wait_for_function("document.getElementById('field-key').textContent !== 'appeal.review.total'")
    page.keyboard.press("k")
    page.wait_for_function("document.getElementById('field-key').textContent === 'appeal.review.total'")
    # live sum: typing a value updates the relation before anything is sent
    page.keyboard.press("7")
    assert "review.total=7 → 7" in " ".join(page.inner_text("#relations").split())
    page.keyboard.press("Escape")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-page.png"), full_page=True)

    keys = Keys(page)
    reviewed = []
    started = time.perf_counter()
    for _ in range(5):
        key = page.inner_text("#field-key")
        reviewed.append(key)
        keys.press("b")                                    # blank as printed
        page.wait_for_function(
            "(k) => document.getElementById('field-key').textContent !== k"
            " || !document.getElementById('empty').hidden", arg=key)
    page.wait_for_selector("#done-banner[data-status='extracted']")
    seconds = time.perf_counter() - started
    assert sorted(reviewed) == sorted(f"appeal.review.{r}" for r in ("upheld", "corrected", "other", "pending",
                                                                      "total"))
    assert page.is_visible("#empty")                       # the queue is empty now
    assert store.document_json(doc)["status"] == "extracted"
    page.screenshot(path=str(ARTIFACTS / "review-done.png"), full_page=True)
    page.goto(f"{base}/review/documents/{doc}")
    assert page.get_attribute("#doc-status", "data-status") == "extracted"
    page.screenshot(path=str(ARTIFACTS / "review-document.png"), full_page=True)
    assert not errors, errors
    print(f"\nreviewed {len(reviewed)} fields: {keys.count} keystrokes "
          f"({keys.count / len(reviewed):.1f} per field), {seconds:.2f} s "
          f"({seconds / len(reviewed):.2f} s per field, page latency)")


@pytest.mark.integration
def test_review_playwright_typed_total_pins_the_rest(served, browser):
    """Typing the total (0 Enter) resolves the group: the relation pins the four parts."""
    base, store = served
    doc = store_report(store, seed_text().encode(), "luolong-minzheng-2020.txt")
    page = browser.new_page(bypass_csp=True)
    _sign_in(page, base, store.create_token("reviewer-2", "reviewer"))
    page.wait_for_selector("#work:not([hidden])")
    keys = Keys(page)
    started = time.perf_counter()
    keys.press("0")
    keys.press("Enter")
    page.wait_for_selector("#done-banner[data-status='extracted']")
    seconds = time.perf_counter() - started
    fields = store.document_json(doc)["fields"]
    assert [fields[f"appeal.review.{r}"]["value"] for r in ("upheld", "corrected", "other", "pending", "total")] \
        == [0, 0, 0, 0, 0]
    print(f"\nresolved 5 fields with {keys.count} keystrokes in {seconds:.2f} s (total typed, parts pinned)")
