"""Streams over HTTP/2 (h2c through mod_http2): an HTTP/2 stream cannot be
suspended, so the engine serves it on its blocking path in the handler's
thread (counted as "blocking" in /rtboard-status). SSE and long polls work
there as over HTTP/1.1; a WebSocket needs HTTP/1.1 (426)."""

import json
import os
import subprocess
import time

import pytest

from harness import unique, wait_until
from test_sse import Curl

H2 = ["--http2-prior-knowledge"]


def write_h2_conf(server):
    os.makedirs(os.path.join(server.var, "conf.d"), exist_ok=True)
    with open(os.path.join(server.var, "conf.d", "h2.conf"), "w") as f:
        f.write("LoadModule http2_module /usr/lib/apache2/modules/mod_http2.so\n"
                "Protocols h2c http/1.1\n")


@pytest.fixture(scope="module")
def h2(servers):
    return servers.start(private_module=True, CHILDREN=2, HEARTBEAT=1, prepare=write_h2_conf)


@pytest.fixture
def hboard(h2):
    b = h2.client("alice").create_board(unique("h2"))
    return b["id"], [l["id"] for l in b["lists"]]


def blocking(h2):
    return h2.client("admin").get("/rtboard-status").json()["data"]["connections"]["blocking"]


def test_sse_over_http2_streams_on_the_blocking_path_and_ends_with_its_client(h2, hboard):
    bid, lists = hboard
    alice = h2.client("alice")
    assert blocking(h2) == 0
    c = Curl(h2, "/boards/%s/events" % bid, args=H2)
    try:
        wait_until(lambda: c.body().startswith(b"retry: "), 5, "the first bytes at once")
        head = c.split()[0].split("\r\n")
        assert head[0].startswith("HTTP/2 200"), head
        assert b'data: {"type":"connected","lastEventId":0}\n\n' in c.body(), c.body()
        wait_until(lambda: blocking(h2) == 1, 5, "one blocking stream in the status")
        alice.create_task(bid, lists[0], "over h2")
        wait_until(lambda: b"id: 1\nevent: task_created\n" in c.body(), 5, "the event")
        wait_until(lambda: c.body().count(b": heartbeat\n\n") >= 1, 5, "a heartbeat")
        data = [json.loads(line[6:]) for line in c.body().split(b"\n")
                if line.startswith(b"data: ")]
        assert [d["type"] for d in data] == ["connected", "task_created"], data
    finally:
        c.stop()
    # the stream's end reaches the handler's thread: the count goes back to 0
    wait_until(lambda: blocking(h2) == 0, 10, "the blocking stream counted out")


def test_sse_resume_over_http2(h2, hboard):
    bid, lists = hboard
    alice = h2.client("alice")
    for i in range(3):
        alice.create_task(bid, lists[0], "t%d" % i)
    c = Curl(h2, "/boards/%s/events" % bid, headers=["Last-Event-ID: 1"], args=H2)
    try:
        wait_until(lambda: b"id: 3\n" in c.body(), 5, "the replay")
        ids = [int(line[4:]) for line in c.body().split(b"\n") if line.startswith(b"id: ")]
        assert ids == [2, 3], ids
    finally:
        c.stop()


def test_long_poll_over_http2_answers_when_an_event_commits(h2, hboard):
    bid, lists = hboard
    alice = h2.client("alice")
    cmd = ["curl", "-sS", "--http2-prior-knowledge", "--max-time", "30", "-u", "alice:alice",
           "-w", "\\n%{http_version} %{http_code}",
           h2.url("/boards/%s/poll?since=0&timeout=20" % bid)]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: blocking(h2) == 1, 5, "the waiting poll in the status")
        alice.create_task(bid, lists[0], "wake up")
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    elapsed = time.monotonic() - t0
    body, _, tail = out.decode().rpartition("\n")
    assert tail == "2 200", (tail, err)
    d = json.loads(body)
    assert [e["id"] for e in d["data"]] == [1] and d["lastEventId"] == 1, d
    assert elapsed < 10, "the poll waited %.1f s for an event that came at once" % elapsed
    wait_until(lambda: blocking(h2) == 0, 5, "the poll counted out")


def test_long_poll_over_http2_times_out(h2, hboard):
    bid, _ = hboard
    p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "10",
                        "-u", "alice:alice",
                        h2.url("/boards/%s/poll?since=0&timeout=1" % bid)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=15)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"data": [], "timeout": True, "lastEventId": 0}


def test_websocket_over_http2_is_refused_with_426(h2, hboard):
    bid, _ = hboard
    for path in ("/ws", "/boards/%s/ws" % bid):
        p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "--max-time", "10",
                            "-u", "alice:alice", "-w", "\n%{http_version} %{http_code}",
                            h2.url(path)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=15)
        body, _, tail = p.stdout.decode().rpartition("\n")
        assert tail == "2 426", (path, tail, p.stderr)
        assert json.loads(body)["error"]["code"] == "upgrade_required", body
