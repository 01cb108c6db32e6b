"""Resume by event id, the same cases through every transport.

The contract (docs/API.md) gives one id space to the REST cursor
(`GET /boards/:b/updates?since=N`), long polling (`GET /boards/:b/poll?since=N`),
SSE (`Last-Event-ID`) and WebSocket joins (`lastEventId`), so that a client can
switch transports without losing or repeating an event; and a resume from before
the kept history gets a `reset` instead of a partial replay. Each case below is
asked of every transport (and of the other spellings: SSE `?lastEventId=N`,
the WebSocket board URL `/boards/:b/ws?lastEventId=N`); each answer is reduced
to the ids of the replayed events and the reset (its body), which must be what
the contract says (test_replay) and the same on all of them
(test_transports_answer_alike).

Cases
  exact               since = a mid id of a short board: exactly the later events
  from-0              since = 0 on a short board: every event
  at-last             since = the board's last id: nothing, and no reset
  from-0-pruned       since = 0 on a board whose first events left the history: reset
  before-history      since = 1 on a server keeping 64 events, board of 150: reset
  history-edge        since = just before the oldest event /updates serves: all kept
  history-edge-minus-1  one older: reset
  beyond-last         since = last + 50: a cursor the board never reached: reset
  across-ring-wrap    a server whose shared ring holds 64 records, board of 150,
                      since = 20: the replay comes from the database
  wrapped-*           before-history and the history edge on a server with both
                      the small history and the small ring
"""

import json

import pytest

from test_sse import SSEStream, new_board, oldest_retained
from test_ws_protocol import OP_CLOSE, open_ws

HISTORY = 64
LONG = 150


@pytest.fixture(scope="module")
def hist_srv(servers):
    """Keeps (at least) the last 64 events of a board; heartbeat every second."""
    return servers.start(CHILDREN=2, HISTORY=HISTORY, HEARTBEAT=1)


@pytest.fixture(scope="module")
def ring_srv(servers):
    """The default history, but a shared ring of 64 records."""
    return servers.start(CHILDREN=2, RINGSLOTS=64, RINGSIZE="64K", HEARTBEAT=1)


@pytest.fixture(scope="module")
def both_srv(servers):
    """A history of 64 events and a shared ring of 64 records."""
    return servers.start(CHILDREN=2, HISTORY=HISTORY, RINGSLOTS=64, RINGSIZE="64K",
                         HEARTBEAT=1)


def board_with(server, n, prefix):
    alice = server.client("alice")
    board, lists = new_board(alice, prefix)
    for i in range(n):
        alice.create_task(board, lists[i % 3], "e%d" % i)
    assert alice.last_event_id(board) == n
    return board


class Case:
    """since(client, board, last) -> the cursor; reset: whether the contract asks
    for a reset."""

    def __init__(self, server, events, since, reset):
        self.server, self.events, self.since, self.reset = server, events, since, reset


def _edge(client, board, last=None):
    """The cursor just before the oldest event /updates still serves."""
    return oldest_retained(client, board) - 1


CASES = {
    "exact": Case("hist", 10, lambda c, b, last: 4, False),
    "from-0": Case("hist", 10, lambda c, b, last: 0, False),
    "at-last": Case("hist", 10, lambda c, b, last: last, False),
    "from-0-pruned": Case("hist", LONG, lambda c, b, last: 0, True),
    "before-history": Case("hist", LONG, lambda c, b, last: 1, True),
    "history-edge": Case("hist", LONG, _edge, False),
    "history-edge-minus-1": Case("hist", LONG, lambda c, b, last: _edge(c, b) - 1, True),
    "beyond-last": Case("hist", 10, lambda c, b, last: last + 50, True),
    "across-ring-wrap": Case("ring", LONG, lambda c, b, last: 20, False),
    "wrapped-before-history": Case("both", LONG, lambda c, b, last: 1, True),
    "wrapped-history-edge": Case("both", LONG, _edge, False),
    "wrapped-history-edge-minus-1": Case("both", LONG, lambda c, b, last: _edge(c, b) - 1,
                                         True),
}


@pytest.fixture(scope="module")
def setups(hist_srv, ring_srv, both_srv):
    """Per case: (server, board, since, last); the boards are made on first use
    (cases of the same server and length share a board)."""
    made, boards = {}, {}

    def get(name):
        if name not in made:
            c = CASES[name]
            server = {"hist": hist_srv, "ring": ring_srv, "both": both_srv}[c.server]
            key = (c.server, c.events)
            if key not in boards:
                boards[key] = board_with(server, c.events, "rp")
            last = c.events
            since = c.since(server.client("alice"), boards[key], last)
            made[name] = (server, boards[key], since, last)
        return made[name]

    return get


# ---------------------------------------------------------------------------
# one resume through each transport: {"ids": [...], "reset": body or None, ...}


def answer(ids=None, reset=None, **other):
    d = {"ids": ids or [], "reset": reset}
    d.update(other)
    return d


