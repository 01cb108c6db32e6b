"""WebSockets and SSE over TLS: mod_ssl in front of the same server (a second
Listen with a <VirtualHost> holding only the TLS settings, so authentication, the
handlers and the database come from the main server's configuration), a
self-signed certificate made for the test."""

import asyncio
import json
import os
import select
import ssl
import subprocess
import time

import pytest
import requests
import websockets

from harness import free_port, unique, wait_until
from test_ws_protocol import OP_PONG, OP_PING, OP_TEXT, RawWS, basic, build_frame  # noqa: F401


def write_tls_conf(server):
    """Certificate, key and VAR/conf.d/ssl.conf (included by the generated httpd.conf)."""
    server.tls_port = free_port()
    server.cert = os.path.join(server.var, "tls-cert.pem")
    key = os.path.join(server.var, "tls-key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", server.cert],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, p.stdout.decode(errors="replace")
    os.makedirs(os.path.join(server.var, "conf.d"), exist_ok=True)
    with open(os.path.join(server.var, "conf.d", "ssl.conf"), "w") as f:
        f.write("""LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so
<IfModule !socache_shmcb_module>
LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so
</IfModule>
SSLSessionCache "shmcb:{var}/run/ssl_scache(512000)"
Listen 127.0.0.1:{port} https
<VirtualHost 127.0.0.1:{port}>
    ServerName 127.0.0.1:{port}
    SSLEngine on
    SSLCertificateFile "{cert}"
    SSLCertificateKeyFile "{key}"
</VirtualHost>
""".format(var=server.var, port=server.tls_port, cert=server.cert, key=key))


@pytest.fixture(scope="module")
def tls(servers):
    return servers.start(private_module=True, CHILDREN=2, prepare=write_tls_conf)


@pytest.fixture(scope="module")
def ctx(tls):
    c = ssl.create_default_context(cafile=tls.cert)  # hostname (IP) checked too
    return c


@pytest.fixture
def board(tls):
    b = tls.client("alice").create_board(unique("wss"))
    return b["id"], [l["id"] for l in b["lists"]]


def https(tls, path):
    return "https://127.0.0.1:%d%s" % (tls.tls_port, path)


async def connect(tls, ctx, path, user="alice", secure=True, **kw):
    if secure:
        url = "wss://127.0.0.1:%d%s" % (tls.tls_port, path)
        kw["ssl"] = ctx
    else:
        url = "ws://127.0.0.1:%d%s" % (tls.port, path)
    headers = {"Authorization": basic(user)} if user else {}
    ws = await websockets.connect(url, extra_headers=headers, open_timeout=10, close_timeout=3,
                                  ping_interval=None, **kw)
    m = await recv(ws)
    assert m == {"type": "connected", "user": {"userId": user, "name": user}}, m
    return ws


async def recv(ws, timeout=5.0):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws, typ, timeout=5.0):
    out = []
    while not out or out[-1]["type"] != typ:
        out.append(await recv(ws, timeout))
    return out


async def present(ws, users, expected, timeout=5.0):
    """Applies presence diffs to the set `users` until it is `expected`."""
    deadline = asyncio.get_event_loop().time() + timeout
    while users != expected:
        m = await recv(ws, max(0.01, deadline - asyncio.get_event_loop().time()))
        assert m["type"] == "presence_diff", m
        users -= set(m["left"])
        users |= {u["userId"] for u in m["joined"]}
        assert m["count"] == len(users), m


def test_https_uses_the_main_servers_authentication_and_handlers(tls, ctx):
    r = requests.get(https(tls, "/boards"), verify=tls.cert, timeout=10)
    assert r.status_code == 401, r.status_code
    assert r.headers.get("WWW-Authenticate", "").startswith("Basic")
    r = requests.get(https(tls, "/boards"), auth=("alice", "alice"), verify=tls.cert, timeout=10)
    assert r.status_code == 200 and isinstance(r.json()["data"], list), r.text[:200]
    # a certificate nobody trusts is refused: this really is TLS
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(https(tls, "/boards"), auth=("alice", "alice"), timeout=10)


def test_wss_carries_events_presence_typing_and_close(tls, ctx, board):
    bid, lists = board
    c = tls.client("carol")

    async def scenario():
        alice = await connect(tls, ctx, "/ws")
        assert alice.transport.get_extra_info("ssl_object") is not None
        await alice.send(json.dumps({"type": "join", "boardId": bid}))
        got = await until(alice, "presence")
        assert got[0] == {"type": "joined", "boardId": bid, "lastEventId": 0}
        seen = {"alice": {u["userId"] for u in got[-1]["users"]}}
        await present(alice, seen["alice"], {"alice"})
        # bob on TLS as well, joining by message
        bob = await connect(tls, ctx, "/ws", "bob")
        await bob.send(json.dumps({"type": "join", "boardId": bid}))
        got = await until(bob, "presence")
        assert got[0]["type"] == "joined"
        seen["bob"] = {u["userId"] for u in got[-1]["users"]}
        await present(bob, seen["bob"], {"alice", "bob"})
        await present(alice, seen["alice"], {"alice", "bob"})
        # and carol on plain HTTP, on the same board
        carol = await connect(tls, ctx, "/ws", "carol", secure=False)
        await carol.send(json.dumps({"type": "join", "boardId": bid}))
        got = await until(carol, "presence")
        seen["carol"] = {u["userId"] for u in got[-1]["users"]}
        for name, ws in (("alice", alice), ("bob", bob), ("carol", carol)):
            await present(ws, seen[name], {"alice", "bob", "carol"})

        t = c.create_task(bid, lists[0], "over tls")
        evs = [await recv(ws) for ws in (alice, bob, carol)]
        assert evs[0] == evs[1] == evs[2], evs
        assert (evs[0]["id"], evs[0]["type"]) == (1, "task_created")
        assert evs[0]["data"]["task"]["id"] == t["id"]

        await bob.send(json.dumps({"type": "typing", "boardId": bid, "taskId": t["id"]}))
        for ws in (alice, carol):
            m = await recv(ws)
            assert (m["type"], m["userId"], m["taskId"]) == ("user_typing", "bob", t["id"]), m
        await bob.send(json.dumps({"type": "ping"}))
        assert await recv(bob) == {"type": "pong"}  # bob's own typing is not echoed

        # a large message in several TLS records
        await alice.send(json.dumps({"type": "ping", "pad": "y" * 60000}))
        assert await recv(alice) == {"type": "pong"}

        # a clean close over TLS: the server echoes the code
        await bob.close(1000, "bye")
        assert bob.close_code == 1000
        m = await recv(alice)
        if m["type"] == "user_stopped_typing":
            m = await recv(alice)
        assert (m["type"], m["left"], m["joined"], m["count"]) == ("presence_diff", ["bob"], [], 2), m
        await alice.close()
        await carol.close()
        assert alice.close_code == 1000

    asyncio.run(scenario())


