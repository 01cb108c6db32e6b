"""Server-Sent Events: GET /boards/:b/events and GET /events?boards=a,b.

Exact bytes (curl -N), events crossing child processes, resume by
Last-Event-ID / ?lastEventId (from the shared ring, from the database after
the ring wrapped, `reset` when older than the history), multi-board streams
with compound cursors, board_deleted, graceful restarts with open streams,
and an independent client (npm `eventsource`, tests/js/sse_client.mjs).

The raw HTTP/SSE client classes here are also used by test_longpoll.py and
test_streams_scale.py.
"""

import asyncio
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest
import requests

from harness import ROOT, RawResponse, assert_error, unique, wait_until

JS_DIR = os.path.join(ROOT, "tests", "js")


# ---------------------------------------------------------------------------
# a raw HTTP/1.1 response decoder and an SSE parser (incremental)


class HTTPDecoder:
    """Feeds on the bytes of one HTTP/1.1 response; returns body bytes as they
    arrive (de-chunked). `complete` is set by the terminating chunk or the end
    of a Content-Length body; a close-delimited body is complete at EOF."""

    def __init__(self):
        self.buf = b""
        self.state = "head"
        self.status = None
        self.headers = {}
        self.chunked = False
        self.length = None
        self.remaining = 0
        self.complete = False
        self.extra = b""

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            if self.state == "head":
                i = self.buf.find(b"\r\n\r\n")
                if i < 0:
                    break
                lines = self.buf[:i].decode("latin-1").split("\r\n")
                self.buf = self.buf[i + 4:]
                self.status_line = lines[0]
                self.status = int(lines[0].split()[1])
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    k = k.strip().lower()
                    self.headers[k] = (self.headers[k] + ", " + v.strip()
                                       if k in self.headers else v.strip())
                self.chunked = "chunked" in self.header("transfer-encoding", "").lower()
                if self.chunked:
                    self.state = "size"
                elif self.header("content-length") is not None:
                    self.length = self.remaining = int(self.header("content-length"))
                    self.state = "length"
                    if self.remaining == 0:
                        self.state, self.complete = "done", True
                else:
                    self.state = "raw"
            elif self.state == "raw":
                if self.buf:
                    out.append(self.buf)
                self.buf = b""
                break
            elif self.state == "length":
                take = self.buf[:self.remaining]
                self.buf = self.buf[len(take):]
                self.remaining -= len(take)
                out.append(take)
                if self.remaining == 0:
                    self.state, self.complete = "done", True
                    continue
                break
            elif self.state == "size":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                n = int(self.buf[:i].split(b";")[0].strip(), 16)
                self.buf = self.buf[i + 2:]
                if n == 0:
                    self.state = "trailer"
                else:
                    self.remaining, self.state = n, "data"
            elif self.state == "data":
                take = self.buf[:self.remaining]
                self.buf = self.buf[len(take):]
                self.remaining -= len(take)
                out.append(take)
                if self.remaining:
                    break
                self.state = "crlf"
            elif self.state == "crlf":
                if len(self.buf) < 2:
                    break
                assert self.buf[:2] == b"\r\n", "bad chunk framing: %r" % self.buf[:20]
                self.buf = self.buf[2:]
                self.state = "size"
            elif self.state == "trailer":
                i = self.buf.find(b"\r\n")
                if i < 0:
                    break
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                if not line:
                    self.state, self.complete = "done", True
            else:  # done: anything after the body
                self.extra += self.buf
                self.buf = b""
                break
        return b"".join(out)


class Block:
    """One SSE block (the lines up to a blank line)."""

    __slots__ = ("fields", "id", "event", "data", "retry", "comments", "at")

    def __init__(self, fields):
        self.fields = fields
        self.id = self.event = self.data = self.retry = None
        self.comments = []
        self.at = time.monotonic()
        data = []
        for k, v in fields:
            if k == "":
                self.comments.append(v)
            elif k == "id":
                self.id = v
            elif k == "event":
                self.event = v
            elif k == "data":
                data.append(v)
            elif k == "retry" and v.isdigit():
                self.retry = int(v)
        if data:
            self.data = "\n".join(data)

    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return "Block(%r)" % (self.fields,)


class SSEParser:
    """The WHATWG line rules: CRLF, LF or CR end a line; a blank line ends a block."""

    def __init__(self):
        self.buf = b""
        self.cur = []

    def feed(self, data):
        self.buf += data
        blocks = []
        while True:
            cr, lf = self.buf.find(b"\r"), self.buf.find(b"\n")
            ends = [i for i in (cr, lf) if i >= 0]
            if not ends:
                break
            i = min(ends)
            if i == cr:
                if i + 1 == len(self.buf):
                    break  # CR LF may be split across reads
                step = 2 if self.buf[i + 1:i + 2] == b"\n" else 1
            else:
                step = 1
            line = self.buf[:i].decode("utf-8")
            self.buf = self.buf[i + step:]
            if line == "":
                if self.cur:
                    blocks.append(Block(self.cur))
                self.cur = []
                continue
            if line.startswith(":"):
                name, value = "", line[1:]
            else:
                name, sep, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            self.cur.append((name, value))
        return blocks

    @property
    def idle(self):
        """No partial line and no unfinished block."""
        return not self.buf and not self.cur


def basic(user):
    return "Basic " + base64.b64encode(("%s:%s" % (user, user)).encode()).decode()


