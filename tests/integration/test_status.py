"""Operations: GET /rtboard-status and the mod_rtboard section of mod_status
count what the server holds and what it published."""
import asyncio
import socket

import websockets

from harness import wait_until


def _open_sse(server, board):
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(("GET /boards/%s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Authorization: Basic YWxpY2U6YWxpY2U=\r\n\r\n" % board).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def test_status_counts_streams_and_events(server, alice, board):
    admin = server.client("admin")
    bid, lists = board
    base = admin.get("/rtboard-status").json()["data"]
    socks = [_open_sse(server, bid) for _ in range(3)]
    try:
        wait_until(lambda: admin.get("/rtboard-status").json()["data"]["connections"]["sse"]
                   >= base["connections"]["sse"] + 3, what="three SSE streams counted")
        # per-board counts are refreshed by each child's loop twice a second
        wait_until(lambda: admin.get("/rtboard-status").json()["data"]["boards"].get(bid) == 3,
                   what="three streams counted on the board")
        assert len(admin.get("/rtboard-status").json()["data"]["children"]) >= 2
        r = alice.post("/boards/%s/tasks" % bid, {"listId": lists[0], "title": "s"})
        assert r.status_code == 201
        wait_until(lambda: admin.get("/rtboard-status").json()["data"]["delivered"]
                   >= base["delivered"] + 3, what="the event delivered to the three streams")
        after = admin.get("/rtboard-status").json()["data"]
        assert after["published"] == base["published"] + 1
        assert after["ring"]["next"] == base["ring"]["next"] + 1
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: admin.get("/rtboard-status").json()["data"]["connections"]["sse"]
               == base["connections"]["sse"], what="closed streams no longer counted")


def test_mod_status_has_a_section(server):
    admin = server.client("admin")
    published = admin.get("/rtboard-status").json()["data"]["published"]
    auto = admin.get("/server-status?auto").text
    assert "RTBoardSSE: " in auto
    assert "RTBoardPublished: %d" % published in auto
    page = admin.get("/server-status").text
    assert "<h2>mod_rtboard</h2>" in page and "events published: %d" % published in page


def test_status_counts_presence(server, board):
    """Two sockets of one user and one of another on a board: 3 leases,
    2 users, the board counted; all back to the earlier figures once closed."""
    admin = server.client("admin")
    bid, _ = board
    base = admin.get("/rtboard-status").json()["data"]["presence"]
    assert base["slots"] > 0

    def presence():
        return admin.get("/rtboard-status").json()["data"]["presence"]

    async def run():
        url = "ws://127.0.0.1:%d/boards/%s/ws" % (server.port, bid)
        socks = []
        for user in ("alice", "alice", "bob"):
            hdr = {"Authorization": "Basic " + {"alice": "YWxpY2U6YWxpY2U=",
                                                "bob": "Ym9iOmJvYg=="}[user]}
            ws = await websockets.connect(url, extra_headers=hdr)
            while True:  # joined on the board URL: wait for the snapshot
                msg = await asyncio.wait_for(ws.recv(), 10)
                if '"presence"' in msg:
                    break
            socks.append(ws)
        now = await asyncio.to_thread(presence)
        assert now["leases"] == base["leases"] + 3, now
        assert now["users"] == base["users"] + 2, now
        assert now["boards"] == base["boards"] + 1, now
        for ws in socks:
            await ws.close()

    asyncio.run(run())
    wait_until(lambda: presence()["leases"] == base["leases"]
               and presence()["users"] == base["users"], what="the leases given back")
