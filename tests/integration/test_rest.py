"""The REST side of API.md: every route, every error class, and that a refused
request never writes anything nor publishes an event."""

import json
import re

import pytest

from harness import JSON, Unchanged, assert_error, unique

TASK_FIELDS = {"id", "boardId", "listId", "title", "description", "assignee", "position",
               "version", "createdAt", "updatedAt", "createdBy", "updatedBy"}
ISO = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"


def list_positions_ok(client, board):
    """Every list's task positions are exactly 0..n-1, and the lists' too."""
    snap = client.snapshot(board)["data"]
    assert sorted(l["position"] for l in snap["lists"]) == list(range(len(snap["lists"])))
    by_list = {}
    for t in snap["tasks"]:
        by_list.setdefault(t["listId"], []).append(t["position"])
    for lid, pos in by_list.items():
        assert sorted(pos) == list(range(len(pos))), (lid, pos)
    return snap


def titles_in(client, board, list_id):
    ts = [t for t in client.tasks(board) if t["listId"] == list_id]
    ts.sort(key=lambda t: t["position"])
    return [t["title"] for t in ts]


def last_events(client, board, n):
    last = client.last_event_id(board)
    ev = client.events_since(board, last - n)
    assert [e["id"] for e in ev] == list(range(last - n + 1, last + 1))
    return ev


# ---------------------------------------------------------------------------
# boards


def test_board_listing_hides_private_board_from_others(alice, bob, carol):
    a = {b["id"] for b in alice.boards()}
    assert {"demo", "private"} <= a
    for c in (bob, carol):
        data = c.boards()
        ids = {b["id"] for b in data}
        assert "demo" in ids and "private" not in ids, ids
        for b in data:
            assert set(b) >= {"id", "name", "createdAt", "lastEventId"}
    with Unchanged(alice, "private"):
        r = bob.get("/boards/private")
        assert r.status_code in (401, 403), r.status_code


def test_board_create_with_id_and_default_lists(alice, bob):
    bid = unique("new")
    r = alice.post("/boards", {"id": bid, "name": "Release plan"})
    d = alice.ok(r, 201)["data"]
    assert r.headers["Location"].endswith("/boards/" + bid)
    assert d["id"] == bid and d["name"] == "Release plan"
    assert [l["name"] for l in d["lists"]] == ["To Do", "In Progress", "Done"]
    assert [l["position"] for l in d["lists"]] == [0, 1, 2]
    snap = alice.ok(alice.get(r.headers["Location"]))
    assert snap["data"]["board"]["id"] == bid
    assert snap["data"]["board"]["name"] == "Release plan"
    assert [(l["id"], l["name"]) for l in snap["data"]["lists"]] == [
        (l["id"], l["name"]) for l in d["lists"]]
    assert snap["data"]["tasks"] == []
    assert snap["lastEventId"] == d["lastEventId"] == snap["data"]["board"]["lastEventId"]
    # another user sees it (no Require on it)
    assert bid in {b["id"] for b in bob.boards()}


@pytest.mark.parametrize("name", ["Sprint 42: Q&A!", "\u65e5\u672c\u8a9e \u2603", "!!!",
                                  "x" * 200])
def test_board_create_without_id_derives_a_slug(alice, name):
    r1 = alice.post("/boards", {"name": name})
    r2 = alice.post("/boards", {"name": name})
    d1, d2 = alice.ok(r1, 201)["data"], alice.ok(r2, 201)["data"]
    assert d1["id"] != d2["id"]
    for r, d in ((r1, d1), (r2, d2)):
        assert r.headers["Location"].endswith("/boards/" + d["id"])
        assert re.match(r"^[a-z0-9][a-z0-9_-]{0,63}$", d["id"]), d["id"]
        assert alice.snapshot(d["id"])["data"]["board"]["name"] == name


def test_board_create_with_custom_lists(alice):
    bid = unique("cl")
    d = alice.create_board(bid, "Custom", lists=["Backlog", "Doing", "Review", "Shipped"])
    assert [(l["name"], l["position"]) for l in d["lists"]] == [
        ("Backlog", 0), ("Doing", 1), ("Review", 2), ("Shipped", 3)]
    assert [l["name"] for l in alice.lists(bid)] == ["Backlog", "Doing", "Review", "Shipped"]


def test_board_create_duplicate_id_is_409(alice):
    bid = unique("dup")
    alice.create_board(bid, "First")
    with Unchanged(alice, bid, "demo"):
        assert_error(alice.post("/boards", {"id": bid, "name": "Second"}), 409)
        assert_error(alice.post("/boards", {"id": "demo", "name": "Again"}), 409)
    assert alice.snapshot(bid)["data"]["board"]["name"] == "First"


@pytest.mark.parametrize("body,field", [
    ({"id": "Bad Id!", "name": "x"}, "id"),
    ({"id": "UPPER", "name": "x"}, "id"),
    ({"id": "-leading-dash", "name": "x"}, "id"),
    ({"id": "a" * 65, "name": "x"}, "id"),
    ({"id": "", "name": "x"}, "id"),
    ({"id": 7, "name": "x"}, "id"),
    ({"id": "../demo", "name": "x"}, "id"),
    ({"name": ""}, "name"),
    ({"name": "n" * 201}, "name"),
    ({"name": None}, "name"),
    ({}, "name"),
    ({"name": "x", "lists": "To Do"}, "lists"),
    ({"name": "x", "lists": [1, 2]}, "lists"),
    ({"name": "x", "lists": [""]}, "lists"),
    ({"name": "x", "lists": ["l" * 101]}, "lists"),
    ({"name": "x", "lists": ["a\u0000b"]}, "lists"),
    ({"name": "a\u0000b"}, "name"),
    ({"name": "x", "owner": "alice"}, "owner"),
])
def test_board_create_invalid_is_422(alice, body, field):
    with Unchanged(alice):
        assert_error(alice.post("/boards", body), 422, field=field)