def request_bytes(server, path, user="alice", headers=None, method="GET"):
    h = {"Host": "127.0.0.1:%d" % server.port, "Accept": "text/event-stream"}
    if user:
        h["Authorization"] = basic(user)
    h.update(headers or {})
    return ("%s %s HTTP/1.1\r\n" % (method, path) +
            "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode("latin-1")


# ---------------------------------------------------------------------------
# a blocking SSE client on a raw socket, read by a thread


class SSEStream:
    """GET `path` on a fresh connection; blocks parsed as they arrive."""

    def __init__(self, server, path, user="alice", headers=None):
        self.server, self.path = server, path
        self.cond = threading.Condition()
        self.http = HTTPDecoder()
        self.sse = SSEParser()
        self.body = b""
        self.blocks = []
        self.eof = False
        self.error = None
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.sock.settimeout(None)
        self.sock.sendall(request_bytes(server, path, user, headers))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                with self.cond:
                    body = self.http.feed(data)
                    self.body += body
                    if self.http.status == 200 and body:
                        self.blocks.extend(self.sse.feed(body))
                    self.cond.notify_all()
        except OSError as e:
            self.error = e
        finally:
            with self.cond:
                self.eof = True
                self.cond.notify_all()

    # -- waiting ----------------------------------------------------------

    def wait(self, pred, timeout=10, what="condition"):
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self), timeout):
                raise AssertionError("%s: timed out after %.1f s waiting for %s; status %r, "
                                     "eof %r, error %r, messages %r" % (
                                         self.path, timeout, what, self.http.status, self.eof,
                                         self.error, [(m.id, m.event) for m in self.messages]))

    def wait_status(self, timeout=10):
        self.wait(lambda s: s.http.status is not None or s.eof, timeout, "the response head")
        return self.http.status

    def wait_connected(self, timeout=10):
        """Waits for the `connected` message; returns its lastEventId."""
        self.wait(lambda s: s.connected is not None or s.eof, timeout, "the connected message")
        assert self.connected is not None, (self.http.status, self.body[:300])
        return self.connected["lastEventId"]

    def wait_ids(self, n, timeout=10):
        """Waits until n messages with an id arrived."""
        self.wait(lambda s: len(s.events) >= n, timeout, "%d events" % n)
        return self.events

    def wait_complete(self, timeout=5):
        """Waits for the end of a response with a length (an error) or of the stream."""
        self.wait(lambda s: s.http.complete or s.eof, timeout, "the whole response")

    def wait_eof(self, timeout=15):
        self.wait(lambda s: s.eof, timeout, "the end of the stream")

    # -- what arrived -------------------------------------------------------

    @property
    def messages(self):
        """Blocks that dispatch a message (they have data)."""
        return [b for b in self.blocks if b.data is not None]

    @property
    def events(self):
        """Messages with an id: the board's events, and resets."""
        return [b for b in self.blocks if b.data is not None and b.id is not None]

    @property
    def connected(self):
        for b in self.blocks:
            if b.data is not None and b.event is None and b.id is None:
                d = json.loads(b.data)
                if d.get("type") == "connected":
                    return d
        return None

    def last_id(self):
        ev = self.events
        return ev[-1].id if ev else None

    def response(self):
        """The whole (finished) response as a harness RawResponse."""
        return RawResponse("GET", self.path, self.http.status, list(self.http.headers.items()),
                           self.body)

    def ended_cleanly(self):
        """EOF (not a reset connection) after whole blocks; the terminating chunk
        when chunked."""
        return (self.eof and self.error is None and self.sse.idle and
                (self.http.complete or not self.http.chunked))

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False


def ids(blocks):
    return [int(b.id) for b in blocks]


def assert_event_block(b, board, eid, etype=None):
    """An event block: id, event name = the JSON's type, one-line JSON envelope."""
    assert b.id == str(eid), b
    d = b.json()
    assert "\n" not in b.data, b
    assert d["id"] == eid and d["boardId"] == board, d
    assert b.event == d["type"], b
    if etype:
        assert d["type"] == etype, d
    return d


# ---------------------------------------------------------------------------
# many streams on one asyncio loop (a background thread)


class FleetConn:
    __slots__ = ("http", "sse", "body", "blocks", "eof", "error", "writer", "done_at")

    def __init__(self, parse_sse=True):
        self.http = HTTPDecoder()
        self.sse = SSEParser() if parse_sse else None
        self.body = b""
        self.blocks = []
        self.eof = False
        self.error = None
        self.writer = None
        self.done_at = None

    def events(self):
        return [b for b in list(self.blocks) if b.data is not None and b.id is not None]

    def connected(self):
        return any(b.data and '"connected"' in b.data for b in list(self.blocks))


class Fleet:
    """n requests held open at once by one asyncio loop: SSE streams (parsed)
    or long polls (body kept until EOF)."""

    def __init__(self, server, path, n, user="alice", parse_sse=True, headers=None):
        self.server, self.path, self.n = server, path, n
        self.req = request_bytes(server, path, user, headers)
        self.conns = [FleetConn(parse_sse) for _ in range(n)]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tasks = []

    def _call(self, coro, timeout):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _read(self, c, reader):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                body = c.http.feed(data)
                if c.sse is not None:
                    if c.http.status == 200 and body:
                        c.blocks.extend(c.sse.feed(body))
                else:
                    c.body += body
        except (OSError, asyncio.CancelledError) as e:
            c.error = e
        finally:
            c.eof = True
            c.done_at = time.monotonic()

    async def _open_one(self, c, sem):
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
            c.writer = writer
            writer.write(self.req)
            await writer.drain()
            self.tasks.append(asyncio.ensure_future(self._read(c, reader)))

    async def _open_all(self, concurrency):
        sem = asyncio.Semaphore(concurrency)
        await asyncio.gather(*(self._open_one(c, sem) for c in self.conns))

    def open(self, timeout=30, concurrency=64):
        self._call(self._open_all(concurrency), timeout)
        return self

    async def _close_all(self):
        for c in self.conns:
            if c.writer is not None:
                c.writer.close()
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def close(self):
        if self.loop.is_running():
            try:
                self._call(self._close_all(), 20)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(10)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()

    def count(self, pred):
        return sum(1 for c in self.conns if pred(c))


# ---------------------------------------------------------------------------
# other helpers


