"""The event log: GET /boards/:b/updates?since=N, the snapshot's lastEventId and
ETag, event ids under concurrent writers served by several child processes,
and event ids across restarts."""

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from harness import JSON, Unchanged, assert_error, unique, wait_until

EVENT_KEYS = {"id", "type", "boardId", "at", "actor", "data"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def updates(client, board, since=None):
    params = {} if since is None else {"since": since}
    return client.ok(client.get("/boards/%s/updates" % board, params=params))


def assert_reset(d, board, last):
    assert d["lastEventId"] == last, d
    assert len(d["data"]) == 1, d
    item = d["data"][0]
    assert item["type"] == "reset" and item["lastEventId"] == last, item
    assert item["snapshot"].endswith("/boards/" + board), item
    assert "id" not in item, item  # a reset is not an event of the log


def make_history(alice, bob, board, lists):
    """Performs one change of each kind; returns [(type, actor)] in order."""
    todo, doing, done = lists
    log = []
    l = alice.ok(alice.post("/boards/%s/lists" % board, {"name": "Extra"}), 201)["data"]
    log.append(("list_created", "alice"))
    t1 = alice.create_task(board, todo, "one")
    log.append(("task_created", "alice"))
    t2 = bob.create_task(board, todo, "two")
    log.append(("task_created", "bob"))
    bob.ok(bob.patch("/boards/%s/tasks/%d" % (board, t1["id"]), {"title": "one!"}))
    log.append(("task_updated", "bob"))
    alice.ok(alice.patch("/boards/%s/tasks/%d/move" % (board, t2["id"]),
                         {"listId": doing, "position": 0}))
    log.append(("task_moved", "alice"))
    alice.ok(alice.patch("/boards/%s/lists/%d" % (board, l["id"]), {"name": "Extra!"}))
    log.append(("list_updated", "alice"))
    assert bob.delete("/boards/%s/tasks/%d" % (board, t1["id"])).status_code == 204
    log.append(("task_deleted", "bob"))
    assert alice.delete("/boards/%s/lists/%d" % (board, l["id"])).status_code == 204
    log.append(("list_deleted", "alice"))
    alice.ok(alice.patch("/boards/" + board, {"name": "History board"}))
    log.append(("board_updated", "alice"))
    return log


# ---------------------------------------------------------------------------
# updates?since=N


def test_updates_without_since_is_empty_with_last_event_id(alice, bob, board):
    bid, lists = board
    assert updates(alice, bid) == {"data": [], "lastEventId": 0}
    make_history(alice, bob, bid, lists)
    d = updates(alice, bid)
    assert d["data"] == [] and d["lastEventId"] == 9
    assert alice.snapshot(bid)["lastEventId"] == 9


def test_updates_since_returns_exactly_the_later_events_in_order(alice, bob, board):
    bid, lists = board
    history = make_history(alice, bob, bid, lists)
    n = len(history)
    full = updates(alice, bid, 0)
    assert full["lastEventId"] == n
    evs = full["data"]
    assert [(e["type"], e["actor"]) for e in evs] == history
    assert [e["id"] for e in evs] == list(range(1, n + 1))
    for e in evs:
        assert set(e) == EVENT_KEYS, e
        assert e["boardId"] == bid and ISO.match(e["at"]), e
        assert isinstance(e["data"], dict), e
    assert [e["at"] for e in evs] == sorted(e["at"] for e in evs)
    by_type = {e["type"]: e["data"] for e in evs}
    assert by_type["task_created"]["task"]["title"] == "two"
    assert by_type["task_updated"]["task"]["title"] == "one!"
    assert by_type["task_moved"]["task"]["listId"] == lists[1]
    assert by_type["task_moved"]["from"] == {"listId": lists[0], "position": 1}
    assert isinstance(by_type["task_deleted"]["taskId"], int)
    assert by_type["list_created"]["list"]["name"] == "Extra"
    assert by_type["board_updated"]["board"]["name"] == "History board"
    for k in range(n + 1):
        d = updates(bob, bid, k)
        assert d["lastEventId"] == n
        assert d["data"] == evs[k:], k
    assert updates(alice, bid, n)["data"] == []


def test_updates_since_ahead_of_the_board_is_a_reset(alice, bob, board):
    bid, lists = board
    assert_reset(updates(alice, bid, 1), bid, 0)
    make_history(alice, bob, bid, lists)
    for since in (10, 11, 1000, 9999999999):
        assert_reset(updates(alice, bid, since), bid, 9)


@pytest.mark.parametrize("since", ["abc", "-1", "1.5", "", "0x10", "12345678901234567890"])
def test_updates_since_malformed_is_400(alice, since):
    with Unchanged(alice, "demo"):
        r = alice.get("/boards/demo/updates?since=" + since)
        assert_error(r, 400)


def test_updates_since_older_than_history_is_a_reset(servers):
    """With RTBoardHistory 64 the server keeps at least the last 64 events and
    trims now and then; a cursor older than what it kept gets a reset."""
    srv = servers.start(HISTORY=64)
    alice = srv.client("alice")
    bid = alice.create_board(unique("hist"))["id"]
    lid = alice.lists(bid)[0]["id"]
    n = 210
    for i in range(n):
        alice.create_task(bid, lid, "t%d" % i)
    assert alice.last_event_id(bid) == n
    oldest_kept = None
    for since in range(0, n + 1):
        d = updates(alice, bid, since)
        if d["data"] and d["data"][0]["type"] == "reset":
            assert oldest_kept is None, "reset at since=%d after events at %d" % (since,
                                                                                 oldest_kept)
            assert_reset(d, bid, n)
        else:
            if oldest_kept is None:
                oldest_kept = since
            assert [e["id"] for e in d["data"]] == list(range(since + 1, n + 1)), since
            assert d["lastEventId"] == n
    assert oldest_kept is not None
    assert oldest_kept >= 1, "nothing was trimmed from %d events with history 64" % n
    assert n - oldest_kept >= 64, "fewer than 64 events kept (from %d)" % oldest_kept
    # the recovery path a client takes: the snapshot, then updates from its lastEventId
    snap = alice.snapshot(bid)
    assert snap["lastEventId"] == n and len(snap["data"]["tasks"]) == n
    t = alice.create_task(bid, lid, "after the reset")
    d = updates(alice, bid, snap["lastEventId"])
    assert [e["id"] for e in d["data"]] == [n + 1]
    assert d["data"][0]["data"]["task"] == t


# ---------------------------------------------------------------------------
# the snapshot


def test_snapshot_last_event_id_and_etag(alice, bob, board):
    bid, (todo, _, _) = board
    alice.create_task(bid, todo, "a")
    r = alice.get("/boards/" + bid)
    snap = alice.ok(r)
    etag = r.headers["ETag"]
    assert snap["lastEventId"] == 1 == snap["data"]["board"]["lastEventId"]
    assert updates(alice, bid)["lastEventId"] == 1
    assert {b["id"]: b["lastEventId"] for b in alice.boards()}[bid] == 1
    # unchanged: 304, no body, same ETag, for any user who may read it
    for c in (alice, bob):
        r = c.get("/boards/" + bid, headers={"If-None-Match": etag})
        assert r.status_code == 304 and not r.content
        assert r.headers["ETag"] == etag
    r = alice.head("/boards/" + bid, headers={"If-None-Match": etag})
    assert r.status_code == 304
    # changed: 200, a new ETag, the new lastEventId
    alice.create_task(bid, todo, "b")
    r = alice.get("/boards/" + bid, headers={"If-None-Match": etag})
    assert r.status_code == 200
    assert r.headers["ETag"] != etag
    assert r.json()["lastEventId"] == 2 and len(r.json()["data"]["tasks"]) == 2
    r2 = alice.get("/boards/" + bid, headers={"If-None-Match": r.headers["ETag"]})
    assert r2.status_code == 304


def test_snapshot_etag_changes_when_a_board_is_recreated(alice, bob):
    """A board deleted and created again under the same id, with as many events,
    is another representation: a client's cached copy must not be confirmed."""
    bid = unique("again")
    alice.create_board(bid)
    lid = alice.lists(bid)[0]["id"]
    alice.create_task(bid, lid, "old one")
    alice.create_task(bid, lid, "old two")
    r = alice.get("/boards/" + bid)
    etag, old = r.headers["ETag"], r.json()
    assert alice.delete("/boards/" + bid).status_code == 204
    alice.create_board(bid)
    lid = alice.lists(bid)[0]["id"]
    alice.create_task(bid, lid, "new one")
    alice.create_task(bid, lid, "new two")
    new = alice.snapshot(bid)
    assert new["lastEventId"] == old["lastEventId"]
    assert new["data"] != old["data"]
    r = bob.get("/boards/" + bid, headers={"If-None-Match": etag})
    assert r.status_code == 200, "304 confirms the deleted board's snapshot %s" % etag
    assert r.json() == new


# ---------------------------------------------------------------------------
# concurrency


WRITERS = 8
PER_WRITER = 200
TOTAL = WRITERS * PER_WRITER
USERS = ("alice", "bob", "carol")
STEADY_SNAPSHOTS = 15


class Run:
    """What one concurrent run produced, for the tests below to check."""


def _consistent(d):
    """On a board where every event created one task, a consistent snapshot holds
    exactly lastEventId tasks, at positions 0..n-1."""
    ts = d["data"]["tasks"]
    return len(ts) == d["lastEventId"] and sorted(t["position"] for t in ts) == list(
        range(len(ts)))


@pytest.fixture(scope="module")
def concurrent_run(server, alice):
    """Phase 1: 8 writers (threads, each its own connections) create 200 tasks each
    on one fresh board, while a poller follows updates?since=N and a reader takes
    snapshots. Every 20th request of a writer closes its connection so that the
    connections spread over the child processes. The board, its log and the
    access log are recorded. Phase 2: three writers keep adding tasks to the same
    board while 15 snapshots are read."""
    run = Run()
    run.board = bid = alice.create_board(unique("conc"))["id"]
    lid = alice.lists(bid)[0]["id"]
    url = server.url("/boards/%s/tasks" % bid)
    stop = threading.Event()
    run.problems = []  # from the poller
    run.snapshot_problems = []
    run.seen = []  # events as the live poller saw them
    run.snapshots = []  # lastEventId of every snapshot read during phase 1

    def session(user):
        s = requests.Session()
        s.auth = (user, user)
        return s

    def writer(w):
        user = USERS[w % len(USERS)]
        out = []
        with session(user) as s:
            for j in range(PER_WRITER):
                body = json.dumps({"listId": lid, "title": "w%d-%d-%s" % (w, j, user)})
                h = dict(JSON)
                if j % 20 == 19:
                    h["Connection"] = "close"
                r = s.post(url, data=body, headers=h, timeout=30)
                out.append((r.status_code, r.json()))
        return out

    def poller():
        since = 0
        with session("bob") as s:
            while True:
                final = stop.is_set()
                r = s.get(server.url("/boards/%s/updates" % bid), params={"since": since},
                          timeout=30)
                if r.status_code != 200:
                    run.problems.append("poller: %d %s" % (r.status_code, r.text[:300]))
                    return
                d = r.json()
                ids = [e["id"] for e in d["data"]]
                if d.get("reset") or ids != list(range(since + 1, since + 1 + len(ids))):
                    run.problems.append("poller after %d got %r" % (since, ids[:5]))
                    return
                run.seen.extend(d["data"])
                if ids:
                    since = ids[-1]
                elif final:
                    return

    def snapshot(s, phase):
        r = s.get(server.url("/boards/" + bid), timeout=30)
        if r.status_code != 200:
            run.snapshot_problems.append("phase %d: %d %s" % (phase, r.status_code,
                                                              r.text[:200]))
            return None
        d = r.json()
        if not _consistent(d):
            run.snapshot_problems.append("phase %d: snapshot at %d holds %d tasks" % (
                phase, d["lastEventId"], len(d["data"]["tasks"])))
        return d["lastEventId"]

    def snapshotter():
        with session("carol") as s:
            while not stop.is_set():
                n = snapshot(s, 1)
                if n is not None:
                    run.snapshots.append(n)

    def guarded(fn, sink):
        def go():
            try:
                fn()
            except Exception as e:  # reported by the tests
                sink.append("%s: %r" % (fn.__name__, e))
        return go

    side = [threading.Thread(target=guarded(poller, run.problems)),
            threading.Thread(target=guarded(snapshotter, run.snapshot_problems))]
    for t in side:
        t.start()
    try:
        with ThreadPoolExecutor(WRITERS) as ex:
            run.results = list(ex.map(writer, range(WRITERS)))
    finally:
        stop.set()
        for t in side:
            t.join(60)

    run.tasks = alice.tasks(bid)
    run.last = alice.snapshot(bid)["lastEventId"]
    run.events = alice.events_since(bid, 0)

    def post_lines():
        lines = server.access_lines("POST", r"^/boards/%s/tasks$" % re.escape(bid))
        return lines if len(lines) >= TOTAL else None

    run.post_lines = wait_until(post_lines, 10, "the access log to hold every POST")

    # phase 2: snapshots of a large board under steady writes
    stop2 = threading.Event()

    def steady_writer():
        with session("alice") as s:
            for _ in range(3000):
                if stop2.is_set():
                    return
                s.post(url, data=json.dumps({"listId": lid, "title": "steady"}), headers=JSON,
                       timeout=30)

    ws = [threading.Thread(target=guarded(steady_writer, run.snapshot_problems))
          for _ in range(3)]
    for t in ws:
        t.start()
    try:
        wait_until(lambda: updates(alice, bid)["lastEventId"] > run.last + 20, 10,
                   "steady writes")
        with session("carol") as s:
            for _ in range(STEADY_SNAPSHOTS):
                snapshot(s, 2)
    finally:
        stop2.set()
        for t in ws:
            t.join(60)
    return run


def test_concurrent_writes_all_succeed(concurrent_run):
    run = concurrent_run
    statuses = [st for res in run.results for st, _ in res]
    assert statuses == [201] * TOTAL, {s: statuses.count(s) for s in set(statuses)}
    created = {body["data"]["id"]: body["data"] for res in run.results for _, body in res}
    assert len(created) == TOTAL
    # each answer's position is where its task went: appends got 0..N-1, once each
    assert sorted(t["position"] for t in created.values()) == list(range(TOTAL))
    # the board holds exactly those tasks, positions 0..n-1, attributed to their writer
    assert len(run.tasks) == TOTAL
    assert {t["id"]: t for t in run.tasks} == created
    assert [t["position"] for t in run.tasks] == list(range(TOTAL))
    for t in run.tasks:
        assert t["title"].endswith("-" + t["createdBy"]), t


def test_concurrent_writes_give_gapless_event_ids(concurrent_run):
    run = concurrent_run
    created = {body["data"]["id"]: body["data"] for res in run.results for _, body in res}
    assert run.last == TOTAL
    events = run.events
    assert [e["id"] for e in events] == list(range(1, TOTAL + 1))
    assert {e["type"] for e in events} == {"task_created"}
    assert sorted(e["data"]["task"]["id"] for e in events) == sorted(created)
    for e in events:
        assert e["data"]["task"] == created[e["data"]["task"]["id"]]
        assert e["actor"] == e["data"]["task"]["createdBy"]
    # commit order: each writer's tasks appear in the order it created them
    order = {}
    for e in events:
        w, j, _ = e["data"]["task"]["title"][1:].split("-")
        order.setdefault(w, []).append(int(j))
    assert len(order) == WRITERS
    assert all(js == list(range(PER_WRITER)) for js in order.values())


def test_concurrent_writes_seen_live_by_a_poller(concurrent_run):
    run = concurrent_run
    assert not run.problems, run.problems
    assert run.seen == run.events


def test_concurrent_writes_were_served_by_several_children(concurrent_run):
    lines = concurrent_run.post_lines
    assert len(lines) == TOTAL and {l["status"] for l in lines} == {201}
    pids = {l["pid"] for l in lines}
    assert len(pids) > 1, "every POST was served by one child: %s" % pids


def test_snapshots_during_writes_succeed_and_are_consistent(concurrent_run):
    run = concurrent_run
    assert any(0 < n < TOTAL for n in run.snapshots), run.snapshots[:3]
    assert not run.snapshot_problems, run.snapshot_problems


# ---------------------------------------------------------------------------
# restarts


def test_event_ids_continue_after_restart_and_graceful_restart(servers):
    srv = servers.start()
    alice, bob = srv.client("alice"), srv.client("bob")
    b = alice.create_board(unique("rs"))
    bid, lists = b["id"], [l["id"] for l in b["lists"]]
    make_history(alice, bob, bid, lists)
    before = alice.events_since(bid, 0)
    snap_before = alice.snapshot(bid)
    last = snap_before["lastEventId"]
    assert last == len(before) == 9

    srv.restart()
    assert alice.snapshot(bid) == snap_before
    assert updates(bob, bid, 0)["data"] == before
    assert updates(bob, bid) == {"data": [], "lastEventId": last}
    t = alice.create_task(bid, lists[0], "after restart")
    d = updates(bob, bid, last)
    assert [e["id"] for e in d["data"]] == [last + 1] and d["lastEventId"] == last + 1
    assert d["data"][0]["type"] == "task_created" and d["data"][0]["data"]["task"] == t
    assert [e["id"] for e in updates(bob, bid, last - 2)["data"]] == [last - 1, last, last + 1]
    assert updates(bob, bid, last - 2)["data"][:2] == before[-2:]

    srv.graceful()
    u = alice.ok(alice.patch("/boards/%s/tasks/%d" % (bid, t["id"]), {"title": "after graceful"}))
    d = updates(bob, bid, last)
    assert [e["id"] for e in d["data"]] == [last + 1, last + 2]
    assert d["data"][1]["type"] == "task_updated" and d["data"][1]["data"]["task"] == u["data"]
    assert alice.snapshot(bid)["lastEventId"] == last + 2
    assert alice.events_since(bid, 0)[:last] == before
