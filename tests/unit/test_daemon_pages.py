"""The daemon's pages over a real state store (SQLite), through the real Starlette routes.

Who may read them (the /audit rule, the token as a Basic password, ``public_read``), what they
show from the store (latest results, node history newest first, last audit), the server-side
filter and the response headers. The in-process client connects as host ``testclient``, which is
not loopback; a loopback client is given explicitly. What a browser shows of a running daemon is
in tests/integration/test_daemon_pages.py.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from auditor.daemon.http import HttpSettings
from auditor.daemon.pages import page_routes
from auditor.formats.html import content_security_policy, target_id
from auditor.state.store import Store
from tests.support.results import AMD64, multiplatform, unreachable

SOURCE = "registry:127.0.0.1:5000"
APP = "127.0.0.1:5000/team/app:v1"
GONE = "127.0.0.1:5000/team/gone"
TOKEN = "s3cret-page-token"
FIRST = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SECOND = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Two runs: the platforms signed, then their signatures gone."""
    opened = Store.open(tmp_path / "auditor.db")
    run = opened.start_run(SOURCE, "schedule", at=FIRST)
    opened.finish_run(run, SOURCE, [multiplatform(APP, signed_platforms=True), unreachable(GONE)],
                      replace_source=True, at=FIRST)
    run = opened.start_run(SOURCE, "schedule", at=SECOND)
    opened.finish_run(run, SOURCE, [multiplatform(APP, signed_platforms=False),
                                    unreachable(GONE)], replace_source=True, at=SECOND)
    yield opened
    opened.close()


async def get(
    store: Store,
    path: str,
    *,
    token: str | None = None,
    public_read: bool = False,
    host: str = "testclient",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """GET ``path`` from the page routes as a client at ``host``."""
    app = Starlette(routes=page_routes())
    app.state.store = store
    app.state.http_settings = HttpSettings(token=token, units=(), public_read=public_read)
    transport = httpx.ASGITransport(app=app, client=(host, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        return await http.get(path, headers=headers, params=params)


def basic(user: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


PAGES = ["/", f"/targets/{target_id(APP)}"]


@pytest.mark.parametrize("path", PAGES)
async def test_beyond_loopback_without_a_token_pages_are_closed(store: Store, path: str) -> None:
    answer = await get(store, path)
    assert answer.status_code == 403
    assert "loopback clients only" in answer.text


@pytest.mark.parametrize("path", PAGES)
async def test_a_loopback_client_reads_without_a_token(store: Store, path: str) -> None:
    assert (await get(store, path, host="127.0.0.1")).status_code == 200


@pytest.mark.parametrize("path", PAGES)
async def test_public_read_opens_the_pages(store: Store, path: str) -> None:
    assert (await get(store, path, public_read=True)).status_code == 200


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, 401),
        ({"Authorization": f"Bearer {TOKEN}"}, 200),
        (basic("anyone", TOKEN), 200),
        (basic("anyone", TOKEN + "x"), 401),
        ({"Authorization": "Basic not-base64!"}, 401),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, 401),
    ],
)
async def test_with_a_token_every_client_needs_it(
    store: Store, path: str, headers: dict[str, str], code: int
) -> None:
    for host in ("testclient", "127.0.0.1"):  # loopback too, as for /audit
        answer = await get(store, path, token=TOKEN, host=host, headers=headers)
        assert answer.status_code == code, (host, headers)
        if code == 401:
            assert answer.headers["www-authenticate"].startswith('Basic realm="registry-auditor"')
            assert TOKEN not in answer.text


async def test_overview_from_the_store_with_headers(store: Store) -> None:
    answer = await get(store, "/", public_read=True)
    assert answer.headers["content-type"].startswith("text/html")
    assert answer.headers["content-security-policy"] == (
        f"{content_security_policy()}; frame-ancestors 'none'"
    )
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    text = answer.text
    assert f'href="targets/{target_id(APP)}"' in text
    assert "last audit <time datetime=\"2026-11-03T09:00:00Z\">" in text
    assert "2 of 2 targets shown" in text


async def test_overview_filters_on_the_server(store: Store) -> None:
    text = (await get(store, "/", public_read=True, params={"status": "error"})).text
    rows = re.findall(r'<tr data-target [^>]*data-status="(\w+)"[^>]*?( hidden)?>', text)
    assert sorted(rows) == [("error", ""), ("noncompliant", " hidden")]
    assert "1 of 2 targets shown" in text
    assert '<option value="error" selected>error</option>' in text


async def test_target_page_shows_the_history_newest_first(store: Store) -> None:
    text = (await get(store, f"/targets/{target_id(APP)}", public_read=True)).text
    history = text[text.index('<ol class="history">'):text.index("</ol>")]
    entries = [re.sub(r"<[^>]+>", "", line).split() for line in history.splitlines()[1:]]
    amd64 = [" ".join(e) for e in entries if e and e[0] == "linux/amd64"]
    assert amd64 == [
        "linux/amd64 \u2717 unsigned since 2026-11-03T09:00:00Z (signature deleted)",
        "linux/amd64 \u2713 signed since 2026-11-02T09:00:00Z (first audit)",
    ]
    # the node itself says since when it is in its status, and why
    node = text[text.index(f'data-node="{AMD64}"'):]
    head = re.sub(r"<[^>]+>", "", node[:node.index('<div class="reason">')])
    assert "since 2026-11-03T09:00:00Z (signature deleted)" in " ".join(head.split())


@pytest.mark.parametrize(
    "path", ["/targets/" + "0" * 16, "/targets/not-an-id", "/targets/" + "A" * 16]
)
async def test_unknown_targets_are_404(store: Store, path: str) -> None:
    answer = await get(store, path, public_read=True)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/plain")


async def test_an_unreadable_store_is_503_without_a_traceback(tmp_path: Path) -> None:
    broken = Store.open(tmp_path / "auditor.db")
    broken.close()
    (tmp_path / "auditor.db").write_bytes(b"not a database at all" * 100)
    reopened = Store.open(tmp_path / "auditor.db", migrate=False)
    answer = await get(reopened, "/", public_read=True)
    assert answer.status_code == 503
    assert answer.text.startswith("state store unavailable:")
    assert "Traceback" not in answer.text
