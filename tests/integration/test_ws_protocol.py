"""WebSocket wire protocol (RFC 6455) against the server, with hand-built frames on
raw sockets: every violation must be answered with the right close code and the end
of the TCP connection; valid control frames must be answered correctly. Also the
handshake's refusals (version, missing Upgrade, no credentials).

This module also holds the raw client (RawWS) that test_ws.py and test_wss.py
import; their servers come from the `servers` fixture (conftest.py).
"""

import base64
import hashlib
import json
import os
import select
import socket
import struct
import time

import pytest

from harness import unique, wait_until

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 64 * 1024  # RTBoardWSMaxMessage default


def basic(user, password=None):
    raw = "%s:%s" % (user, user if password is None else password)
    return "Basic " + base64.b64encode(raw.encode()).decode()


# ---------------------------------------------------------------------------
# the raw client


class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    @property
    def close_code(self):
        assert self.opcode == OP_CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    def __repr__(self):
        return "Frame(fin=%d, op=0x%x, %r)" % (self.fin, self.opcode, self.payload[:80])


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """A client frame; `length` announces a length other than the payload's."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        head += key
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class RawWS:
    """A WebSocket client on a plain (or TLS) socket that does the upgrade by hand
    and sends whatever frames it is told to. Server pings are answered (auto_pong)
    and recorded in .pings; every server frame is checked to be unmasked with clear
    RSV bits."""

    def __init__(self, port, path, user="alice", headers=None, ssl_context=None, timeout=10,
                 auto_pong=True, early=b""):
        self.port = port
        self.auto_pong = auto_pong
        self.pings = []
        self.buf = b""
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname="127.0.0.1")
        self.sock = sock
        self.local_port = sock.getsockname()[1]
        key = base64.b64encode(os.urandom(16)).decode()
        h = {"Host": "127.0.0.1:%d" % port, "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"}
        if user:
            h["Authorization"] = basic(user)
        for k, v in (headers or {}).items():
            if v is None:
                h.pop(k, None)
            else:
                h[k] = v
        req = "GET %s HTTP/1.1\r\n%s\r\n" % (path, "".join("%s: %s\r\n" % kv for kv in h.items()))
        sock.sendall(req.encode() + early)  # early: frames in the same write as the request
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._more(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        self.body = b""
        if self.status == 101:
            accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
            assert self.headers.get("sec-websocket-accept") == accept, self.headers
            assert self.headers.get("upgrade", "").lower() == "websocket", self.headers
        else:
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._more(deadline)
            self.body = self.buf[:n]

    # -- bytes ---------------------------------------------------------------

    def _more(self, deadline):
        """Reads what is there; EOFError at the end of the stream."""
        pending = getattr(self.sock, "pending", lambda: 0)()
        if not pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("nothing from the server in time (buffered: %r)" % self.buf[:200])
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                raise TimeoutError("nothing from the server in time (buffered: %r)" % self.buf[:200])
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            raise EOFError("the server closed the connection")
        self.buf += data

    def _take(self, n, deadline):
        while len(self.buf) < n:
            self._more(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    # -- frames ----------------------------------------------------------------

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(build_frame(opcode, payload, **kw))

    def send_json(self, obj):
        self.send_frame(OP_TEXT, json.dumps(obj))

    def frame(self, timeout=5.0):
        """The next server frame, as sent (pings included)."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._take(2, deadline)
        assert not b1 & 0x80, "server frames must not be masked"
        rsv = (b0 >> 4) & 7
        assert rsv == 0, "server frame with RSV bits %d" % rsv
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, deadline))[0]
        return Frame(b0 >> 7, rsv, b0 & 0x0F, self._take(n, deadline))

    def next(self, timeout=5.0):
        """The next frame that is not a ping (pings are answered when auto_pong)."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.frame(max(0.0, deadline - time.monotonic()))
            if f.opcode == OP_PING:
                self.pings.append(f.payload)
                if self.auto_pong:
                    self.send_frame(OP_PONG, f.payload)
                continue
            return f

    def recv_json(self, timeout=5.0):
        f = self.next(timeout)
        assert f.opcode == OP_TEXT, "expected a text message, got %r (close code %s)" % (
            f, f.close_code if f.opcode == OP_CLOSE else None)
        assert f.fin, "the server fragments its messages: %r" % f
        return json.loads(f.payload.decode("utf-8"))

    def recv_until(self, pred, timeout=5.0):
        """Messages up to and including the first for which pred(msg) holds."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            m = self.recv_json(max(0.0, deadline - time.monotonic()))
            out.append(m)
            if pred(m):
                return out

    def expect_close(self, timeout=5.0):
        """Reads up to the server's close frame (text messages before it are kept in
        .before_close), checks that the server then ends the TCP connection, and
        returns (code, reason)."""
        deadline = time.monotonic() + timeout
        self.before_close = []
        while True:
            try:
                f = self.next(max(0.0, deadline - time.monotonic()))
            except EOFError:
                raise AssertionError("the connection ended without a close frame; before it: %r"
                                     % self.before_close)
            if f.opcode == OP_CLOSE:
                break
            self.before_close.append(f)
        assert len(f.payload) != 1, f
        code = f.close_code
        reason = f.payload[2:].decode("utf-8")  # must be valid UTF-8 (RFC 6455 7.1.6)
        self.expect_eof(max(0.5, deadline - time.monotonic()))
        return code, reason

    def expect_eof(self, timeout=5.0):
        """The server ends the TCP connection, sending nothing more."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._more(deadline)
            except EOFError:
                break
        assert not self.buf, "data after the close frame: %r" % self.buf[:100]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False


def open_ws(server, path="/ws", user="alice", **kw):
    """A RawWS that must have been upgraded; returns it after the `connected` message."""
    ws = RawWS(server.port, path, user=user, **kw)
    assert ws.status == 101, (ws.status, ws.headers, ws.body)
    hello = ws.recv_json()
    assert hello == {"type": "connected", "user": {"userId": user, "name": user}}, hello
    return ws


def assert_alive(ws):
    """The socket still works: an application ping is answered with a pong."""
    ws.send_json({"type": "ping"})
    m = ws.recv_json()
    while m.get("type") == "presence_diff":  # the board's presence news (its own arrival)
        m = ws.recv_json()
    assert m == {"type": "pong"}


# ---------------------------------------------------------------------------
# tests


@pytest.fixture(scope="module")
def srv(servers):
    return servers.start(private_module=True, CHILDREN=2)


@pytest.fixture(scope="module")
def pboard(srv):
    c = srv.client("alice")
    b = c.create_board(unique("wsp"))
    return b["id"]


def test_valid_frame_gets_an_answer_first(srv):
    """The baseline that the violations below differ from: a well-formed masked
    text frame is answered."""
    with open_ws(srv) as ws:
        assert_alive(ws)


# ---------------------------------------------------------------------------
# close codes: one socket, what the client sends, the close it must get


class Closes:
    """A case of the close-code table: a socket on `path` as `user` (with extra
    upgrade `headers`), `hello` when the server greets it with `connected`
    before anything else, then `frames` sent one by one; the server must close
    with `code`, saying nothing else first. {board} and {other_port} in path
    and header values are filled in at run time."""

    def __init__(self, code, frames=(), path="/ws", user="alice", headers=None, hello=True):
        self.code, self.frames, self.path, self.user = code, list(frames), path, user
        self.headers, self.hello = headers or {}, hello


def _text(payload, **kw):
    return build_frame(OP_TEXT, payload, **kw)


def _join(board):
    return _text(json.dumps({"type": "join", "boardId": board}))


def _over_max():
    head = b'{"type":"ping","pad":"'
    msg = head + b"x" * (MAX_MESSAGE - len(head) - 1) + b'"}'
    assert len(msg) == MAX_MESSAGE + 1
    return msg


PING = '{"type":"ping"}'
BAD_UTF8 = {"overlong": b"\xc0\x80", "surrogate": b"\xed\xa0\x80",
            "above-10ffff": b"\xf4\x90\x80\x80", "ff": b"\xff", "truncated": b"\xe2\x82"}
FOREIGN = {"Origin": "http://evil.example"}

CLOSE_CASES = [
    # 1002: frames RFC 6455 forbids
    pytest.param(Closes(1002, [_text(PING, mask=False)]), id="1002-unmasked-client-frame"),
    *[pytest.param(Closes(1002, [_text(PING, rsv=rsv)]), id="1002-reserved-bit-" + name)
      for rsv, name in ((4, "rsv1"), (2, "rsv2"), (1, "rsv3"))],
    *[pytest.param(Closes(1002, [build_frame(op, b"x")]), id="1002-reserved-opcode-0x%x" % op)
      for op in (0x3, 0x7, 0xB, 0xF)],
    pytest.param(Closes(1002, [build_frame(OP_PING, b"p" * 126)]), id="1002-ping-of-126-bytes"),
    pytest.param(Closes(1002, [build_frame(OP_PING, b"abc", fin=False)]),
                 id="1002-fragmented-ping"),
    pytest.param(Closes(1002, [build_frame(OP_CONT, PING)]),
                 id="1002-continuation-without-a-start"),
    pytest.param(Closes(1002, [_text('{"type":', fin=False), _text(PING)]),
                 id="1002-text-frame-inside-a-fragmented-message"),
    pytest.param(Closes(1002, [_text(b"", length=1 << 63)]), id="1002-64-bit-length-top-bit"),
    *[pytest.param(Closes(1002, [build_frame(OP_CLOSE, close_payload(code))]),
                   id="1002-close-code-%d-not-allowed-on-the-wire" % code)
      for code in (999, 1004, 1005, 1006, 1015, 2999, 5000)],
    pytest.param(Closes(1002, [build_frame(OP_CLOSE, b"\x03")]),
                 id="1002-close-with-a-one-byte-payload"),
    # 1003: a binary message
    pytest.param(Closes(1003, [build_frame(OP_BINARY, b"\x00\x01\x02")]), id="1003-binary-frame"),
    # 1007: text that is not UTF-8
    *[pytest.param(Closes(1007, [_text(b'{"type":"ping","x":"' + bad + b'"}')]),
                   id="1007-invalid-utf8-" + name) for name, bad in BAD_UTF8.items()],
    pytest.param(Closes(1007, [_text(b'{"type":"ping","x":"\xed', fin=False),
                               build_frame(OP_CONT, b'\xa0\x80"}')]),
                 id="1007-invalid-utf8-split-across-fragments"),
    pytest.param(Closes(1007, [_text(b'{"type":"ping"} ', fin=False),
                               build_frame(OP_CONT, b"\xf0\x9f\x98")]),
                 id="1007-utf8-cut-at-the-end-of-a-fragmented-message"),
    pytest.param(Closes(1007, [build_frame(OP_CLOSE, close_payload(1000, b"bye \xc0\x80"))]),
                 id="1007-close-reason-invalid-utf8"),
    # 1009: over RTBoardWSMaxMessage (64 KiB), whole or in fragments
    pytest.param(Closes(1009, [_text(_over_max())]), id="1009-message-over-64-kib"),
    pytest.param(Closes(1009, [_text(b'{"type":"ping","pad":"' + b"x" * 30000, fin=False),
                               build_frame(OP_CONT, b"x" * 30000, fin=False),
                               build_frame(OP_CONT, b"x" * 10000 + b'"}')]),
                 id="1009-fragmented-message-over-64-kib"),
    # 1008: an upgrade from a foreign origin is closed before the server says anything
    pytest.param(Closes(1008, headers=FOREIGN, hello=False), id="1008-foreign-origin-ws"),
    pytest.param(Closes(1008, path="/boards/{board}/ws", headers=FOREIGN, hello=False),
                 id="1008-foreign-origin-board-url"),
    pytest.param(Closes(1008, headers={"Origin": "http://127.0.0.1:{other_port}"}, hello=False),
                 id="1008-origin-on-another-port"),
    # 4003 / 4004: joins the server refuses
    pytest.param(Closes(4003, [_join("private")], user="bob"), id="4003-join-of-a-forbidden-board"),
    pytest.param(Closes(4004, [_join("no-such-board")]), id="4004-join-of-an-unknown-board"),
    pytest.param(Closes(4004, path="/boards/no-such-board/ws"),
                 id="4004-board-url-of-an-unknown-board"),
    # a valid close is echoed
    *[pytest.param(Closes(code, [build_frame(OP_CLOSE, close_payload(code, reason))]),
                   id="%d-valid-close-echoed%s" % (code, "-" + name if name else ""))
      for code, reason, name in ((1000, b"", ""), (1000, b"done", "with-reason"), (1001, b"", ""),
                                 (4999, "fin \u00e9".encode(), "utf8-reason"))],
]


@pytest.fixture(scope="module")
def private(srv):
    """alice's board `private` (only alice may read it, by configuration)."""
    c = srv.client("alice")
    r = c.post("/boards", {"id": "private", "name": "Private"})
    assert r.status_code in (201, 409), r.text
    return "private"