def test_wss_refusals(tls, ctx, board):
    bid, _ = board

    async def scenario():
        with pytest.raises(websockets.InvalidStatusCode) as e:
            await websockets.connect("wss://127.0.0.1:%d/ws" % tls.tls_port, ssl=ctx,
                                     open_timeout=10)
        assert e.value.status_code == 401
        # same origin means the https origin of this port
        ws = await connect(tls, ctx, "/ws", origin="https://127.0.0.1:%d" % tls.tls_port)
        await ws.send(json.dumps({"type": "ping"}))
        assert await recv(ws) == {"type": "pong"}
        await ws.close()
        ws = await websockets.connect("wss://127.0.0.1:%d/ws" % tls.tls_port, ssl=ctx,
                                      origin="http://127.0.0.1:%d" % tls.tls_port,
                                      extra_headers={"Authorization": basic("alice")},
                                      open_timeout=10)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 1008

    asyncio.run(scenario())


def test_wss_raw_frames(tls, ctx):
    """The codec behind TLS: a ping is answered, a protocol error closed with 1002."""
    ws = RawWS(tls.tls_port, "/ws", ssl_context=ctx)
    with ws:
        assert ws.status == 101
        assert ws.recv_json()["type"] == "connected"
        ws.send_frame(OP_PING, b"over tls")
        f = ws.next()
        assert (f.opcode, f.payload) == (OP_PONG, b"over tls")
        # two messages in one write
        ws.send_raw(build_frame(OP_TEXT, '{"type":"ping"}') * 2)
        assert ws.recv_json() == {"type": "pong"}
        assert ws.recv_json() == {"type": "pong"}
        ws.send_raw(build_frame(OP_TEXT, '{"type":"ping"}', mask=False))
        code, _ = ws.expect_close()
        assert code == 1002


def test_sse_over_https(tls, board):
    bid, lists = board
    c = tls.client("alice")
    p = subprocess.Popen(["curl", "-k", "-sS", "-N", "--max-time", "20", "-u", "alice:alice",
                          "-H", "Accept: text/event-stream", https(tls, "/boards/%s/events" % bid)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf = b""

    def read_until(marker, timeout=10):
        nonlocal buf
        deadline = time.monotonic() + timeout
        while marker not in buf:
            left = deadline - time.monotonic()
            assert left > 0, "no %r in %r" % (marker, buf)
            r, _, _ = select.select([p.stdout], [], [], left)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                assert chunk, "curl ended: %r %r" % (buf, p.stderr.read())
                buf += chunk

    try:
        read_until(b'"type":"connected"')
        assert buf.startswith(b"retry:"), buf
        t = c.create_task(bid, lists[0], "sse over tls")
        read_until(b"event: task_created\n")
        read_until(b"\n\n", 5)
        block = buf[buf.index(b"id: 1\n"):]
        block = block[:block.index(b"\n\n")].decode()
        lines = dict(l.split(": ", 1) for l in block.split("\n"))
        assert lines["id"] == "1" and lines["event"] == "task_created", block
        ev = json.loads(lines["data"])
        assert ev["id"] == 1 and ev["data"]["task"]["id"] == t["id"], ev
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()


def test_wss_graceful_restart_closes_with_1001_and_resume_over_tls(tls, ctx, board):
    bid, lists = board
    c = tls.client("alice")
    old = set(open("/proc/%d/task/%d/children" % (tls.master_pid(), tls.master_pid()))
              .read().split())

    async def scenario():
        ws = await connect(tls, ctx, "/boards/%s/ws" % bid)
        await until(ws, "presence")
        c.create_task(bid, lists[0], "before")
        assert (await recv(ws))["id"] == 1
        restart = asyncio.get_running_loop().run_in_executor(None, tls.graceful)
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await recv(ws, 20)
        assert ws.close_code == 1001
        await restart
        c.create_task(bid, lists[0], "after")
        ws = await connect(tls, ctx, "/boards/%s/ws?lastEventId=1" % bid)
        got = await until(ws, "presence")
        assert got[0]["lastEventId"] == 1
        assert [m["id"] for m in got[1:-1]] == [2], got
        await ws.close()

    asyncio.run(scenario())

    def old_gone():
        pid = tls.master_pid()
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return not (old & set(f.read().split()))
    wait_until(old_gone, 15, "the old generation to exit")
