"""Writes go on across graceful restarts: a writer that sends a failed request
again at once (same Idempotency-Key) gets its changes through with no long
pause, and every change it was answered for is stored once.

The bound (1 s) is generous: it tells a restart that leaves the server
without a child accepting connections for a second or two (the parent
replaces old children that exit late only on its one-second ticks) from one
that replaces them at once."""

import time

from harness import unique, wait_until
from test_chaos import Writer

RESTARTS = 3
MAX_PAUSE = 1.0


def test_writes_pause_briefly_across_graceful_restarts(servers):
    srv = servers.start()
    alice = srv.client("alice")
    b = alice.create_board(unique("gw"))
    board, list_id = b["id"], b["lists"][0]["id"]
    # no pause between writes; a failed request is sent again at once
    w = Writer(srv, board, list_id, "w", pause=0, retry_pause=0)
    w.start()
    try:
        wait_until(lambda: w.error or w.count() >= 50, 20, "the writer's first 50 tasks")
        spans = []
        for _ in range(RESTARTS):
            spans.append(time.monotonic())
            srv.graceful()
            # the new generation serves the writer: 50 more answers after the restart
            target = w.count() + 50
            wait_until(lambda: w.error or w.count() >= target, 20,
                       "50 more tasks after the graceful restart")
            assert w.error is None, w.error
    finally:
        w.stop.set()
        w.join(40)
    assert not w.is_alive(), "the writer did not stop"
    assert w.error is None, w.error

    times = [t for t, _, _ in w.answered]
    gaps = sorted(((b - a, a - times[0]) for a, b in zip(times, times[1:])), reverse=True)
    assert gaps[0][0] < MAX_PAUSE, (
        "a pause of %.2f s between two answered writes; the longest (s, at s): %s; restarts "
        "began at (s): %s; %d requests sent again"
        % (gaps[0][0], ["%.2f at %.2f" % g for g in gaps[:5]],
           ["%.2f" % (t - times[0]) for t in spans], w.retries))

    # every answered write is stored once, with the id it was answered with
    stored = alice.tasks(board)
    titles = [t["title"] for t in stored]
    assert len(titles) == len(set(titles)), "a task stored twice"
    assert {t["id"]: t["title"] for t in stored} == {i: title for _, title, i in w.answered}
    events = alice.events_since(board)
    created = [e for e in events if e["type"] == "task_created"]
    assert len(created) == len(w.answered), (len(created), len(w.answered))
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