def status(server):
    r = requests.get(server.url("/rtboard-status"), auth=("admin", "admin"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    return r.json()["data"]


def busy_workers(server):
    r = requests.get(server.url("/server-status?auto"), auth=("admin", "admin"), timeout=10)
    assert r.status_code == 200, r.text
    m = re.search(r"^BusyWorkers: (\d+)$", r.text, re.M)
    assert m, r.text[:500]
    return int(m.group(1))


def post_task(server, board, list_id, title, user="alice"):
    """Creates a task on a fresh connection; returns (task, pid of the child
    that served it, from the access log)."""
    tag = "%d-%d" % (os.getpid(), post_task.n)
    post_task.n += 1
    path = "/boards/%s/tasks?probe=%s" % (board, tag)
    c = server.client(user)
    r = c.raw("POST", path, body=json.dumps({"listId": list_id, "title": title}).encode(),
              headers={"Content-Type": "application/json"})
    assert r.status_code == 201, (r.status_code, r.text)
    line = wait_until(lambda: [l for l in server.access_lines("POST") if l["path"] == path],
                      5, "the access log line of " + path)
    return r.json()["data"], line[0]["pid"]


post_task.n = 0


def new_board(client, prefix="s"):
    b = client.create_board(unique(prefix))
    return b["id"], [l["id"] for l in b["lists"]]


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def srv(servers):
    """Two children, heartbeat every second."""
    return servers.start(CHILDREN=2, THREADS=25, HEARTBEAT=1)


@pytest.fixture(scope="module")
def alice_s(srv):
    return srv.client("alice")


@pytest.fixture
def sboard(alice_s):
    return new_board(alice_s)


# ---------------------------------------------------------------------------
# exact bytes (curl -N)


class Curl:
    """curl -N -i on a URL; stdout collected by a thread."""

    def __init__(self, server, path, user="alice", headers=(), args=()):
        cmd = ["curl", "-sS", "-N", "-i", "--max-time", "60", "-u", "%s:%s" % (user, user)]
        cmd += list(args)
        for h in headers:
            cmd += ["-H", h]
        cmd.append(server.url(path))
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = b""
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            b = os.read(self.p.stdout.fileno(), 65536)
            if not b:
                return
            with self.lock:
                self.out += b

    def split(self):
        with self.lock:
            out = self.out
        i = out.find(b"\r\n\r\n")
        return (None, b"") if i < 0 else (out[:i].decode("latin-1"), out[i + 4:])

    def body(self):
        return self.split()[1]

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
        self.p.wait(10)
        self.t.join(5)
        err = self.p.stderr.read().decode(errors="replace")
        self.p.stderr.close()
        self.p.stdout.close()
        return err


def test_exact_bytes_headers_connected_event_and_heartbeats(srv, alice_s, sboard):
    board, lists = sboard
    alice_s.create_task(board, lists[0], "before")  # lastEventId 1
    c = Curl(srv, "/boards/%s/events" % board, headers=["Accept: text/event-stream",
                                                        "Accept-Encoding: gzip, deflate"])
    try:
        prefix_rx = re.compile(rb"^retry: (\d+)\n\ndata: (\{[^\n]*\})\n\n")
        m = wait_until(lambda: prefix_rx.match(c.body()), 5, "retry + connected at once")
        head = c.split()[0].split("\r\n")
        assert head[0] == "HTTP/1.1 200 OK", head
        hdrs = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            hdrs.setdefault(k.strip().lower(), []).append(v.strip())
        assert hdrs["content-type"][0].split(";")[0].strip() == "text/event-stream", hdrs
        assert hdrs["cache-control"] == ["no-cache, no-transform"], hdrs
        assert hdrs["x-accel-buffering"] == ["no"], hdrs
        assert "content-encoding" not in hdrs and "content-length" not in hdrs, hdrs
        assert int(m.group(1)) > 0
        assert m.group(2) == b'{"type":"connected","lastEventId":1}', m.group(2)

        # an event created over REST, with a title that must not break the line
        title = "two\nlines\r\nand \u00e9\u2713 \"quoted\""
        task = alice_s.create_task(board, lists[1], title)
        ev_rx = re.compile(rb"id: 2\nevent: task_created\ndata: ([^\n]*)\n\n")
        ev = wait_until(lambda: ev_rx.search(c.body(), m.end()), 5, "the task_created event")
        data = json.loads(ev.group(1).decode("utf-8"))
        assert data["id"] == 2 and data["type"] == "task_created" and data["boardId"] == board
        assert data["actor"] == "alice" and data["data"]["task"] == task, data
        assert data["data"]["task"]["title"] == title
        # the same event as the event log holds
        assert data == alice_s.events_since(board, 1)[0]

        # heartbeats (HEARTBEAT=1): at least two comments, nothing else in between
        hb = b": heartbeat\n\n"
        wait_until(lambda: c.body()[ev.end():].count(hb) >= 2, 6,
                   "two heartbeat comments after the event")
        rest = c.body()[m.end():]
        assert re.fullmatch(rb"(: heartbeat\n\n)*" + re.escape(ev.group(0)) +
                            rb"(: heartbeat\n\n)+", rest), rest
    finally:
        c.stop()


def test_head_of_a_stream_answers_its_head_at_once(srv, alice_s, sboard):
    """HEAD gives the stream's head (after the same checks as GET) and ends."""
    board, _ = sboard
    t0 = time.monotonic()
    r = requests.head(srv.url("/boards/%s/events" % board), auth=("alice", "alice"), timeout=5)
    assert r.status_code == 200, r.status_code
    assert r.headers["Content-Type"].startswith("text/event-stream"), r.headers
    assert r.content == b""
    assert time.monotonic() - t0 < 3
    r = requests.head(srv.url("/boards/no-such-board/events"), auth=("alice", "alice"), timeout=5)
    assert r.status_code == 404
    # the connection that asked is served again (the HEAD was not left open)
    with requests.Session() as s:
        s.auth = ("alice", "alice")
        assert s.head(srv.url("/boards/%s/events" % board), timeout=5).status_code == 200
        assert s.get(srv.url("/boards/%s" % board), timeout=5).status_code == 200


def test_event_stream_without_accept_header_still_streams(srv, alice_s, sboard):
    board, _ = sboard
    c = Curl(srv, "/boards/%s/events" % board)
    try:
        wait_until(lambda: b'"type":"connected"' in c.body(), 5, "the connected message")
        assert c.split()[0].startswith("HTTP/1.1 200")
    finally:
        c.stop()


# ---------------------------------------------------------------------------
# across child processes


def test_event_from_one_child_reaches_a_stream_held_by_another(srv, alice_s, sboard):
    board, lists = sboard
    s = SSEStream(srv, "/boards/%s/events?probe=cross" % board)
    try:
        assert s.wait_connected() == 0
        # which child holds the stream: the status page counts it per child and board
        holder = wait_until(lambda: [c["pid"] for c in status(srv)["children"]
                                     if c["boards"].get(board) == 1], 5,
                            "the stream in /rtboard-status")
        assert len(holder) == 1, holder
        holder = holder[0]
        # POSTs on fresh connections until one is served by the other child
        other = None
        for i in range(60):
            task, pid = post_task(srv, board, lists[0], "x%d" % i)
            s.wait_ids(i + 1, 5)
            if pid != holder:
                other = (i + 1, pid)
                break
        assert other, "every POST was served by the stream's child %d" % holder
        eid, pid = other
        evs = s.events
        assert ids(evs) == list(range(1, eid + 1))
        assert_event_block(evs[-1], board, eid, "task_created")
        assert evs[-1].json()["data"]["task"] == task
    finally:
        s.close()
    # the access log (written when the stream ends) agrees on who held the stream
    line = wait_until(lambda: [l for l in srv.access_lines("GET", r"\?probe=cross$")], 5,
                      "the stream's access log line")
    assert line[0]["pid"] == holder and line[0]["status"] == 200, line
    assert holder != pid


# ---------------------------------------------------------------------------
# resume


def test_a_reader_that_pauses_gets_every_event_once_in_order(srv, alice_s, sboard):
    """A stream is written straight to its socket. A reader that stops while
    80 events of 4 KB are published (more than the sockets' buffers on both
    sides hold, less than RTBoardOutputCap: the rest waits in the server) and
    then reads on gets every one, once, in order, and stays connected."""
    board, lists = sboard
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    http, parser, blocks = HTTPDecoder(), SSEParser(), []

    def read_until(pred, secs):
        deadline = time.monotonic() + secs
        while not pred():
            left = deadline - time.monotonic()
            assert left > 0, "timed out with %d blocks" % len(blocks)
            s.settimeout(left)
            data = s.recv(65536)
            assert data, "the stream ended after %d blocks" % len(blocks)
            body = http.feed(data)
            if body:
                blocks.extend(parser.feed(body))

    try:
        s.settimeout(10)
        s.connect(("127.0.0.1", srv.port))
        s.sendall(request_bytes(srv, "/boards/%s/events" % board))
        read_until(lambda: any(b.data and b.json().get("type") == "connected" for b in blocks), 10)
        assert http.status == 200
        start = [b.json() for b in blocks if b.data][0]["lastEventId"]
        desc = "p" * 4000
        for i in range(80):
            alice_s.create_task(board, lists[i % 3], "pause %d" % i, description=desc)
        read_until(lambda: len([b for b in blocks if b.id]) >= 80, 30)
        got = [b for b in blocks if b.id]
        assert ids(got) == list(range(start + 1, start + 81))
        for b in got:
            assert_event_block(b, board, int(b.id), "task_created")
        total = sum(len(b.data) for b in got)
        assert total > 300000, total  # well past what the sockets' buffers hold
    finally:
        s.close()


def test_resume_with_last_event_id_replays_exactly_the_missed_events(srv, alice_s, sboard):
    board, lists = sboard
    with SSEStream(srv, "/boards/%s/events" % board) as s:
        last = s.wait_connected()
        alice_s.create_task(board, lists[0], "seen")
        s.wait_ids(1)
        seen = s.last_id()
    assert seen == str(last + 1)
    made = [alice_s.create_task(board, lists[0], "missed %d" % i) for i in range(5)]
    with SSEStream(srv, "/boards/%s/events" % board, headers={"Last-Event-ID": seen}) as s:
        assert s.wait_connected() == last + 6
        evs = s.wait_ids(5)
        assert ids(evs) == list(range(last + 2, last + 7))
        for b, t in zip(evs, made):
            assert assert_event_block(b, board, int(b.id), "task_created")["data"]["task"] == t
        # then live, with nothing repeated
        live = alice_s.create_task(board, lists[2], "live")
        evs = s.wait_ids(6)
        assert ids(evs) == list(range(last + 2, last + 8))
        assert evs[-1].json()["data"]["task"] == live
        # the replayed and live events are the event log's
        assert [b.json() for b in evs] == alice_s.events_since(board, last + 1)


def test_resume_with_query_parameter(srv, alice_s, sboard):
    board, lists = sboard
    for i in range(4):
        alice_s.create_task(board, lists[0], "t%d" % i)
    with SSEStream(srv, "/boards/%s/events?lastEventId=1" % board) as s:
        assert s.wait_connected() == 4
        assert ids(s.wait_ids(3)) == [2, 3, 4]
        alice_s.create_task(board, lists[0], "live")
        assert ids(s.wait_ids(4)) == [2, 3, 4, 5]
    # the header wins over the query (EventSource sends the header on reconnect)
    with SSEStream(srv, "/boards/%s/events?lastEventId=1" % board,
                   headers={"Last-Event-ID": "3"}) as s:
        s.wait_connected()
        assert ids(s.wait_ids(2)) == [4, 5]
    # resuming from the newest id replays nothing and goes live
    with SSEStream(srv, "/boards/%s/events" % board, headers={"Last-Event-ID": "5"}) as s:
        assert s.wait_connected() == 5
        alice_s.create_task(board, lists[0], "next")
        assert ids(s.wait_ids(1)) == [6]


def test_resume_many_events_from_zero(srv, alice_s, sboard):
    board, lists = sboard
    for i in range(30):
        alice_s.create_task(board, lists[i % 3], "t%d" % i)
    with SSEStream(srv, "/boards/%s/events" % board, headers={"Last-Event-ID": "0"}) as s:
        evs = s.wait_ids(30)
        assert ids(evs) == list(range(1, 31))
        assert [b.json() for b in evs] == alice_s.events_since(board, 0)


def test_resume_larger_than_the_output_cap_is_whole(srv, alice_s, sboard):
    # 130 events of ~10 KB: a 1.3 MB replay, past the 1 MiB per-connection output cap
    board, lists = sboard
    for i in range(130):
        alice_s.create_task(board, lists[0], "big %d" % i, description="x" * 9800)
    with SSEStream(srv, "/boards/%s/events" % board, headers={"Last-Event-ID": "0"}) as s:
        evs = s.wait_ids(130, timeout=30)
        assert ids(evs) == list(range(1, 131))
        alice_s.create_task(board, lists[0], "live")
        evs = s.wait_ids(131)
        assert ids(evs) == list(range(1, 132))


def test_invalid_and_future_last_event_id(srv, alice_s, sboard):
    board, lists = sboard
    alice_s.create_task(board, lists[0], "one")
    alice_s.create_task(board, lists[0], "two")
    for bad in ("abc", "-1", "1.5", "0x10", "12abc", "1,2", "demo:1"):
        with SSEStream(srv, "/boards/%s/events" % board, headers={"Last-Event-ID": bad}) as s:
            assert s.wait_status() == 400, (bad, s.body)
            s.wait_complete()
            assert_error(s.response(), 400, field="lastEventId")
            assert s.blocks == []
    r = alice_s.get("/boards/%s/events" % board, params={"lastEventId": "nope"}, stream=True)
    assert_error(r, 400, field="lastEventId")
    # a cursor from the future (another history): reset to the snapshot, then live
    with SSEStream(srv, "/boards/%s/events" % board, headers={"Last-Event-ID": "999"}) as s:
        assert s.wait_connected() == 2
        evs = s.wait_ids(1)
        assert evs[0].event == "reset", evs
        d = evs[0].json()
        assert d["type"] == "reset" and d["lastEventId"] == 2, d
        assert d["snapshot"].endswith("/boards/" + board), d
        assert "id" not in d, d  # a reset is not an event of the log
        assert evs[0].id == "2"  # ...but moves the client's cursor to the snapshot's
        alice_s.create_task(board, lists[0], "three")
        evs = s.wait_ids(2)
        assert_event_block(evs[1], board, 3, "task_created")


def test_unknown_board_and_forbidden_board_answer_before_any_stream(srv, alice_s):
    with SSEStream(srv, "/boards/no-such-board/events") as s:
        assert s.wait_status() == 404
        s.wait_complete()
        assert s.http.header("content-type").startswith("application/json")
        assert json.loads(s.body)["error"]["code"] == "board_not_found"
        assert s.blocks == []
    with SSEStream(srv, "/boards/private/events", user="bob") as s:
        assert s.wait_status() in (401, 403)
        s.wait_complete()
        assert b"event:" not in s.body and b"retry:" not in s.body
    with SSEStream(srv, "/boards/private/events", user=None) as s:
        assert s.wait_status() == 401
    with SSEStream(srv, "/boards/private/events", user="alice") as s:
        assert s.wait_status() == 200
        s.wait_connected()


# ---------------------------------------------------------------------------
# resume after the ring wrapped, and beyond the history


@pytest.fixture(scope="module")
def ring_srv(servers):
    return servers.start(CHILDREN=2, THREADS=25, RINGSLOTS=64, RINGSIZE="64K")


def test_resume_after_the_ring_wrapped_is_served_exactly_from_the_database(ring_srv):
    alice = ring_srv.client("alice")
    board, lists = new_board(alice, "ring")
    with SSEStream(ring_srv, "/boards/%s/events" % board) as s:
        assert s.wait_connected() == 0
    n = 210
    for i in range(n):
        alice.create_task(board, lists[i % 3], "t%d" % i)
    ring = status(ring_srv)["ring"]
    assert ring["slots"] == 64 and ring["records"] <= 64, ring
    assert ring["evicted"] > 0 and ring["oldest"] > 1, ring
    log = alice.events_since(board, 0)
    assert [e["id"] for e in log] == list(range(1, n + 1))
    for since in (0, 100, n - 10, n - 1):
        with SSEStream(ring_srv, "/boards/%s/events" % board,
                       headers={"Last-Event-ID": str(since)}) as s:
            assert s.wait_connected() == n
            evs = s.wait_ids(n - since)
            assert ids(evs) == list(range(since + 1, n + 1)), since
            assert [b.json() for b in evs] == log[since:]
            assert all(b.event == b.json()["type"] for b in evs)
            if since == n - 1:
                alice.create_task(board, lists[0], "live")
                evs = s.wait_ids(n - since + 1)
                assert ids(evs)[-1] == n + 1 and len(evs) == 2


@pytest.fixture(scope="module")
def hist_srv(servers):
    return servers.start(CHILDREN=2, THREADS=25, HISTORY=64)


HIST_N = 150


def oldest_retained(client, board):
    """The oldest event id /updates still serves (binary search on its resets)."""
    def is_reset(since):
        d = client.ok(client.get("/boards/%s/updates" % board, params={"since": since}))
        return bool(d["data"]) and d["data"][0]["type"] == "reset"
    last = client.last_event_id(board)
    lo, hi = 0, last  # find the smallest `since` that is not a reset
    assert not is_reset(hi)
    while lo < hi:
        mid = (lo + hi) // 2
        if is_reset(mid):
            lo = mid + 1
        else:
            hi = mid
    return lo + 1


@pytest.fixture(scope="module")
def hist_board(hist_srv):
    """A board with 150 events on a server keeping (at least) 64; the ring
    still holds all of them."""
    alice = hist_srv.client("alice")
    board, lists = new_board(alice, "hist")
    for i in range(HIST_N):
        alice.create_task(board, lists[0], "t%d" % i)
    oldest = oldest_retained(alice, board)
    assert 1 < oldest <= HIST_N - 64 + 1, oldest
    return board, lists


def check_history_resume(server, board, lists):
    """Resume just inside the history is exact; older gets a reset, then live."""
    alice = server.client("alice")
    n = alice.last_event_id(board)
    oldest = oldest_retained(alice, board)
    with SSEStream(server, "/boards/%s/events" % board,
                   headers={"Last-Event-ID": str(oldest - 1)}) as s:
        assert s.wait_connected() == n
        evs = s.wait_ids(n - oldest + 1)
        assert ids(evs) == list(range(oldest, n + 1))
        assert [b.json() for b in evs] == alice.events_since(board, oldest - 1)
    for since in (1, oldest - 2):
        with SSEStream(server, "/boards/%s/events" % board,
                       headers={"Last-Event-ID": str(since)}) as s:
            assert s.wait_connected() == n
            evs = s.wait_ids(1)
            assert evs[0].event == "reset", (since, [(b.id, b.event) for b in evs[:3]])
            d = evs[0].json()
            assert d["type"] == "reset" and d["lastEventId"] == n, d
            assert d["snapshot"].endswith("/boards/" + board), d
            t = alice.create_task(board, lists[1], "after reset %d" % since)
            n += 1
            evs = s.wait_ids(2)
            assert len(evs) == 2, [(b.id, b.event) for b in evs]
            assert_event_block(evs[1], board, n, "task_created")
            assert evs[1].json()["data"]["task"] == t


def test_resume_older_than_the_history_gets_a_reset_while_the_ring_holds_it(hist_srv,
                                                                           hist_board):
    check_history_resume(hist_srv, *hist_board)


def test_resume_older_than_the_history_gets_a_reset(hist_srv, hist_board):
    # a full restart empties the shared ring: the resume reads the event log
    hist_srv.restart()
    assert status(hist_srv)["ring"]["records"] == 0
    check_history_resume(hist_srv, *hist_board)


# ---------------------------------------------------------------------------
# several boards on one stream


def parse_cursor(s):
    out = {}
    for item in s.split(","):
        b, _, n = item.rpartition(":")
        out[b] = int(n)
    return out


def test_multi_board_stream_compound_ids_and_resume(srv, alice_s, sboard):
    board, lists = sboard
    demo_lists = [l["id"] for l in alice_s.lists("demo")]
    demo0 = alice_s.last_event_id("demo")
    path = "/events?boards=demo,%s" % board
    with SSEStream(srv, path) as s:
        s.wait_connected()
        assert parse_cursor(s.connected["lastEventId"]) == {"demo": demo0, board: 0}
        alice_s.create_task("demo", demo_lists[0], "d1")
        alice_s.create_task(board, lists[0], "b1")
        alice_s.create_task(board, lists[0], "b2")
        alice_s.create_task("demo", demo_lists[0], "d2")
        evs = s.wait_ids(4)
        assert [b.id for b in evs] == [
            "demo:%d,%s:0" % (demo0 + 1, board), "demo:%d,%s:1" % (demo0 + 1, board),
            "demo:%d,%s:2" % (demo0 + 1, board), "demo:%d,%s:2" % (demo0 + 2, board)]
        got = [(b.json()["boardId"], b.json()["id"]) for b in evs]
        assert got == [("demo", demo0 + 1), (board, 1), (board, 2), ("demo", demo0 + 2)]
        cursor = s.last_id()
    # missed on both boards while disconnected
    missed = []
    for i, b in enumerate(["demo", board, board, "demo", board]):
        alice_s.create_task(b, (demo_lists if b == "demo" else lists)[0], "m%d" % i)
        missed.append(b)
    with SSEStream(srv, path, headers={"Last-Event-ID": cursor}) as s:
        s.wait_connected()
        assert parse_cursor(s.connected["lastEventId"]) == {"demo": demo0 + 4, board: 5}
        evs = s.wait_ids(5)
        got = [(b.json()["boardId"], b.json()["id"]) for b in evs]
        assert sorted(got) == sorted([("demo", demo0 + 3), ("demo", demo0 + 4),
                                      (board, 3), (board, 4), (board, 5)]), got
        for bid in ("demo", board):  # in order within each board
            mine = [i for b, i in got if b == bid]
            assert mine == sorted(mine)
        for b in evs:  # each id is the cursor after that event
            d = b.json()
            assert parse_cursor(b.id)[d["boardId"]] == d["id"], b
            assert b.event == d["type"]
        assert parse_cursor(evs[-1].id) == {"demo": demo0 + 4, board: 5}
        alice_s.create_task(board, lists[1], "live")
        evs = s.wait_ids(6)
        assert parse_cursor(evs[-1].id) == {"demo": demo0 + 4, board: 6}
    # ?lastEventId= works for the compound cursor too
    q = "%s&lastEventId=demo:%d,%s:4" % (path, demo0 + 4, board)
    with SSEStream(srv, q) as s:
        evs = s.wait_ids(2)
        assert [(b.json()["boardId"], b.json()["id"]) for b in evs] == [(board, 5), (board, 6)]


def test_multi_board_stream_authorization_and_errors(srv, alice_s, sboard):
    board, _ = sboard
    with SSEStream(srv, "/events?boards=demo,private", user="bob") as s:
        assert s.wait_status() == 403
        s.wait_complete()
        assert json.loads(s.body)["error"]["status"] == 403
        assert b"retry:" not in s.body
    with SSEStream(srv, "/events?boards=%s,no-such-board" % board) as s:
        assert s.wait_status() == 404
    with SSEStream(srv, "/events?boards=demo,private", user="alice") as s:
        assert s.wait_status() == 200
        s.wait_connected()
    r = alice_s.get("/events", stream=True)
    assert_error(r, 400, field="boards")
    r = alice_s.get("/events", params={"boards": "demo", "lastEventId": "garbage"}, stream=True)
    assert_error(r, 400, field="lastEventId")


# ---------------------------------------------------------------------------
# board_deleted


def test_board_deleted_ends_the_boards_streams(srv, alice_s, sboard):
    board, lists = sboard
    alice_s.create_task(board, lists[0], "x")
    single = SSEStream(srv, "/boards/%s/events" % board)
    multi = SSEStream(srv, "/events?boards=%s,demo" % board)
    try:
        assert single.wait_connected() == 1
        multi.wait_connected()
        r = alice_s.delete("/boards/" + board)
        assert r.status_code == 204, r.text
        evs = single.wait_ids(1)
        assert_event_block(evs[0], board, 2, "board_deleted")
        single.wait_eof(5)
        assert single.ended_cleanly(), (single.error, single.sse.buf)
        assert len(single.events) == 1
        # the multi-board stream loses that board only
        evs = multi.wait_ids(1)
        assert evs[0].event == "board_deleted" and evs[0].json()["boardId"] == board
        demo_list = alice_s.lists("demo")[0]["id"]
        alice_s.create_task("demo", demo_list, "still here")
        evs = multi.wait_ids(2)
        assert evs[1].json()["boardId"] == "demo" and not multi.eof
    finally:
        single.close()
        multi.close()
    r = alice_s.get("/boards/%s/events" % board, stream=True)
    assert_error(r, 404)


def test_live_starts_while_events_are_written_miss_nothing(srv, alice_s, sboard):
    """Streams that start live (no id) while tasks are being created, on both
    children: each gets, once and in order, every event after the lastEventId
    its `connected` message gave, whether that id came from the store (a
    child's first start on the board) or from what its loop read of the ring."""
    board, lists = sboard
    writer = Writer(srv, board, lists[0])
    streams = []
    writer.start()
    try:
        wait_until(lambda: writer.created >= 3, 10, "the first tasks")
        for i in range(40):
            s = SSEStream(srv, "/boards/%s/events?probe=live%d" % (board, i))
            streams.append(s)
            s.wait_connected()
            if i % 8 == 7:
                n = writer.created
                wait_until(lambda: writer.created > n, 10, "another task")
    finally:
        writer.stop()
    try:
        assert not writer.failures, writer.failures[:3]
        final = alice_s.last_event_id(board)
        starts = set()
        for s in streams:
            start = s.wait_connected()
            starts.add(start)
            want = list(range(start + 1, final + 1))
            s.wait_ids(len(want), 10)
            assert ids(s.events) == want, (start, final, ids(s.events)[:10])
        assert len(starts) > 1, "every stream started at the same id: nothing was written meanwhile"
    finally:
        for s in streams:
            s.close()
    # the streams were held by both children (the access log line of each is
    # written when it ends)
    lines = wait_until(lambda: (lambda ls: ls if len(ls) == 40 else None)(
        srv.access_lines("GET", r"\?probe=live\d+$")), 10, "the streams' access log lines")
    assert {l["status"] for l in lines} == {200}
    assert len({l["pid"] for l in lines}) == 2, lines


def test_a_board_deleted_and_created_again_starts_live_from_its_new_history(srv, alice_s):
    """Both children's loops have read the first board's events and its
    board_deleted; streams that start live on the board created again under
    the same id get its own lastEventId, then its next event once."""
    board = unique("again")
    first = alice_s.create_board(board)
    for i in range(3):
        alice_s.create_task(board, first["lists"][0]["id"], "old %d" % i)
    before = [SSEStream(srv, "/boards/%s/events" % board) for _ in range(6)]
    try:
        for s in before:
            assert s.wait_connected() == 3
        assert alice_s.delete("/boards/" + board).status_code == 204
        for s in before:
            s.wait_eof(5)
    finally:
        for s in before:
            s.close()
    again = alice_s.create_board(board)
    last = alice_s.last_event_id(board)
    assert last < 4, last
    after = [SSEStream(srv, "/boards/%s/events" % board) for _ in range(6)]
    try:
        for s in after:
            assert s.wait_connected() == last
        task = alice_s.create_task(board, again["lists"][0]["id"], "new")
        for s in after:
            evs = s.wait_ids(1)
            assert ids(evs) == [last + 1]
            assert evs[0].json()["data"]["task"]["id"] == task["id"]
    finally:
        for s in after:
            s.close()


# ---------------------------------------------------------------------------
# graceful restart with open streams


@pytest.fixture(scope="module")
def restart_srv(servers):
    return servers.start(CHILDREN=2, THREADS=25)


class Writer(threading.Thread):
    """Creates tasks on fresh connections until stopped."""

    def __init__(self, server, board, list_id):
        super().__init__(daemon=True)
        self.server, self.board, self.list_id = server, board, list_id
        self.stop_ev = threading.Event()
        self.created = 0
        self.failures = []

    def run(self):
        c = self.server.client("alice")
        i = 0
        while not self.stop_ev.is_set():
            i += 1
            try:
                r = c.raw("POST", "/boards/%s/tasks" % self.board,
                          body=json.dumps({"listId": self.list_id, "title": "w%d" % i}).encode(),
                          headers={"Content-Type": "application/json"})
                if r.status_code == 201:
                    self.created += 1
                else:
                    self.failures.append((r.status_code, r.text[:200]))
            except OSError as e:
                self.failures.append(repr(e))
            self.stop_ev.wait(0.01)

    def stop(self):
        self.stop_ev.set()
        self.join(20)


def test_graceful_restart_ends_streams_cleanly_and_resume_misses_nothing(restart_srv):
    srv = restart_srv
    alice = srv.client("alice")
    board, lists = new_board(alice, "gr")
    streams = [SSEStream(srv, "/boards/%s/events" % board) for _ in range(6)]
    second = []
    w = Writer(srv, board, lists[0])
    try:
        for s in streams:
            assert s.wait_connected() == 0
        w.start()
        for s in streams:
            s.wait_ids(3)
        srv.graceful()
        for s in streams:
            s.wait_eof(15)
            assert s.ended_cleanly(), (s.error, s.http.chunked, s.http.complete, s.sse.buf)
            last = s.messages[-1]
            assert last.event == "reconnect" and last.id is None, last
            assert last.json()["type"] == "reconnect"
        # everyone reconnects where it left off while the writer goes on
        for s in streams:
            second.append(SSEStream(srv, "/boards/%s/events" % board,
                                    headers={"Last-Event-ID": s.last_id()}))
        base = w.created
        wait_until(lambda: w.created >= base + 5, 10, "more events after the restart")
        w.stop()
        assert not w.failures, w.failures
        final = alice.last_event_id(board)
        assert final == w.created
        log = alice.events_since(board, 0)
        for a, b in zip(streams, second):
            b.wait(lambda x: x.events and int(x.last_id()) == final, 10, "event %d" % final)
            got = a.events + b.events
            assert ids(got) == list(range(1, final + 1))
            assert [x.json() for x in got] == log
    finally:
        w.stop()
        for s in streams + second:
            s.close()


# ---------------------------------------------------------------------------
# an independent client: npm eventsource@4 in Node


def npm_ready():
    return (shutil.which("node") and
            os.path.isfile(os.path.join(JS_DIR, "node_modules", "eventsource", "package.json")))


@pytest.fixture(scope="module")
def js_deps():
    if not npm_ready():
        p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=JS_DIR,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        assert p.returncode == 0, p.stdout.decode(errors="replace")
    assert npm_ready()
    with open(os.path.join(JS_DIR, "node_modules", "eventsource", "package.json")) as f:
        assert json.load(f)["version"].startswith("4."), "eventsource 4.x is required"


class NodeClient:
    """tests/js/sse_client.mjs: one JSON object per line on stdout."""

    def __init__(self, server, path, user="alice"):
        env = dict(os.environ, RTB_URL=server.url(path), RTB_USER=user, RTB_PASS=user,
                   RTB_DEADLINE_MS="90000")
        self.p = subprocess.Popen(["node", os.path.join(JS_DIR, "sse_client.mjs")], cwd=JS_DIR,
                                  env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.lines = []
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        for raw in self.p.stdout:
            d = json.loads(raw)
            with self.cond:
                self.lines.append(d)
                self.cond.notify_all()

    def wait(self, pred, timeout=10, what="output"):
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.lines), timeout):
                raise AssertionError("node client: timed out waiting for %s; output %r" % (
                    what, self.lines[-20:]))

    def kinds(self, kind):
        with self.cond:
            return [d for d in self.lines if d["kind"] == kind]

    def stop(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(10)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait(5)
        self.t.join(5)
        err = self.p.stderr.read().decode(errors="replace")
        self.p.stderr.close()
        self.p.stdout.close()
        return err


def test_eventsource_client_reconnects_after_graceful_restart(restart_srv, js_deps):
    srv = restart_srv
    alice = srv.client("alice")
    board, lists = new_board(alice, "es")
    n = NodeClient(srv, "/boards/%s/events" % board)
    try:
        n.wait(lambda L: any(d["kind"] == "message" for d in L), 10, "the connected message")
        first = n.kinds("fetch")[0]
        assert first["lastEventId"] is None, first
        assert json.loads(n.kinds("message")[0]["data"]) == {"type": "connected",
                                                             "lastEventId": 0}
        for i in range(3):
            alice.create_task(board, lists[0], "before %d" % i)
        n.wait(lambda L: len([d for d in L if d["kind"] == "event"]) >= 3, 10, "3 events")

        srv.graceful()
        n.wait(lambda L: any(d["kind"] == "error" for d in L), 15, "the disconnection")
        err = n.kinds("error")[0]
        # created while the client waits `retry:` ms before reconnecting
        gap = [alice.create_task(board, lists[1], "gap %d" % i) for i in range(3)]
        gap_done = time.time() * 1000
        n.wait(lambda L: len([d for d in L if d["kind"] == "fetch"]) >= 2, 10, "a reconnection")
        again = n.kinds("fetch")[1]
        n.wait(lambda L: len([d for d in L if d["kind"] == "event"]) >= 6, 10, "the gap events")
        alice.create_task(board, lists[2], "live")
        n.wait(lambda L: len([d for d in L if d["kind"] == "event"]) >= 7, 10, "a live event")

        evs = n.kinds("event")
        assert [e["id"] for e in evs] == [str(i) for i in range(1, 8)], evs
        assert [json.loads(e["data"])["id"] for e in evs] == list(range(1, 8))
        assert all(e["event"] == "task_created" for e in evs)
        assert [json.loads(e["data"])["data"]["task"] for e in evs[3:6]] == gap
        # the server said goodbye before closing, and the client resumed from id 3
        bye = n.kinds("reconnect")
        assert bye and bye[0]["t"] <= err["t"], (bye, err)
        assert again["lastEventId"] == "3", again
        assert again["t"] >= gap_done, "the gap events were created after the reconnection"
        # it waited the server's retry: (2000 ms), not eventsource's default 3000 ms
        assert 1800 <= again["t"] - err["t"] < 2900, (err, again)
        assert len(n.kinds("open")) == 2
    finally:
        stderr = n.stop()
    assert n.kinds("closed"), (n.lines[-5:], stderr)