@pytest.mark.parametrize("case", CLOSE_CASES)
def test_close_code(srv, pboard, private, case):
    fill = {"board": pboard, "other_port": srv.port + 1}
    headers = {k: v.format(**fill) for k, v in case.headers.items()}
    path = case.path.format(**fill)
    with RawWS(srv.port, path, user=case.user, headers=headers) as ws:
        assert ws.status == 101, (ws.status, ws.headers, ws.body)
        if case.hello:
            hello = ws.recv_json()
            assert hello["type"] == "connected", hello
        for f in case.frames:
            try:
                ws.send_raw(f)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server may refuse on a frame's header alone
        code, reason = ws.expect_close()
        assert code == case.code, "expected close %d, got %s (%r); before: %r" % (
            case.code, code, reason, ws.before_close)
        assert ws.before_close == [], ws.before_close


def test_valid_utf8_split_across_fragments_and_a_ping_between_them(srv):
    """é split in the middle of its two bytes, and a ping between the fragments:
    the pong comes first, then the whole message is answered."""
    text = '{"type":"ping","x":"caf\u00e9 \U0001F600"}'.encode()
    cut = text.index(b"\xc3") + 1
    with open_ws(srv) as ws:
        ws.send_frame(OP_TEXT, text[:cut], fin=False)
        ws.send_frame(OP_PING, b"between")
        pong = ws.next()
        assert (pong.opcode, pong.payload) == (OP_PONG, b"between"), pong
        ws.send_frame(OP_CONT, text[cut:cut + 3], fin=False)
        ws.send_frame(OP_CONT, text[cut + 3:])
        assert ws.recv_json() == {"type": "pong"}


