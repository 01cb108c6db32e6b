"""pytest fixtures for the integration tests; the harness itself is harness.py."""

import os
import subprocess

import pytest

from harness import ROOT, ServerPool, unique

# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session", autouse=True)
def built_module():
    """Runs `make build` once; MODULE=/path/to/mod_rtboard.so in the environment
    tests that module instead (scripts/server.sh loads $MODULE) and skips the build."""
    if os.environ.get("MODULE"):
        assert os.path.isfile(os.environ["MODULE"]), os.environ["MODULE"]
        return os.environ["MODULE"]
    p = subprocess.run(["make", "-C", ROOT, "build"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=600)
    assert p.returncode == 0, "make build failed:\n" + p.stdout.decode(errors="replace")
    return os.path.join(ROOT, "src", ".libs", "mod_rtboard.so")


@pytest.fixture(scope="session")
def server(built_module):
    """The shared server, from a pool of its own (checked for crashes at the end)."""
    pool = ServerPool(built_module)
    try:
        yield pool.start()
    finally:
        pool.close()


@pytest.fixture(scope="module")
def servers(built_module):
    """servers.start(**settings) -> a started Server; after the module all are
    stopped and no child process may have crashed (see harness.ServerPool)."""
    pool = ServerPool(built_module)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def alice(server):
    return server.client("alice")


@pytest.fixture(scope="session")
def bob(server):
    return server.client("bob")


@pytest.fixture(scope="session")
def carol(server):
    return server.client("carol")


@pytest.fixture
def board(alice):
    """A fresh board on `server` with the default lists: (board id, [list ids])."""
    b = alice.create_board(unique("t"))
    return b["id"], [l["id"] for l in b["lists"]]