def test_board_rename(alice, board):
    bid, _ = board
    before = alice.last_event_id(bid)
    r = alice.patch("/boards/" + bid, {"name": "Renamed board"})
    d = alice.ok(r)["data"]
    assert d["name"] == "Renamed board" and d["id"] == bid
    assert d["lastEventId"] == before + 1
    assert alice.snapshot(bid)["data"]["board"]["name"] == "Renamed board"
    (ev,) = last_events(alice, bid, 1)
    assert ev["type"] == "board_updated" and ev["data"]["board"]["name"] == "Renamed board"
    with Unchanged(alice, bid):
        assert_error(alice.patch("/boards/" + bid, {"name": ""}), 422, field="name")
        assert_error(alice.patch("/boards/" + bid, {"name": 3}), 422, field="name")
        assert_error(alice.patch("/boards/" + bid, {}), 422, field="name")
        assert_error(alice.patch("/boards/" + bid, {"name": "x", "id": "other"}), 422,
                     field="id")


def test_board_delete(alice, board):
    bid, _ = board
    alice.create_task(bid, board[1][0], "doomed")
    r = alice.delete("/boards/" + bid)
    assert r.status_code == 204 and not r.content
    with Unchanged(alice):
        assert_error(alice.get("/boards/" + bid), 404, code="board_not_found")
        assert_error(alice.get("/boards/%s/tasks" % bid), 404)
        assert_error(alice.get("/boards/%s/updates" % bid, params={"since": 0}), 404)
        assert_error(alice.delete("/boards/" + bid), 404)
        assert_error(alice.patch("/boards/" + bid, {"name": "zombie"}), 404)
        assert_error(alice.post("/boards/%s/tasks" % bid,
                                {"listId": board[1][0], "title": "x"}), 404)
    assert bid not in {b["id"] for b in alice.boards()}


# ---------------------------------------------------------------------------
# lists


def test_list_create_append_and_at_position(alice, board):
    bid, lids = board
    e0 = alice.last_event_id(bid)
    r = alice.post("/boards/%s/lists" % bid, {"name": "Blocked"})
    d = alice.ok(r, 201)["data"]
    assert d["name"] == "Blocked" and d["position"] == 3 and d["boardId"] == bid
    assert r.headers["Location"].endswith("/boards/%s/lists/%d" % (bid, d["id"]))
    r = alice.post("/boards/%s/lists" % bid, {"name": "Inbox", "position": 0})
    d0 = alice.ok(r, 201)["data"]
    assert d0["position"] == 0
    r = alice.post("/boards/%s/lists" % bid, {"name": "Middle", "position": 2})
    alice.ok(r, 201)
    r = alice.post("/boards/%s/lists" % bid, {"name": "Far", "position": 99})
    assert alice.ok(r, 201)["data"]["position"] == 6  # clamped to the end
    snap = list_positions_ok(alice, bid)
    assert [l["name"] for l in snap["lists"]] == [
        "Inbox", "To Do", "Middle", "In Progress", "Done", "Blocked", "Far"]
    ev = alice.events_since(bid, e0)
    assert [e["type"] for e in ev] == ["list_created"] * 4
    assert ev[0]["data"]["list"]["name"] == "Blocked"


def test_list_rename(alice, board):
    bid, lids = board
    d = alice.ok(alice.patch("/boards/%s/lists/%d" % (bid, lids[1]), {"name": "Doing"}))["data"]
    assert d["id"] == lids[1] and d["name"] == "Doing" and d["position"] == 1
    assert [l["name"] for l in alice.lists(bid)] == ["To Do", "Doing", "Done"]
    (ev,) = last_events(alice, bid, 1)
    assert ev["type"] == "list_updated" and ev["data"]["list"]["name"] == "Doing"
    with Unchanged(alice, bid):
        assert_error(alice.patch("/boards/%s/lists/%d" % (bid, lids[1]), {"name": ""}), 422,
                     field="name")
        assert_error(alice.patch("/boards/%s/lists/%d" % (bid, lids[1]), {"color": "red"}),
                     422, field="color")


def test_list_delete_empty_and_with_tasks(alice, board):
    bid, (todo, doing, done) = board
    r = alice.delete("/boards/%s/lists/%d" % (bid, doing))
    assert r.status_code == 204
    (ev,) = last_events(alice, bid, 1)
    assert ev["type"] == "list_deleted" and ev["data"]["listId"] == doing
    snap = list_positions_ok(alice, bid)
    assert [(l["id"], l["position"]) for l in snap["lists"]] == [(todo, 0), (done, 1)]

    alice.create_task(bid, todo, "one")
    alice.create_task(bid, todo, "two")
    with Unchanged(alice, bid):
        assert_error(alice.delete("/boards/%s/lists/%d" % (bid, todo)), 409)
        assert_error(alice.delete("/boards/%s/lists/%d?cascade=0" % (bid, todo)), 409)
    r = alice.delete("/boards/%s/lists/%d?cascade=1" % (bid, todo))
    assert r.status_code == 204
    snap = list_positions_ok(alice, bid)
    assert [l["id"] for l in snap["lists"]] == [done]
    assert snap["tasks"] == []
    (ev,) = last_events(alice, bid, 1)
    assert ev["type"] == "list_deleted" and ev["data"]["listId"] == todo


def test_list_delete_cascades_only_on_the_cascade_parameter(alice, board):
    bid, (todo, _, _) = board
    alice.create_task(bid, todo, "keep me")
    with Unchanged(alice, bid):
        assert_error(alice.delete("/boards/%s/lists/%d?nocascade=1" % (bid, todo)), 409)


@pytest.mark.parametrize("body,field", [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "l" * 101}, "name"),
    ({"name": ["x"]}, "name"),
    ({"name": "x", "position": -1}, "position"),
    ({"name": "x", "position": "0"}, "position"),
    ({"name": "x", "position": 1.5}, "position"),
    ({"name": "x", "color": "red"}, "color"),
])
def test_list_create_invalid_is_422(alice, board, body, field):
    bid, _ = board
    with Unchanged(alice, bid):
        assert_error(alice.post("/boards/%s/lists" % bid, body), 422, field=field)


