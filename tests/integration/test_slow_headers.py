"""Slow request headers (slowloris): 300 connections that each send one header
line every 2 s, reconnecting whenever the server cuts them, must not keep a
signed-in user from reading a board: every GET answers within 5 s."""
import selectors
import socket
import threading
import time

import requests

from harness import wait_until

ATTACKERS = 300
LINE_EVERY = 2.0  # seconds between two header lines of one connection
DURATION = 30.0  # seconds of attack while the user reads
ANSWER_WITHIN = 5.0


class SlowHeaders:
    """ATTACKERS connections in one thread (a selector): each sends a request
    line, then a header line every LINE_EVERY s, never the blank line; a
    connection the server closes is opened again."""

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.stop = threading.Event()
        self.opened = self.cut = self.lines = 0
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", self.port))
        except OSError as e:
            s.close()
            self.errors.append(repr(e))
            return
        s.setblocking(False)
        try:
            s.send(b"GET /boards/demo HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            s.close()
            return
        self.opened += 1
        self.sel.register(s, selectors.EVENT_READ, {"next": now + LINE_EVERY, "n": 0})

    def _close(self, s):
        self.sel.unregister(s)
        s.close()
        self.cut += 1

    def _run(self):
        start = time.monotonic()
        for i in range(ATTACKERS):  # spread the first connections over one line period
            if self.stop.is_set():
                break
            self._open(start + LINE_EVERY * i / ATTACKERS)
        while not self.stop.is_set():
            now = time.monotonic()
            for key, _ in self.sel.select(timeout=0.05):
                try:
                    data = key.fileobj.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:  # cut by the server (after a 408 or not)
                    self._close(key.fileobj)
            for key in list(self.sel.get_map().values()):
                st = key.data
                if now >= st["next"]:
                    st["n"] += 1
                    st["next"] = now + LINE_EVERY
                    try:
                        key.fileobj.send(b"X-Slow-%d: %d\r\n" % (st["n"], st["n"]))
                        self.lines += 1
                    except OSError:
                        self._close(key.fileobj)
            for _ in range(ATTACKERS - len(self.sel.get_map())):
                if self.stop.is_set():
                    break
                self._open(time.monotonic())
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()
        self.sel.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        return False


def get_within(session, url, deadline):
    """GET by `deadline`. A child whose threads are all busy closes its idle
    keep-alive connections (they may go to another child): as a browser
    does, a GET whose reused connection was closed before any answer is sent
    again on a new one, within the same deadline."""
    while True:
        try:
            return session.get(url, timeout=max(0.1, deadline - time.monotonic()))
        except requests.Timeout:
            raise
        except requests.ConnectionError:
            get_within.retries += 1
            if time.monotonic() >= deadline:
                raise


get_within.retries = 0


def test_slow_headers_do_not_starve_readers(servers):
    # THREADS="" leaves the thread count to scripts/server.sh, as `make run`
    # does (the harness otherwise asks for 25 per child)
    srv = servers.start(THREADS="")
    alice = requests.Session()
    alice.auth = ("alice", "alice")
    url = srv.url("/boards/demo")
    assert alice.get(url, timeout=ANSWER_WITHIN).status_code == 200
    slowest = 0.0
    gets = 0
    with SlowHeaders(srv.port) as attack:
        wait_until(lambda: attack.opened >= ATTACKERS, 10, "%d slow connections" % ATTACKERS)
        end = time.monotonic() + DURATION
        while time.monotonic() < end:
            t0 = time.monotonic()
            try:
                r = get_within(alice, url, t0 + ANSWER_WITHIN)
            except requests.RequestException as e:
                raise AssertionError("GET %d after %.1f s of attack: no answer within %.0f s "
                                     "(%r); slow connections opened %d, cut %d"
                                     % (gets + 1, DURATION - (end - t0), ANSWER_WITHIN, e,
                                        attack.opened, attack.cut))
            took = time.monotonic() - t0
            assert took <= ANSWER_WITHIN, took
            assert r.status_code == 200, r.status_code
            slowest = max(slowest, took)
            gets += 1
            # the next GET at most a second after this one started
            next_at = t0 + 1.0
            wait_until(lambda: time.monotonic() >= next_at, 2, "the next second")
    # GETs were made throughout: one a second, or back to back while answers
    # took longer (each within ANSWER_WITHIN, asserted above)
    assert gets >= DURATION / ANSWER_WITHIN, gets
    assert attack.cut > 0, "the server never cut a slow connection"
    print("GETs %d (sent again on a new connection: %d), slowest %.2f s; slow connections "
          "opened %d, cut %d, header lines %d" % (gets, get_within.retries, slowest,
                                                  attack.opened, attack.cut, attack.lines))
