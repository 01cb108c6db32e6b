"""A fresh server that starts, serves requests (one of them held in progress
while the MPM checks its spare threads) and stops logs no warning or error."""
import re
import socket
import time

import pytest

from harness import wait_until

# "[module:level]" of an error.log line at warn or worse
ALARMING = re.compile(r"^\[[^]]*\] \[[a-z_0-9]*:(warn|error|crit|alert|emerg)\]")


def alarming_lines(log):
    return [l for l in log.splitlines() if ALARMING.search(l)]


# the harness's 25 threads per child, and scripts/server.sh's own default
# (THREADS="" leaves it to the script, as `make run` does)
@pytest.mark.parametrize("threads", ["25", ""], ids=["25-threads", "make-run-threads"])
def test_a_clean_start_and_stop_log_no_warning_or_error(servers, threads):
    srv = servers.start(check_crash=False, THREADS=threads)
    alice = srv.client("alice")
    assert alice.get("/boards").status_code == 200
    # a request whose headers are still being read holds a worker thread
    # across at least two of the MPM's once-a-second maintenance passes
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    try:
        s.sendall(b"GET /boards HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        held_until = time.monotonic() + 2.5
        wait_until(lambda: time.monotonic() >= held_until, 5, "two maintenance passes")
        s.sendall(b"Authorization: Basic YWxpY2U6YWxpY2U=\r\nConnection: close\r\n\r\n")
        head = b""
        while b"\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
    finally:
        s.close()
    for _ in range(5):
        assert alice.get("/boards/demo").status_code == 200
    srv.stop()
    log = srv.error_log()
    assert "AH00491" in log or "AH00492" in log, log  # the stop was logged
    assert alarming_lines(log) == [], "\n".join(alarming_lines(log))