def test_unknown_list_is_404(alice, board):
    bid, _ = board
    other = alice.lists("demo")[0]["id"]  # a list of another board
    with Unchanged(alice, bid, "demo"):
        for lid in (999999, other):
            assert_error(alice.patch("/boards/%s/lists/%d" % (bid, lid), {"name": "x"}), 404)
            assert_error(alice.delete("/boards/%s/lists/%d?cascade=1" % (bid, lid)), 404)
        assert_error(alice.post("/boards/nosuchboard/lists", {"name": "x"}), 404)


# ---------------------------------------------------------------------------
# tasks


def test_task_create_get_and_location(alice, board):
    bid, (todo, _, _) = board
    e0 = alice.last_event_id(bid)
    r = alice.post("/boards/%s/tasks" % bid, {"listId": todo, "title": "Write the spec",
                                               "description": "with examples",
                                               "assignee": "bob"})
    t = alice.ok(r, 201)["data"]
    assert set(t) == TASK_FIELDS
    assert t["boardId"] == bid and t["listId"] == todo and t["title"] == "Write the spec"
    assert t["description"] == "with examples" and t["assignee"] == "bob"
    assert t["position"] == 0 and t["version"] == 1
    assert t["createdBy"] == t["updatedBy"] == "alice"
    assert re.match(ISO, t["createdAt"]), t["createdAt"]
    assert r.headers["Location"].endswith("/boards/%s/tasks/%d" % (bid, t["id"]))
    g = alice.get(r.headers["Location"])
    assert alice.ok(g)["data"] == t
    assert g.headers["ETag"] == '"1"'
    # defaults
    t2 = alice.create_task(bid, todo, "second")
    assert t2["description"] == "" and t2["assignee"] is None and t2["position"] == 1
    ev = alice.events_since(bid, e0)
    assert [e["type"] for e in ev] == ["task_created", "task_created"]
    assert ev[0]["data"]["task"] == t and ev[1]["data"]["task"] == t2
    assert ev[0]["actor"] == "alice" and ev[0]["boardId"] == bid


def test_task_create_at_position_shifts_others(alice, board):
    bid, (todo, _, _) = board
    for title in ("a", "b", "c"):
        alice.create_task(bid, todo, title)
    alice.create_task(bid, todo, "first", position=0)
    alice.create_task(bid, todo, "mid", position=2)
    t = alice.create_task(bid, todo, "last", position=1000)
    assert t["position"] == 5
    assert titles_in(alice, bid, todo) == ["first", "a", "mid", "b", "c", "last"]
    list_positions_ok(alice, bid)


def test_task_list_order_is_list_position_then_task_position(alice, board):
    bid, (todo, doing, done) = board
    alice.create_task(bid, done, "d1")
    alice.create_task(bid, todo, "t1")
    alice.create_task(bid, doing, "g1")
    alice.create_task(bid, todo, "t0", position=0)
    alice.create_task(bid, done, "d2")
    # a new list in front of all others
    front = alice.ok(alice.post("/boards/%s/lists" % bid, {"name": "Front", "position": 0}),
                     201)["data"]["id"]
    alice.create_task(bid, front, "f1")
    ts = alice.tasks(bid)
    assert [t["title"] for t in ts] == ["f1", "t0", "t1", "g1", "d1", "d2"]
    assert ts == alice.snapshot(bid)["data"]["tasks"]


def test_task_patch_and_if_match(alice, bob, board):
    bid, (todo, _, _) = board
    t = alice.create_task(bid, todo, "original", description="keep me")
    r = bob.patch("/boards/%s/tasks/%d" % (bid, t["id"]), {"title": "edited by bob"})
    u = bob.ok(r)["data"]
    assert u["title"] == "edited by bob" and u["description"] == "keep me"
    assert u["version"] == 2 and u["updatedBy"] == "bob" and u["createdBy"] == "alice"
    assert r.headers["ETag"] == '"2"'
    (ev,) = last_events(alice, bid, 1)
    assert ev["type"] == "task_updated" and ev["data"]["task"] == u and ev["actor"] == "bob"

    u = alice.ok(alice.patch("/boards/%s/tasks/%d" % (bid, t["id"]),
                             {"assignee": "carol"}))["data"]
    assert u["assignee"] == "carol" and u["version"] == 3
    u = alice.ok(alice.patch("/boards/%s/tasks/%d" % (bid, t["id"]),
                             {"assignee": None, "description": ""}))["data"]
    assert u["assignee"] is None and u["description"] == "" and u["version"] == 4

    # a stale If-Match: 412 with the current task, nothing written
    cur = alice.ok(alice.get("/boards/%s/tasks/%d" % (bid, t["id"])))["data"]
    with Unchanged(alice, bid):
        r = alice.patch("/boards/%s/tasks/%d" % (bid, t["id"]), {"title": "lost update"},
                        headers={"If-Match": '"2"'})
        e = assert_error(r, 412)
        assert e["current"] == cur
        r = alice.delete("/boards/%s/tasks/%d" % (bid, t["id"]), headers={"If-Match": '"1"'})
        assert assert_error(r, 412)["current"] == cur
    # the current version: accepted
    r = alice.patch("/boards/%s/tasks/%d" % (bid, t["id"]), {"title": "fresh"},
                    headers={"If-Match": '"%d"' % cur["version"]})
    assert alice.ok(r)["data"]["version"] == cur["version"] + 1
    r = alice.delete("/boards/%s/tasks/%d" % (bid, t["id"]),
                     headers={"If-Match": r.headers["ETag"]})
    assert r.status_code == 204


@pytest.mark.parametrize("body,field", [
    ({}, None),
    ({"title": ""}, "title"),
    ({"title": None}, "title"),
    ({"title": "t" * 201}, "title"),
    ({"description": "d" * 10001}, "description"),
    ({"assignee": 12}, "assignee"),
    ({"listId": 1}, "listId"),
    ({"position": 0}, "position"),
    ({"version": 9}, "version"),
])
def test_task_patch_invalid_is_422(alice, board, body, field):
    bid, (todo, _, _) = board
    t = alice.create_task(bid, todo, "stable")
    with Unchanged(alice, bid):
        assert_error(alice.patch("/boards/%s/tasks/%d" % (bid, t["id"]), body), 422,
                     field=field)