def test_message_of_exactly_64_kib_is_accepted(srv):
    head = b'{"type":"ping","pad":"'
    msg = head + b"x" * (MAX_MESSAGE - len(head) - 2) + b'"}'
    assert len(msg) == MAX_MESSAGE
    with open_ws(srv) as ws:
        ws.send_frame(OP_TEXT, msg)
        assert ws.recv_json() == {"type": "pong"}


@pytest.mark.parametrize("payload", [b"", b"hello \x00\xff", bytes(range(125))],
                         ids=["empty", "bytes", "125-bytes"])
def test_ping_is_answered_with_a_pong_with_the_same_payload(srv, payload):
    with open_ws(srv) as ws:
        ws.send_frame(OP_PING, payload)
        f = ws.next()
        assert f.opcode == OP_PONG and f.fin, f
        assert f.payload == payload
        assert_alive(ws)


def test_unsolicited_pong_is_ignored(srv):
    with open_ws(srv) as ws:
        ws.send_frame(OP_PONG, b"nobody asked")
        assert_alive(ws)


def test_empty_close_is_answered_with_a_close(srv):
    with open_ws(srv) as ws:
        ws.send_frame(OP_CLOSE, b"")
        got, _ = ws.expect_close()
        assert got in (None, 1000), got


def test_message_flood_is_closed_with_1008(srv, pboard):
    """300 typing/cursor messages a second on a joined board: the server allows a
    burst, then closes with 1008 (policy: rate)."""
    with open_ws(srv, "/boards/%s/ws" % pboard) as ws:
        pres = ws.recv_until(lambda m: m["type"] == "presence")[-1]
        if "alice" not in [u["userId"] for u in pres["users"]]:
            ws.recv_until(lambda m: m["type"] == "presence_diff")  # her arrival, announced
        rate, t0, sent, code = 300.0, time.monotonic(), 0, None
        try:
            while time.monotonic() - t0 < 6:
                if sent % 2:
                    ws.send_json({"type": "cursor", "boardId": pboard, "x": sent, "y": 1})
                else:
                    ws.send_json({"type": "typing", "boardId": pboard, "taskId": 1 + sent % 7})
                sent += 1
                if select.select([ws.sock], [], [], 0)[0]:
                    break  # the server said something: its close, we expect
                delay = t0 + sent / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except (BrokenPipeError, ConnectionResetError):
            pass
        code, reason = ws.expect_close()
        assert code == 1008, (code, reason, ws.before_close)
        # messages are answered by nothing (typing and cursors are not echoed), so
        # anything before the close but the board's presence news would be an error
        said = [json.loads(f.payload) for f in ws.before_close if f.opcode != OP_PING]
        assert [m for m in said if m["type"] != "presence_diff"] == [], said
        assert sent >= 200, "closed after only %d messages: no burst allowance" % sent


