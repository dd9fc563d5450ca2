"""The dashboard's files: served without a key, with a strict CSP, and cached by content hash."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from datafy.http.dashboard import ASSETS


def test_the_page_loads_without_a_key_and_allows_only_our_own_scripts(client: FlaskClient) -> None:
    page = client.get("/admin")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "form-action 'none'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["Cache-Control"] == "no-cache" and page.headers["X-Content-Type-Options"] == "nosniff"
    html = page.get_data(as_text=True)
    assert 'id="login"' in html and "<script>" not in html  # no inline script: the CSP would block it
    assert client.get("/admin/").status_code == 200


def test_assets_are_named_by_hash_and_cached_for_good_only_under_it(client: FlaskClient) -> None:
    html = client.get("/admin").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="(/admin/static/[^"]+)"', html)
    assert {url.split("?")[0].rsplit("/", 1)[1] for url in urls} == set(ASSETS)
    for url in urls:
        current = client.get(url)
        assert current.status_code == 200 and "immutable" in current.headers["Cache-Control"]
    stale = client.get("/admin/static/dashboard.js?v=old")
    assert stale.status_code == 200 and stale.headers["Cache-Control"] == "no-cache"
    assert stale.mimetype == "text/javascript"


def test_an_unchanged_page_is_not_sent_again(client: FlaskClient) -> None:
    etag = client.get("/admin").headers["ETag"]
    assert client.get("/admin", headers={"If-None-Match": etag}).status_code == 304


def test_unknown_files_are_404_and_the_data_still_needs_the_key(client: FlaskClient) -> None:
    assert client.get("/admin/static/secret.py").status_code == 404
    assert client.get("/admin/static/..%2fadmin.py").status_code == 404
    assert client.get("/api/chats").status_code == 401


def test_the_script_never_writes_html(client: FlaskClient) -> None:
    for name in ("dashboard.js", "charts.js", "i18n.js"):
        script = client.get(f"/admin/static/{name}").get_data(as_text=True)
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "document.write" not in script