def test_task_delete_closes_the_gap(alice, board):
    bid, (todo, _, _) = board
    ts = [alice.create_task(bid, todo, x) for x in "abcd"]
    r = alice.delete("/boards/%s/tasks/%d" % (bid, ts[1]["id"]))
    assert r.status_code == 204 and not r.content
    (ev,) = last_events(alice, bid, 1)
    assert ev["type"] == "task_deleted" and ev["data"]["taskId"] == ts[1]["id"]
    with Unchanged(alice, bid):
        assert_error(alice.get("/boards/%s/tasks/%d" % (bid, ts[1]["id"])), 404,
                     code="task_not_found")
        assert_error(alice.delete("/boards/%s/tasks/%d" % (bid, ts[1]["id"])), 404)
    assert titles_in(alice, bid, todo) == ["a", "c", "d"]
    list_positions_ok(alice, bid)


def test_task_move_within_and_between_lists(alice, board):
    bid, (todo, doing, done) = board
    ts = {x: alice.create_task(bid, todo, x) for x in "abcde"}
    for x in "xy":
        ts[x] = alice.create_task(bid, doing, x)
    mv = "/boards/%s/tasks/%d/move"

    # within a list, downwards and upwards
    r = alice.patch(mv % (bid, ts["b"]["id"]), {"listId": todo, "position": 3})
    m = alice.ok(r)["data"]
    assert m["listId"] == todo and m["position"] == 3 and m["version"] == 2
    assert titles_in(alice, bid, todo) == ["a", "c", "d", "b", "e"]
    (ev,) = last_events(alice, bid, 1)
    assert ev["type"] == "task_moved" and ev["data"]["task"] == m
    assert ev["data"]["from"] == {"listId": todo, "position": 1}
    alice.ok(alice.patch(mv % (bid, ts["e"]["id"]), {"listId": todo, "position": 0}))
    assert titles_in(alice, bid, todo) == ["e", "a", "c", "d", "b"]
    alice.ok(alice.patch(mv % (bid, ts["e"]["id"]), {"listId": todo, "position": 0}))
    assert titles_in(alice, bid, todo) == ["e", "a", "c", "d", "b"]  # onto itself
    alice.ok(alice.patch(mv % (bid, ts["a"]["id"]), {"listId": todo, "position": 99}))
    assert titles_in(alice, bid, todo) == ["e", "c", "d", "b", "a"]  # past the end
    alice.ok(alice.patch(mv % (bid, ts["a"]["id"]), {"listId": todo, "position": 1}))
    list_positions_ok(alice, bid)

    # between lists: the source closes its gap, the target opens one
    m = alice.ok(alice.patch(mv % (bid, ts["c"]["id"]), {"listId": doing, "position": 1}))["data"]
    assert m["listId"] == doing and m["position"] == 1
    assert titles_in(alice, bid, todo) == ["e", "a", "d", "b"]
    assert titles_in(alice, bid, doing) == ["x", "c", "y"]
    (ev,) = last_events(alice, bid, 1)
    assert ev["data"]["from"] == {"listId": todo, "position": 2}
    # to an empty list, past its end: clamped
    m = alice.ok(alice.patch(mv % (bid, ts["a"]["id"]), {"listId": done, "position": 50}))["data"]
    assert m["position"] == 0
    m = alice.ok(alice.patch(mv % (bid, ts["d"]["id"]), {"listId": done, "position": 50}))["data"]
    assert m["position"] == 1
    assert titles_in(alice, bid, todo) == ["e", "b"]
    assert titles_in(alice, bid, done) == ["a", "d"]
    list_positions_ok(alice, bid)


def test_task_move_invalid(alice, board):
    bid, (todo, doing, _) = board
    t = alice.create_task(bid, todo, "stay")
    other_list = alice.lists("demo")[0]["id"]
    private_list = alice.lists("private")[0]["id"]
    mv = "/boards/%s/tasks/%d/move" % (bid, t["id"])
    with Unchanged(alice, bid, "demo", "private"):
        assert_error(alice.patch(mv, {"listId": doing}), 422, field="position")
        assert_error(alice.patch(mv, {"position": 0}), 422, field="listId")
        assert_error(alice.patch(mv, {"listId": doing, "position": -1}), 422, field="position")
        assert_error(alice.patch(mv, {"listId": "2", "position": 0}), 422, field="listId")
        assert_error(alice.patch(mv, {"listId": doing, "position": 0, "x": 1}), 422, field="x")
        # a list of another board (or none at all) is not a target
        for lid in (other_list, private_list, 999999):
            e = assert_error(alice.patch(mv, {"listId": lid, "position": 0}), (404, 422))
            assert e["status"] == 404 or e.get("field") == "listId", e
        assert_error(alice.patch("/boards/%s/tasks/999999/move" % bid,
                                 {"listId": doing, "position": 0}), 404)


# ---------------------------------------------------------------------------
# aliases


def test_alias_routes(alice, board):
    bid, (todo, doing, _) = board
    e0 = alice.last_event_id(bid)
    r = alice.post("/tasks", {"boardId": bid, "listId": todo, "title": "via alias"})
    t = alice.ok(r, 201)["data"]
    assert t["boardId"] == bid and t["title"] == "via alias" and t["listId"] == todo
    assert r.headers["Location"].endswith("/boards/%s/tasks/%d" % (bid, t["id"]))
    assert alice.ok(alice.get("/boards/%s/tasks/%d" % (bid, t["id"])))["data"] == t
    alice.create_task(bid, doing, "there")
    m = alice.ok(alice.patch("/tasks/%d/move" % t["id"], {"listId": doing, "position": 0}))
    assert m["data"]["listId"] == doing and m["data"]["position"] == 0
    assert titles_in(alice, bid, doing) == ["via alias", "there"]
    r = alice.delete("/tasks/%d" % t["id"])
    assert r.status_code == 204
    assert_error(alice.get("/boards/%s/tasks/%d" % (bid, t["id"])), 404)
    types = [e["type"] for e in alice.events_since(bid, e0)]
    assert types == ["task_created", "task_created", "task_moved", "task_deleted"]
    list_positions_ok(alice, bid)