def test_normal_rate_is_not_limited(srv):
    """Well under the limit (about 25 messages a second for 3 s, after a burst of
    100) the socket stays open and answers."""
    pboard = srv.client("alice").create_board(unique("wsr"))["id"]  # nobody else on it
    with open_ws(srv, "/boards/%s/ws" % pboard) as ws:
        ws.recv_until(lambda m: m["type"] == "presence")
        for i in range(100):
            ws.send_json({"type": "cursor", "boardId": pboard, "x": i, "y": i})
        t0 = time.monotonic()
        for i in range(75):
            ws.send_json({"type": "cursor", "boardId": pboard, "x": i, "y": 0})
            time.sleep(max(0.0, t0 + (i + 1) / 25.0 - time.monotonic()))
        assert_alive(ws)


# ---------------------------------------------------------------------------
# the handshake


def test_handshake_with_version_8_is_426_with_the_supported_version(srv):
    ws = RawWS(srv.port, "/ws", headers={"Sec-WebSocket-Version": "8"})
    with ws:
        assert ws.status == 426, (ws.status, ws.body)
        assert ws.headers.get("sec-websocket-version") == "13", ws.headers
        assert json.loads(ws.body)["error"]["status"] == 426


def test_handshake_without_upgrade_header_is_426(srv):
    ws = RawWS(srv.port, "/ws", headers={"Upgrade": None, "Connection": "keep-alive"})
    with ws:
        assert ws.status == 426, (ws.status, ws.body)
        assert ws.headers.get("upgrade", "").lower() == "websocket", ws.headers
        assert json.loads(ws.body)["error"]["status"] == 426


