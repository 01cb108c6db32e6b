"""pytest fixtures for the integration tests; the harness itself is harness.py."""

import os
import subprocess

import pytest

from harness import ROOT, Server, unique

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
    s = Server()
    try:
        s.start()
        yield s
    finally:
        s.cleanup()


@pytest.fixture(scope="module")
def make_server(built_module):
    """make_server(**settings) -> a started Server; every one is stopped after the module."""
    made = []

    def make(**settings):
        s = Server(**settings)
        made.append(s)
        return s.start()

    yield make
    errors = []
    for s in made:
        try:
            s.cleanup()
        except Exception as e:  # stop the others all the same
            errors.append(e)
    assert not errors, errors


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
