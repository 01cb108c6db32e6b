"""Hostile clients and what a user may learn of boards they may not read:
ticket exhaustion and binding, cross-site changes, control-frame floods, streams
of nothing, and answers that must not tell a forbidden task from a missing one.
"""

import json
import re

import pytest
import requests

from harness import unique, wait_until
from test_ws_protocol import OP_PING, RawWS, build_frame


@pytest.fixture(scope="module")
def srv(servers):
    return servers.start(CHILDREN=2)


@pytest.fixture(scope="module")
def alice(srv):
    return srv.client("alice")


@pytest.fixture(scope="module")
def bob(srv):
    return srv.client("bob")


@pytest.fixture(scope="module")
def private(alice, bob):
    r = alice.post("/boards", {"id": "private", "name": "Private"})
    assert r.status_code in (201, 409), r.text
    assert bob.get("/boards/private").status_code in (401, 403)
    return "private"


def ticket(srv, board, user="alice", headers=None):
    return requests.post(srv.url("/boards/%s/ws-ticket" % board), auth=(user, user),
                         headers=headers or {}, timeout=10)


# ---------------------------------------------------------------------------
# tickets


def test_one_user_cannot_take_every_ticket(srv, alice):
    bid = alice.create_board(unique("tk"))["id"]
    got = [ticket(srv, bid, "carol") for _ in range(8)]
    assert [r.status_code for r in got] == [201] * 8, [r.text for r in got]
    r = ticket(srv, bid, "carol")
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "too_many_tickets"
    assert int(r.headers["Retry-After"]) > 0
    # others still get theirs
    assert ticket(srv, bid, "bob").status_code == 201
    # using one gives its slot back
    with RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (bid, got[0].json()["data"]["ticket"]),
               user=None) as ws:
        assert ws.status == 101, (ws.status, ws.body)
    assert ticket(srv, bid, "carol").status_code == 201


def test_a_ws_ticket_binds_the_socket_to_its_board(srv, alice):
    bid = alice.create_board(unique("tk"))["id"]
    other = alice.create_board(unique("tk"))["id"]
    t = ticket(srv, bid).json()["data"]["ticket"]
    with RawWS(srv.port, "/ws?ticket=%s" % t, user=None) as ws:
        assert ws.status == 101, (ws.status, ws.body)
        assert ws.recv_json()["user"]["userId"] == "alice"
        ws.send_json({"type": "join", "boardId": other})
        err = ws.recv_json()
        assert err["type"] == "error" and err["code"] == "ticket_board_only", err
        ws.send_json({"type": "join", "boardId": bid})
        got = ws.recv_until(lambda m: m["type"] == "presence")
        assert got[0]["type"] == "joined" and got[0]["boardId"] == bid, got


def test_a_ticket_never_replaces_the_credentials_a_request_carries(srv, alice):
    bid = alice.create_board(unique("tk"))["id"]
    t = ticket(srv, bid, "alice").json()["data"]["ticket"]
    with RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (bid, t), user="bob") as ws:
        assert ws.status == 101, (ws.status, ws.body)
        assert ws.recv_json()["user"]["userId"] == "bob"
    # the ticket was not spent by that request: alice can still use it
    with RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (bid, t), user=None) as ws:
        assert ws.status == 101, (ws.status, ws.body)
        assert ws.recv_json()["user"]["userId"] == "alice"


def test_the_access_log_never_shows_a_ticket(srv, alice):
    bid = alice.create_board(unique("tk"))["id"]
    t = ticket(srv, bid).json()["data"]["ticket"]
    with RawWS(srv.port, "/boards/%s/ws?ticket=%s" % (bid, t), user=None) as ws:
        assert ws.status == 101
    lines = wait_until(lambda: [l for l in srv.access_log().splitlines()
                                if "/boards/%s/ws?ticket=" % bid in l], 10, "the upgrade's line")
    assert t not in srv.access_log()
    assert re.search(r"ticket=x{32}", lines[0]), lines