def test_handshake_with_a_bad_key_is_400(srv):
    ws = RawWS(srv.port, "/ws", headers={"Sec-WebSocket-Key": "c2hvcnQ="})
    with ws:
        assert ws.status == 400, (ws.status, ws.body)


@pytest.mark.parametrize("path", ["/ws", "/boards/%s/ws"])
def test_handshake_without_credentials_is_401_before_the_upgrade(srv, pboard, path):
    p = path % pboard if "%s" in path else path
    with RawWS(srv.port, p, user=None) as ws:
        assert ws.status == 401, (ws.status, ws.body)
        assert ws.headers.get("www-authenticate", "").startswith("Basic"), ws.headers
    with RawWS(srv.port, p, user="alice", headers={"Authorization": basic("alice", "wrong")}) as ws:
        assert ws.status == 401, (ws.status, ws.body)


def test_handshake_tokens_are_case_insensitive_lists(srv):
    """As Firefox sends them: `Connection: keep-alive, Upgrade`, `Upgrade: WebSocket`."""
    with RawWS(srv.port, "/ws", headers={"Connection": "keep-alive, Upgrade",
                                         "Upgrade": "WebSocket"}) as ws:
        assert ws.status == 101, (ws.status, ws.body)
        assert ws.recv_json()["type"] == "connected"
        assert_alive(ws)