def _pages(server, board, since, route, params):
    """Follows the cursor as a polling client does, up to the board's last id."""
    c = server.client("alice")
    ids, reset = [], None
    for _ in range(50):
        r = c.get("/boards/%s/%s" % (board, route), params=dict(params, since=since))
        if r.status_code != 200:
            return answer(ids, reset, status=r.status_code, body=r.text[:300])
        d = r.json()
        for e in d["data"]:
            if e.get("type") == "reset":
                reset = e
            else:
                ids.append(e["id"])
        if reset is not None or not d["data"] or not ids or ids[-1] >= d["lastEventId"]:
            return answer(ids, reset)
        since = ids[-1]
    raise AssertionError("no end after 50 pages: %r" % ids[-5:])


def via_updates(server, board, since):
    return _pages(server, board, since, "updates", {})


def via_poll(server, board, since):
    return _pages(server, board, since, "poll", {"timeout": 1})


def via_sse(server, board, since, query=False):
    """The replay is what precedes the first heartbeat after `connected` (the
    replay is written at once; heartbeats come from the idle stream)."""
    path = "/boards/%s/events" % board
    if query:
        path, headers = path + "?lastEventId=%d" % since, {}
    else:
        headers = {"Last-Event-ID": str(since)}
    with SSEStream(server, path, headers=headers) as s:
        if s.wait_status() != 200:
            s.wait_complete()
            return answer(status=s.http.status, body=s.body[:300].decode(errors="replace"))

        def idle(s):
            after = False
            for b in s.blocks:
                if b.data is not None and b.id is None and b.event is None:
                    after = True  # connected
                elif after and "heartbeat" in b.comments:
                    return True
            return s.eof
        s.wait(idle, 10, "a heartbeat after the replay")
        ids, reset = [], None
        for b in s.events:
            if b.event == "reset":
                reset = b.json()
            else:
                ids.append(int(b.id))
        return answer(ids, reset, **({"eof": True} if s.eof else {}))


def via_ws(server, board, since, url=False):
    """A join by message with lastEventId (or the board URL with ?lastEventId);
    its replay ends with the presence."""
    path = "/boards/%s/ws?lastEventId=%d" % (board, since) if url else "/ws"
    with open_ws(server, path) as ws:
        if not url:
            ws.send_json({"type": "join", "boardId": board, "lastEventId": since})
        ids, reset, other = [], None, {}
        while True:
            f = ws.next(10)
            if f.opcode == OP_CLOSE:
                other["close"] = f.close_code
                break
            m = json.loads(f.payload.decode("utf-8"))
            if m["type"] == "reset":
                reset = m
            elif "id" in m:
                ids.append(m["id"])
            elif m["type"] == "error":
                other["error"] = m
                break
            elif m["type"] == "presence" and m["boardId"] == board:
                break
        return answer(ids, reset, **other)


TRANSPORTS = {"updates": via_updates, "poll": via_poll, "sse": via_sse, "ws": via_ws,
              # the other spellings of the same resume
              "sse-query": lambda *a: via_sse(*a, query=True),
              "ws-board-url": lambda *a: via_ws(*a, url=True)}


@pytest.fixture(scope="module")
def answers(setups):
    """answers(case, transport): the transport's answer to the case (asked once)."""
    got = {}

    def get(name, transport):
        if (name, transport) not in got:
            server, board, since, _ = setups(name)
            got[(name, transport)] = TRANSPORTS[transport](server, board, since)
        return got[(name, transport)]

    return get


# ---------------------------------------------------------------------------
# the tests


def expected(setups, name):
    _, board, since, last = setups(name)
    if CASES[name].reset:
        return answer(reset={"type": "reset", "boardId": board, "lastEventId": last,
                             "snapshot": "/boards/" + board})
    return answer(list(range(since + 1, last + 1)))


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("name", list(CASES))
def test_replay(setups, answers, name, transport):
    """The transport's answer is what the contract says: the later events, or
    a reset {lastEventId, snapshot} and no event."""
    want = expected(setups, name)
    got = answers(name, transport)
    if want["reset"] and got["reset"] and got["reset"].get("snapshot", "").endswith(
            want["reset"]["snapshot"]):
        want["reset"]["snapshot"] = got["reset"]["snapshot"]  # absolute or not
    assert got == want


@pytest.mark.parametrize("name", list(CASES))
def test_transports_answer_alike(answers, name):
    got = {t: answers(name, t) for t in TRANSPORTS}
    first = got["updates"]
    differ = {t: a for t, a in got.items() if a != first}
    assert not differ, "updates answered %r; the others differ: %r" % (first, differ)


def test_the_cases_cover_what_they_claim(setups, hist_srv, ring_srv):
    """The long board on the history server lost its first events (the server
    resets /updates?since=1), and the ring of the ring server wrapped past the
    cursor of across-ring-wrap (it holds fewer records than that replay)."""
    _, board, _, _ = setups("before-history")
    c = hist_srv.client("alice")
    d = c.ok(c.get("/boards/%s/updates" % board, params={"since": LONG - HISTORY}))
    assert d["data"] and d["data"][0]["type"] != "reset", d["data"][:1]
    _, board, since, last = setups("across-ring-wrap")
    c = ring_srv.client("admin")  # the status route is for administrators only
    ring = c.ok(c.get("/rtboard-status"))["data"]["ring"]
    assert ring["evicted"] > 0 and ring["records"] <= 64 < last - since, ring