def test_alias_if_match(alice, board):
    bid, (todo, doing, _) = board
    t = alice.create_task(bid, todo, "versioned")
    alice.ok(alice.patch("/boards/%s/tasks/%d" % (bid, t["id"]), {"title": "v2"}))
    cur = alice.ok(alice.get("/boards/%s/tasks/%d" % (bid, t["id"])))["data"]
    with Unchanged(alice, bid):
        r = alice.patch("/tasks/%d/move" % t["id"], {"listId": doing, "position": 0},
                        headers={"If-Match": '"1"'})
        assert assert_error(r, 412)["current"] == cur
        r = alice.delete("/tasks/%d" % t["id"], headers={"If-Match": '"1"'})
        assert assert_error(r, 412)["current"] == cur
    r = alice.patch("/tasks/%d/move" % t["id"], {"listId": doing, "position": 0},
                    headers={"If-Match": '"2"'})
    assert alice.ok(r)["data"]["version"] == 3
    assert alice.delete("/tasks/%d" % t["id"], headers={"If-Match": '"3"'}).status_code == 204


def test_alias_errors(alice, board):
    bid, (todo, _, _) = board
    with Unchanged(alice, bid):
        assert_error(alice.post("/tasks", {"listId": todo, "title": "x"}), 422, field="boardId")
        assert_error(alice.post("/tasks", {"boardId": "Bad Id!", "listId": todo, "title": "x"}),
                     422, field="boardId")
        assert_error(alice.post("/tasks", {"boardId": 5, "listId": todo, "title": "x"}),
                     422, field="boardId")
        assert_error(alice.post("/tasks", {"boardId": "nosuchboard", "listId": todo,
                                           "title": "x"}), 404)
        assert_error(alice.post("/tasks", {"boardId": bid, "listId": todo}), 422, field="title")
        assert_error(alice.patch("/tasks/999999/move", {"listId": todo, "position": 0}), 404)
        assert_error(alice.delete("/tasks/999999"), 404)


def test_private_board_refuses_bob_on_every_route(alice, bob):
    lists = alice.lists("private")
    lid = lists[0]["id"]
    t = alice.create_task("private", lid, "alice only")
    demo_list = alice.lists("demo")[0]["id"]
    demo_task = alice.create_task("demo", demo_list, "public")
    attempts = [
        ("GET", "/boards/private", None),
        ("GET", "/boards/private/tasks", None),
        ("GET", "/boards/private/tasks/%d" % t["id"], None),
        ("GET", "/boards/private/updates?since=0", None),
        ("PATCH", "/boards/private", {"name": "mine now"}),
        ("DELETE", "/boards/private", None),
        ("POST", "/boards/private/lists", {"name": "bob's"}),
        ("PATCH", "/boards/private/lists/%d" % lid, {"name": "bob's"}),
        ("DELETE", "/boards/private/lists/%d?cascade=1" % lid, None),
        ("POST", "/boards/private/tasks", {"listId": lid, "title": "bob was here"}),
        ("PATCH", "/boards/private/tasks/%d" % t["id"], {"title": "bob was here"}),
        ("PATCH", "/boards/private/tasks/%d/move" % t["id"], {"listId": lid, "position": 0}),
        ("DELETE", "/boards/private/tasks/%d" % t["id"], None),
        ("POST", "/tasks", {"boardId": "private", "listId": lid, "title": "bob was here"}),
        ("PATCH", "/tasks/%d/move" % t["id"], {"listId": lid, "position": 0}),
        ("DELETE", "/tasks/%d" % t["id"], None),
    ]
    with Unchanged(alice, "private", "demo"):
        for method, path, body in attempts:
            kw = {"data": json.dumps(body), "headers": JSON} if body is not None else {}
            r = bob.request(method, path, **kw)
            # a task of a board one may not read answers as a task that does not exist
            want = (404,) if path.startswith("/tasks/") else (401, 403)
            assert r.status_code in want, (method, path, r.status_code, r.text[:300])
        # normalised spellings of the same path are refused too
        for path in ("/boards//private", "/boards/private/", "/boards/%70rivate",
                     "/boards/demo/../private", "/boards/demo/%2e%2e/private",
                     "/boards/./private/tasks"):
            r = bob.raw("GET", path)
            assert r.status_code in (401, 403), (path, r.status_code, r.text[:300])
        # and a demo task cannot be moved into a list of the private board
        r = bob.patch("/boards/demo/tasks/%d/move" % demo_task["id"],
                      {"listId": lid, "position": 0})
        assert r.status_code in (404, 422), r.text
        r = bob.post("/boards/demo/tasks", {"listId": lid, "title": "smuggled"})
        assert r.status_code in (404, 422), r.text
        r = bob.post("/tasks", {"boardId": "demo", "listId": lid, "title": "smuggled"})
        assert r.status_code in (404, 422), r.text
        # nor is a private task reachable through the demo board's routes
        assert_error(bob.get("/boards/demo/tasks/%d" % t["id"]), 404)
        assert_error(bob.patch("/boards/demo/tasks/%d" % t["id"], {"title": "x"}), 404)
        assert_error(bob.delete("/boards/demo/tasks/%d" % t["id"]), 404)
    # alice may use every one of them (positive control for the aliases)
    r = alice.patch("/tasks/%d/move" % t["id"], {"listId": lists[1]["id"], "position": 0})
    assert alice.ok(r)["data"]["listId"] == lists[1]["id"]
    assert alice.delete("/tasks/%d" % t["id"]).status_code == 204
    alice.ok(alice.post("/tasks", {"boardId": "private", "listId": lid, "title": "ok"}), 201)


# ---------------------------------------------------------------------------
# Idempotency-Key