def test_handshake_over_http_1_0_or_post_is_refused(srv):
    for method, version, status in (("GET", "1.0", 426), ("POST", "1.1", 405)):
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        try:
            sock.sendall(("%s /ws HTTP/%s\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\nAuthorization: %s\r\n"
                          "Content-Length: 0\r\n\r\n"
                          % (method, version, srv.port, base64.b64encode(os.urandom(16)).decode(),
                             basic("alice"))).encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                assert chunk, head
                head += chunk
            assert int(head.split()[1]) == status, (method, version, head[:200])
        finally:
            sock.close()


def test_a_socket_that_pauses_gets_every_event_once_in_order(srv):
    """A socket is written straight to: one that stops reading while 80
    events of 4 KB are published (more than the sockets' buffers hold, less
    than RTBoardOutputCap) and then reads on gets every one, once, in order,
    and stays open (this server pings every 30 s: the pause is shorter)."""
    alice = srv.client("alice")
    b = alice.create_board(unique("wsp"))
    bid, lists = b["id"], [l["id"] for l in b["lists"]]
    with RawWS(srv.port, "/boards/%s/ws" % bid) as raw:
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        first = raw.recv_until(lambda m: m.get("type") == "presence", 10)
        start = [m for m in first if m.get("type") == "joined"][0]["lastEventId"]
        desc = "w" * 4000
        for i in range(80):
            alice.create_task(bid, lists[i % 3], "pause %d" % i, description=desc)
        got = []
        deadline = time.monotonic() + 30
        while len(got) < 80:
            m = raw.recv_json(max(0.1, deadline - time.monotonic()))
            if m.get("type") == "task_created":
                got.append(m)
        assert [m["id"] for m in got] == list(range(start + 1, start + 81))
        assert all(m["boardId"] == bid and m["data"]["task"]["description"] == desc
                   for m in got), got[0]
        raw.send_json({"type": "ping"})
        raw.recv_until(lambda m: m.get("type") == "pong", 10)


def test_sockets_joining_live_while_events_are_written_miss_nothing(srv):
    """Sockets that join live (no lastEventId), by their URL or by a join
    message, while tasks are being created: each gets, once and in order,
    every event after the lastEventId of its `joined` message."""
    from test_sse import Writer
    alice = srv.client("alice")
    b = alice.create_board(unique("wsl"))
    bid = b["id"]
    writer = Writer(srv, bid, b["lists"][0]["id"])
    socks = []
    writer.start()
    try:
        wait_until(lambda: writer.created >= 3, 10, "the first tasks")
        for i in range(30):
            if i % 2:
                ws = open_ws(srv, "/ws")
                ws.send_json({"type": "join", "boardId": bid})
            else:
                ws = open_ws(srv, "/boards/%s/ws" % bid)
            joined = ws.recv_until(lambda m: m.get("type") == "joined", 10)[-1]
            socks.append((ws, joined["lastEventId"]))
    finally:
        writer.stop()
    try:
        assert not writer.failures, writer.failures[:3]
        final = alice.last_event_id(bid)
        starts = set()
        for ws, start in socks:
            starts.add(start)
            want = list(range(start + 1, final + 1))
            got = []
            if want:
                got = [m["id"] for m in ws.recv_until(
                    lambda m: m.get("id") == final or m.get("type") == "error", 10) if "id" in m]
            assert got == want, (start, final, got[:10])
        assert len(starts) > 1, "every socket joined at the same id: nothing was written meanwhile"
    finally:
        for ws, _ in socks:
            ws.close()