# ---------------------------------------------------------------------------
# cross-site requests


EVIL = {"Origin": "http://evil.example"}


def test_changes_from_another_site_are_refused_and_change_nothing(srv, alice):
    bid = alice.create_board(unique("xs"))["id"]
    before = alice.snapshot(bid)
    lid = before["data"]["lists"][0]["id"]
    for method, path, body, headers in [
            ("POST", "/boards", {"name": "evil"}, EVIL),
            ("POST", "/boards/%s/tasks" % bid, {"listId": lid, "title": "evil"}, EVIL),
            ("PATCH", "/boards/%s" % bid, {"name": "evil"}, EVIL),
            ("DELETE", "/boards/%s" % bid, None, EVIL),
            ("POST", "/boards/%s/ws-ticket" % bid, None, EVIL),
            # a browser that says it is cross-site, without an Origin
            ("POST", "/boards/%s/tasks" % bid, {"listId": lid, "title": "evil"},
             {"Sec-Fetch-Site": "cross-site"}),
            ("POST", "/boards/%s/ws-ticket" % bid, None, {"Origin": "null"})]:
        r = alice.request(method, path, json=body, headers=headers)
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "cross_site_request", r.text
    assert alice.snapshot(bid) == before
    # the server's own origin, and clients that are not browsers, are served
    own = {"Origin": "http://127.0.0.1:%d" % srv.port, "Sec-Fetch-Site": "same-origin"}
    r = alice.request("POST", "/boards/%s/tasks" % bid, json={"listId": lid, "title": "ok"},
                      headers=own)
    assert r.status_code == 201, r.text
    assert ticket(srv, bid).status_code == 201
    # reads are not changes
    assert alice.request("GET", "/boards/%s" % bid, headers=EVIL).status_code == 200


# ---------------------------------------------------------------------------
# floods and empty streams


def test_pings_count_against_the_message_rate(srv, alice):
    bid = alice.create_board(unique("pf"))["id"]
    with RawWS(srv.port, "/boards/%s/ws" % bid) as ws:
        assert ws.status == 101
        ws.recv_until(lambda m: m["type"] == "presence")
        ws.send_raw(b"".join(build_frame(OP_PING, b"p") for _ in range(2000)))
        code, _ = ws.expect_close(timeout=10)
        assert code == 1008


def test_a_stream_of_no_board_is_refused(srv, alice):
    for q in ("boards=,,,", "boards=,", "boards="):
        r = alice.get("/events?" + q, timeout=5)
        assert r.status_code == 400, (q, r.text)
        assert r.json()["error"]["code"] == "missing_boards"


# ---------------------------------------------------------------------------
# boards one may not read


def test_a_task_of_a_forbidden_board_answers_like_a_missing_one(srv, alice, bob, private):
    lid = alice.snapshot(private)["data"]["lists"][0]["id"]
    t = alice.ok(alice.post("/boards/%s/tasks" % private, {"listId": lid, "title": "secret"}),
                 201)["data"]
    missing = 9007199254740990
    for method, path, body in [("DELETE", "/tasks/%d", None),
                               ("PATCH", "/tasks/%d/move", {"listId": lid, "position": 0})]:
        a = bob.request(method, path % t["id"], json=body)
        b = bob.request(method, path % missing, json=body)
        assert (a.status_code, a.json()["error"]["code"]) == \
            (b.status_code, b.json()["error"]["code"]) == (404, "task_not_found"), (a.text, b.text)
    # nothing changed
    assert alice.ok(alice.get("/boards/%s/tasks/%d" % (private, t["id"])))["data"]["title"] == "secret"


def test_creating_a_board_with_a_forbidden_id_is_403_not_409(srv, alice, bob, private):
    r = bob.post("/boards", {"id": private, "name": "mine now"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "board_forbidden"
    assert alice.post("/boards", {"id": private, "name": "again"}).status_code == 409
