"""mod_deflate: REST JSON and static files are gzipped for clients that accept
it; SSE streams and long polls never are, and nothing holds their bytes back."""
import gzip
import json
import socket
import threading
import time

import requests

from harness import wait_until

GZIP = {"Accept-Encoding": "gzip"}


def test_snapshot_and_static_files_are_gzipped(server, alice, board):
    bid, lists = board
    for i in range(20):
        alice.create_task(bid, lists[0], "task %d with a title long enough to compress" % i)
    r = alice.get("/boards/%s" % bid, headers=GZIP, stream=True)
    assert r.status_code == 200
    assert r.headers.get("Content-Encoding") == "gzip", r.headers
    assert "Accept-Encoding" in r.headers.get("Vary", ""), r.headers
    raw = r.raw.read(decode_content=False)
    snap = json.loads(gzip.decompress(raw))
    assert len(snap["data"]["tasks"]) == 20
    assert len(raw) < len(json.dumps(snap)) / 2
    # the ETag stays the board's own, so If-None-Match still answers 304
    etag = r.headers["ETag"]
    r = alice.get("/boards/%s" % bid, headers=dict(GZIP, **{"If-None-Match": etag}))
    assert r.status_code == 304, (r.status_code, etag)
    # a task's ETag stays its version, for If-Match
    t = alice.create_task(bid, lists[0], "versioned")
    r = alice.get("/boards/%s/tasks/%d" % (bid, t["id"]), headers=GZIP)
    assert r.headers["ETag"] == '"%d"' % t["version"], r.headers
    for path in ("/app.css", "/index.html", "/favicon.svg"):
        r = alice.get(path, headers=GZIP)
        assert r.status_code == 200, path
        assert r.headers.get("Content-Encoding") == "gzip", (path, r.headers)
    # no Accept-Encoding: identity
    r = alice.get("/boards/%s" % bid, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in r.headers and r.json()["data"]["board"]["id"] == bid


def test_sse_stream_is_not_compressed_and_events_arrive_at_once(server, alice, board):
    bid, lists = board
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        s.sendall(("GET /boards/%s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Authorization: Basic YWxpY2U6YWxpY2U=\r\nAccept: text/event-stream\r\n"
                   "Accept-Encoding: gzip, deflate, br\r\n\r\n" % bid).encode())
        got = bytearray()

        def received(marker):
            s.settimeout(0.2)
            try:
                chunk = s.recv(65536)
                if chunk:
                    got.extend(chunk)
            except socket.timeout:
                pass
            return marker in got

        wait_until(lambda: received(b'"connected"'), 5, "the connected event")
        head = bytes(got).split(b"\r\n\r\n", 1)[0].lower()
        assert head.startswith(b"http/1.1 200"), head
        assert b"content-encoding" not in head, head
        assert b"content-type: text/event-stream" in head, head
        alice.create_task(bid, lists[0], "live")
        t0 = time.monotonic()
        wait_until(lambda: received(b"event: task_created"), 2, "the event within 2 s")
        assert time.monotonic() - t0 < 2
    finally:
        s.close()


def test_long_poll_answers_uncompressed_and_promptly(server, alice, board):
    bid, lists = board
    last = alice.last_event_id(bid)
    out = {}

    def poll():
        t0 = time.monotonic()
        r = requests.get(server.url("/boards/%s/poll" % bid), auth=("alice", "alice"),
                         params={"since": last, "timeout": 20}, headers=GZIP, timeout=30,
                         stream=True)
        out["raw"] = r.raw.read(decode_content=False)
        out["r"], out["secs"] = r, time.monotonic() - t0

    th = threading.Thread(target=poll)
    th.start()
    try:
        # the poll is held by the engine before the change is made
        admin = server.client("admin")
        wait_until(lambda: admin.get("/rtboard-status").json()["data"]["connections"]
                   ["longpoll"] >= 1, 10, "the long poll to be held by the engine")
        alice.create_task(bid, lists[0], "wakes the poll")
        t0 = time.monotonic()
        wait_until(lambda: "r" in out, 2, "the long poll's answer within 2 s")
        assert time.monotonic() - t0 < 2
    finally:
        th.join(30)
    r = out["r"]
    assert r.status_code == 200
    assert "Content-Encoding" not in r.headers, r.headers
    d = json.loads(out["raw"])
    assert [e["type"] for e in d["data"]] == ["task_created"], d
    # and one that times out answers uncompressed as well
    r = requests.get(server.url("/boards/%s/poll" % bid), auth=("alice", "alice"),
                     params={"since": d["lastEventId"], "timeout": 1}, headers=GZIP, timeout=10)
    assert r.status_code == 200 and r.json()["timeout"] is True
    assert "Content-Encoding" not in r.headers, r.headers
