"""What the shipped dev configuration tells strangers: no TRACE, no version in
the Server header or in error pages, status pages for the admin user only."""
import requests


def test_trace_is_refused(server, alice):
    r = alice.request("TRACE", "/boards")
    assert r.status_code == 405, (r.status_code, r.text[:300])
    assert b"Authorization" not in r.content


def test_server_header_names_no_version(server, alice):
    for r in (alice.get("/boards/demo"), alice.get("/index.html"), alice.get("/no-such-file"),
              requests.get(server.url("/boards"), timeout=10)):
        assert r.headers.get("Server") == "Apache", r.headers


def test_error_pages_carry_no_signature(server, alice):
    r = alice.get("/no-such-file.html")
    assert r.status_code == 404
    assert "Apache/" not in r.text and "Server at" not in r.text, r.text


def test_status_pages_are_for_admin_only(server):
    admin, bob, alice = server.client("admin"), server.client("bob"), server.client("alice")
    for path in ("/rtboard-status", "/server-status", "/server-status?auto"):
        for c in (bob, alice):
            r = c.get(path)
            assert r.status_code in (401, 403), (c.user, path, r.status_code)
            assert "RTBoard" not in r.text and '"connections"' not in r.text
        r = requests.get(server.url(path), timeout=10)
        assert r.status_code == 401, (path, r.status_code)
        r = admin.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    assert "connections" in admin.get("/rtboard-status").json()["data"]
    assert "RTBoardSSE: " in admin.get("/server-status?auto").text