def test_idempotency_key_replays_without_a_second_event(alice, bob, board):
    bid, (todo, _, _) = board
    key = "create-" + unique("k")
    body = {"listId": todo, "title": "exactly once"}
    r1 = alice.post("/boards/%s/tasks" % bid, body, headers={"Idempotency-Key": key})
    t = alice.ok(r1, 201)["data"]
    assert "Idempotent-Replayed" not in r1.headers
    with Unchanged(alice, bid):
        r2 = alice.post("/boards/%s/tasks" % bid, body, headers={"Idempotency-Key": key})
        assert r2.status_code == 201
        assert r2.json() == r1.json()
        assert r2.headers["Location"] == r1.headers["Location"]
        assert r2.headers.get("Idempotent-Replayed") == "true"
        # the same key with another body is refused
        r3 = alice.post("/boards/%s/tasks" % bid, {"listId": todo, "title": "something else"},
                        headers={"Idempotency-Key": key})
        assert_error(r3, 422)
        # ... and on another route
        r4 = alice.post("/tasks", dict(body, boardId=bid), headers={"Idempotency-Key": key})
        assert_error(r4, 422)
    assert [x["id"] for x in alice.tasks(bid)] == [t["id"]]
    # keys belong to their user: bob's identical request is his own
    r5 = bob.post("/boards/%s/tasks" % bid, body, headers={"Idempotency-Key": key})
    t5 = bob.ok(r5, 201)["data"]
    assert "Idempotent-Replayed" not in r5.headers
    assert t5["id"] != t["id"] and t5["createdBy"] == "bob"


def test_idempotency_key_must_be_1_to_200_characters(alice, board):
    bid, (todo, _, _) = board
    with Unchanged(alice, bid):
        r = alice.post("/boards/%s/tasks" % bid, {"listId": todo, "title": "x"},
                       headers={"Idempotency-Key": "k" * 201})
        assert_error(r, 400)
    r = alice.post("/boards/%s/tasks" % bid, {"listId": todo, "title": "x"},
                   headers={"Idempotency-Key": unique("k") + "k" * 150})
    alice.ok(r, 201)


def test_idempotency_key_on_alias_and_board_create(alice, board):
    bid, (todo, _, _) = board
    key = unique("k")
    body = {"boardId": bid, "listId": todo, "title": "alias once"}
    r1 = alice.post("/tasks", body, headers={"Idempotency-Key": key})
    alice.ok(r1, 201)
    with Unchanged(alice, bid):
        r2 = alice.post("/tasks", body, headers={"Idempotency-Key": key})
        assert r2.status_code == 201 and r2.json() == r1.json()
        assert r2.headers.get("Idempotent-Replayed") == "true"
    new = unique("idb")
    key = unique("k")
    r1 = alice.post("/boards", {"id": new, "name": "Once"}, headers={"Idempotency-Key": key})
    alice.ok(r1, 201)
    with Unchanged(alice, new):
        r2 = alice.post("/boards", {"id": new, "name": "Once"}, headers={"Idempotency-Key": key})
        assert r2.status_code == 201 and r2.json() == r1.json()  # not a 409
        assert r2.headers.get("Idempotent-Replayed") == "true"


# ---------------------------------------------------------------------------
# bad input: nothing written, nothing published


def test_malformed_json_is_400_with_line_and_column(alice, board):
    bid, (todo, _, _) = board
    with Unchanged(alice, bid):
        for raw in ('{"listId": %d, "title": "x"' % todo,
                    '{"listId": %d,\n "title": "x",\n "description": nope}' % todo,
                    "{'listId': 1}", "", "   ", '{"title": "x"} trailing'):
            r = alice.post("/boards/%s/tasks" % bid, raw.encode())
            e = assert_error(r, 400)
            assert "line" in e["message"] and "column" in e["message"], e
        r = alice.post("/boards/%s/tasks" % bid,
                       '{"listId": %d,\n "title": "x",\n "description": nope}' % todo)
        assert "line 3" in assert_error(r, 400)["message"]


def test_duplicate_keys_are_400(alice, board):
    bid, (todo, _, _) = board
    with Unchanged(alice, bid):
        r = alice.post("/boards/%s/tasks" % bid,
                       '{"listId": %d, "title": "a", "title": "b"}' % todo)
        assert_error(r, 400)
        r = alice.post("/boards", '{"name": "x", "name": "y"}')
        assert_error(r, 400)


def test_body_must_be_an_object(alice, board):
    bid, (todo, _, _) = board
    with Unchanged(alice, bid):
        for raw in ("[]", '"title"', "42", "null", '[{"listId": %d, "title": "x"}]' % todo):
            assert_error(alice.post("/boards/%s/tasks" % bid, raw), (400, 422))


@pytest.mark.parametrize("body,field", [
    ({"title": "x"}, "listId"),
    ({"listId": "1", "title": "x"}, "listId"),
    ({"listId": True, "title": "x"}, "listId"),
    ({"listId": 0, "title": "x"}, "listId"),
    ({"listId": -3, "title": "x"}, "listId"),
    ({"listId": "L"}, "title"),
    ({"listId": "L", "title": 5}, "title"),
    ({"listId": "L", "title": ""}, "title"),
    ({"listId": "L", "title": None}, "title"),
    ({"listId": "L", "title": "t" * 201}, "title"),
    ({"listId": "L", "title": "\u00e9" * 201}, "title"),
    ({"listId": "L", "title": "x", "description": "d" * 10001}, "description"),
    ({"listId": "L", "title": "x", "description": None}, "description"),
    ({"listId": "L", "title": "x", "description": ["a"]}, "description"),
    ({"listId": "L", "title": "x", "assignee": 5}, "assignee"),
    ({"listId": "L", "title": "x", "position": -1}, "position"),
    ({"listId": "L", "title": "x", "position": 1.5}, "position"),
    ({"listId": "L", "title": "x", "position": "0"}, "position"),
    ({"listId": "L", "title": "x", "color": "red"}, "color"),
    ({"listId": "L", "title": "x", "boardId": "demo"}, "boardId"),
    ({"listId": "L", "title": "x", "id": 5}, "id"),
])
def test_task_create_invalid_fields_are_422(alice, board, body, field):
    bid, (todo, _, _) = board
    body = {k: (todo if v == "L" else v) for k, v in body.items()}
    with Unchanged(alice, bid):
        e = assert_error(alice.post("/boards/%s/tasks" % bid, body), 422, field=field)
        assert e["code"] != "invalid_json"


