"""A signed-in user who may not read a board gets 403, someone who did not sign
in gets 401, on every transport, with the API's JSON error body."""
import base64
import os

import pytest

from harness import assert_error

WS_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
SSE_HEADERS = {"Accept": "text/event-stream"}

# (what, path, extra request headers)
TRANSPORTS = [
    ("snapshot", "/boards/private", {}),
    ("tasks", "/boards/private/tasks", {}),
    ("short poll", "/boards/private/updates?since=0", {}),
    ("long poll", "/boards/private/poll?since=0&timeout=1", {}),
    ("SSE", "/boards/private/events", SSE_HEADERS),
    ("WebSocket upgrade", "/boards/private/ws", WS_HEADERS),
]


@pytest.mark.parametrize("what,path,headers", TRANSPORTS, ids=[t[0] for t in TRANSPORTS])
def test_signed_in_but_not_allowed_is_403(server, bob, what, path, headers):
    r = bob.raw("GET", path, headers=headers)
    e = assert_error(r, 403)
    assert e["code"] == "board_forbidden", e
    assert "WWW-Authenticate" not in r.headers, r.headers  # no new login prompt
    assert b"retry:" not in r.content and b"event:" not in r.content


@pytest.mark.parametrize("what,path,headers", TRANSPORTS, ids=[t[0] for t in TRANSPORTS])
def test_not_signed_in_is_401(server, what, path, headers):
    r = server.client(None).raw("GET", path, headers=headers)
    e = assert_error(r, 401)
    assert e["code"] == "not_authenticated", e
    assert r.headers.get("WWW-Authenticate", "").startswith("Basic"), r.headers


def test_wrong_password_is_401(server):
    r = server.client("bob").__class__(server, "bob", "not-bob").raw("GET", "/boards/private")
    assert_error(r, 401)


def test_the_owner_still_reads_it(server, alice):
    r = alice.raw("GET", "/boards/private")
    assert r.status_code == 200, r.text[:300]
    r = alice.raw("GET", "/boards/private/poll?since=0&timeout=0")
    assert r.status_code == 200, r.text[:300]