def test_nul_in_a_string_is_a_field_error_not_malformed_json(alice, board):
    bid, (todo, _, _) = board
    with Unchanged(alice, bid):
        r = alice.post("/boards/%s/tasks" % bid, '{"listId": %d, "title": "a\\u0000b"}' % todo)
        assert_error(r, 422, field="title")


def test_field_length_limits_count_characters(alice, board):
    bid, (todo, _, _) = board
    t = alice.create_task(bid, todo, "\u00e9" * 200, description="\u6f22" * 10000)
    assert t["title"] == "\u00e9" * 200 and len(t["description"]) == 10000
    t = alice.create_task(bid, todo, "t" * 200, description="")
    assert len(t["title"]) == 200


def test_task_create_in_unknown_or_foreign_list(alice, board):
    bid, _ = board
    foreign = alice.lists("demo")[0]["id"]
    with Unchanged(alice, bid, "demo"):
        for lid in (foreign, 999999):
            e = assert_error(alice.post("/boards/%s/tasks" % bid, {"listId": lid, "title": "x"}),
                             (404, 422))
            assert e["status"] == 404 or e.get("field") == "listId", e


def test_body_over_the_limit_is_413(alice, board):
    bid, (todo, _, _) = board
    big = json.dumps({"listId": todo, "title": "x", "description": "d" * (2 * 1024 * 1024)})
    with Unchanged(alice, bid):
        r = alice.post("/boards/%s/tasks" % bid, big)
        assert_error(r, 413)

        def chunks():  # no Content-Length: the limit must hold while reading
            yield ('{"listId": %d, "title": "x", "description": "' % todo).encode()
            for _ in range(64):
                yield b"d" * 32768
            yield b'"}'

        r = alice.request("POST", "/boards/%s/tasks" % bid, data=chunks(), headers=JSON)
        assert_error(r, 413)


def test_non_json_body_is_415(alice, board):
    bid, (todo, _, _) = board
    body = json.dumps({"listId": todo, "title": "x"})
    with Unchanged(alice, bid):
        for ct in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                   "application/jsonp", None):
            h = {"Content-Type": ct} if ct else {}
            r = alice.request("POST", "/boards/%s/tasks" % bid, data=body.encode(), headers=h)
            if ct is None:
                assert "Content-Type" not in r.request.headers
            assert_error(r, 415)
    # the JSON types are accepted
    for ct in ("application/json; charset=utf-8", "APPLICATION/JSON"):
        r = alice.request("POST", "/boards/%s/tasks" % bid, data=body.encode(),
                          headers={"Content-Type": ct})
        alice.ok(r, 201)


def test_unknown_ids_are_404(alice, board):
    bid, (todo, _, _) = board
    t = alice.create_task(bid, todo, "here")
    with Unchanged(alice, bid):
        assert_error(alice.get("/boards/nosuchboard"), 404, code="board_not_found")
        assert_error(alice.get("/boards/nosuchboard/tasks"), 404)
        assert_error(alice.get("/boards/nosuchboard/updates"), 404)
        assert_error(alice.patch("/boards/nosuchboard", {"name": "x"}), 404)
        assert_error(alice.delete("/boards/nosuchboard"), 404)
        assert_error(alice.post("/boards/nosuchboard/tasks", {"listId": todo, "title": "x"}),
                     404)
        assert_error(alice.get("/boards/nosuchboard/tasks/%d" % t["id"]), 404)
        assert_error(alice.get("/boards/%s/tasks/999999" % bid), 404, code="task_not_found")
        assert_error(alice.patch("/boards/%s/tasks/999999" % bid, {"title": "x"}), 404)
        assert_error(alice.delete("/boards/%s/tasks/999999" % bid), 404)
        # a task addressed through another board does not exist there
        assert_error(alice.get("/boards/demo/tasks/%d" % t["id"]), 404)
        assert_error(alice.patch("/boards/demo/tasks/%d" % t["id"], {"title": "x"}), 404)
        assert_error(alice.delete("/boards/demo/tasks/%d" % t["id"]), 404)
        assert_error(alice.get("/boards/%s/nothing-here" % bid), 404)
        assert_error(alice.get("/boards/%s/tasks/%d/extra" % (bid, t["id"])), 404)


@pytest.mark.parametrize("path", [
    "/boards/UPPER", "/boards/demo/tasks/0", "/boards/demo/tasks/01",
    "/boards/demo/tasks/abc", "/boards/demo/tasks/-1", "/boards/demo/tasks/1e3",
    "/boards/demo/tasks/99999999999999999999", "/boards/demo/lists/abc",
    "/boards/" + "a" * 65, "/boards/_x", "/boards/demo%20x", "/tasks/0", "/tasks/abc/move",
])
def test_odd_ids_are_404(alice, bob, path):
    with Unchanged(alice, "demo"):
        for c in (alice, bob):
            assert_error(c.raw("GET", path), (400, 404))
            assert_error(c.raw("DELETE", path), (400, 404, 405))
            assert_error(c.raw("PATCH", path, body=b'{"title": "x"}', headers=JSON),
                         (400, 404, 405))


def test_dot_segments_never_name_a_board(alice, bob):
    """`..` is resolved by the server before routing (RFC 3986), so it can never
    be taken as a board id: the answer is a 404/400 or exactly the answer for
    the resolved path, and never a board."""
    cases = {"/boards/..": "/", "/boards/%2e%2e": "/", "/boards/%2E%2E/tasks": "/tasks",
             "/boards/%2e%2e/tasks": "/tasks", "/boards/demo/tasks/..": "/boards/demo",
             "/boards/demo/%2e%2e/%2e%2e/tasks": "/tasks"}
    with Unchanged(alice, "demo", "private"):
        for c in (alice, bob):
            for path, resolved in cases.items():
                r = c.raw("GET", path)
                if r.status_code in (400, 404):
                    continue
                ref = c.raw("GET", resolved)
                assert (r.status_code, r.content) == (ref.status_code, ref.content), path
                if r.headers.get("Content-Type", "").startswith("application/json"):
                    body = r.json()
                    assert "error" in body or body.get("data", {}).get("board", {}).get(
                        "id") == "demo", (path, body)
            r = c.raw("POST", "/boards/%2e%2e/tasks", body=b'{"listId": 1, "title": "x"}',
                      headers=JSON)
            assert not 200 <= r.status_code < 300, r.status_code


def test_sql_metacharacters_are_stored_verbatim(alice, board):
    bid, (todo, doing, _) = board
    nasty = [
        "x'); DROP TABLE tasks;--",
        "Robert'); DELETE FROM events WHERE (1=1 OR '1'='1",
        "\" OR \"\"=\"",
        "%s %d %% %n \\' \\\" ?1 :name @x $1",
        "line1\nline2\ttab \\n",
        "\u00fcml\u00e4ut \u6f22\u5b57 \U0001F600 \u202e rtl",
        "<script>alert(1)</script>",
        "; SELECT * FROM idempotency; --",
    ]
    created = []
    for s in nasty:
        t = alice.create_task(bid, todo, s[:200], description=s, assignee=s[:64])
        assert (t["title"], t["description"], t["assignee"]) == (s[:200], s, s[:64])
        created.append(t)
    u = alice.ok(alice.patch("/boards/%s/tasks/%d" % (bid, created[0]["id"]),
                             {"title": nasty[1]}))["data"]
    assert u["title"] == nasty[1]
    name = "b'); DROP TABLE boards;--"
    alice.ok(alice.patch("/boards/" + bid, {"name": name}))
    lst = alice.ok(alice.post("/boards/%s/lists" % bid, {"name": nasty[0]}), 201)["data"]
    back = {t["id"]: t for t in alice.tasks(bid)}
    for t, s in zip(created[1:], nasty[1:]):
        assert back[t["id"]]["title"] == s[:200] and back[t["id"]]["description"] == s
    assert back[created[0]["id"]]["title"] == nasty[1]
    snap = alice.snapshot(bid)["data"]
    assert snap["board"]["name"] == name
    assert any(l["id"] == lst["id"] and l["name"] == nasty[0] for l in snap["lists"])
    # the tables are all still there
    assert alice.ok(alice.get("/boards/demo"))["data"]["board"]["id"] == "demo"
    assert len(alice.events_since(bid, 0)) == alice.last_event_id(bid)


@pytest.mark.parametrize("method,path,allowed", [
    ("PUT", "/boards", {"GET", "POST"}),
    ("DELETE", "/boards", {"GET", "POST"}),
    ("PATCH", "/boards", {"GET", "POST"}),
    ("POST", "/boards/demo", {"GET", "PATCH", "DELETE"}),
    ("PUT", "/boards/demo", {"GET", "PATCH", "DELETE"}),
    ("GET", "/boards/demo/lists", {"POST"}),
    ("DELETE", "/boards/demo/lists", {"POST"}),
    ("GET", "/boards/demo/lists/1", {"PATCH", "DELETE"}),
    ("POST", "/boards/demo/lists/1", {"PATCH", "DELETE"}),
    ("PUT", "/boards/demo/tasks", {"GET", "POST"}),
    ("DELETE", "/boards/demo/tasks", {"GET", "POST"}),
    ("POST", "/boards/demo/tasks/1", {"GET", "PATCH", "DELETE"}),
    ("PUT", "/boards/demo/tasks/1", {"GET", "PATCH", "DELETE"}),
    ("GET", "/boards/demo/tasks/1/move", {"PATCH"}),
    ("POST", "/boards/demo/tasks/1/move", {"PATCH"}),
    ("POST", "/boards/demo/updates", {"GET"}),
    ("GET", "/tasks", {"POST"}),
    ("PATCH", "/tasks", {"POST"}),
    ("GET", "/tasks/1", {"DELETE"}),
    ("PATCH", "/tasks/1", {"DELETE"}),
    ("GET", "/tasks/1/move", {"PATCH"}),
    ("POST", "/tasks/1/move", {"PATCH"}),
])
def test_wrong_method_is_405_with_allow(alice, method, path, allowed):
    lid = alice.lists("demo")[0]["id"]
    body = json.dumps({"boardId": "demo", "listId": lid, "title": "x", "name": "x",
                       "position": 0}) if method != "GET" else None
    with Unchanged(alice, "demo"):
        r = alice.request(method, path, data=body, headers=JSON if body else {})
        assert_error(r, 405)
        allow = {m.strip() for m in r.headers["Allow"].split(",") if m.strip()}
        assert allow - {"HEAD", "OPTIONS"} == allowed, r.headers["Allow"]
        assert method not in allow


def test_head_of_a_snapshot(alice):
    g = alice.get("/boards/demo")
    h = alice.head("/boards/demo")
    assert h.status_code == 200 and not h.content
    assert h.headers["ETag"] == g.headers["ETag"]


def test_board_list_comes_in_pages_that_follow_next(alice, bob):
    """GET /boards?limit=N&after=C: every board the caller may read, once, in
    creation order, across pages; boards one may not read are never listed."""
    mine = [alice.create_board(unique("pg"))["id"] for _ in range(5)]

    def walk(client, limit):
        seen, after = [], None
        for _ in range(10000):
            params = {"limit": limit}
            if after:
                params["after"] = after
            d = client.ok(client.get("/boards", params=params))
            assert len(d["data"]) <= limit, d
            seen += [b["id"] for b in d["data"]]
            after = d["next"]
            if after is None:
                return seen
        raise AssertionError("the pages never ended")

    every = walk(alice, 1000)
    assert len(every) == len(set(every)) and set(mine) <= set(every)
    assert walk(alice, 2) == every  # the same boards, in the same order, two at a time
    assert every.index(mine[0]) < every.index(mine[4])
    assert "private" in every and "private" not in walk(bob, 3)
    for q in ("limit=0", "limit=1001", "limit=x", "after=nonsense", "after=~demo"):
        assert_error(alice.get("/boards?" + q), 400)
    # without a limit, a page of the default size
    d = alice.ok(alice.get("/boards"))
    assert len(d["data"]) == min(100, len(every)) and "next" in d
