"""pytest fixtures for the integration tests; the harness itself is harness.py."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import ROOT, Server, ServerPool, crash_lines, unique

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


@pytest.fixture(scope="module")
def servers(built_module):
    """servers.start(**settings) -> a started Server; after the module all are
    stopped and no child process may have crashed (see harness.ServerPool)."""
    pool = ServerPool()
    yield pool
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


@pytest.fixture(scope="module")
def ws_servers(built_module):
    """ws_servers(**settings) -> a started Server running a private copy of the module.

    The copy keeps the servers of this module alive while the shared build output
    is rewritten. After the module every server is stopped and its error.log must
    show no child that died of a signal such as a segmentation fault."""
    moddir = tempfile.mkdtemp(prefix="wsmod-", dir=os.path.join(ROOT, "build"))
    module = os.path.join(moddir, "mod_rtboard.so")
    for _ in range(20):  # a copy taken while the build rewrites the file is retaken
        before = os.stat(built_module)
        shutil.copyfile(built_module, module)
        after = os.stat(built_module)
        if ((before.st_mtime_ns, before.st_size) == (after.st_mtime_ns, after.st_size) ==
                (after.st_mtime_ns, os.path.getsize(module))):
            break
        time.sleep(0.5)
    made = []

    def make(prepare=None, **settings):
        """prepare(server), when given, runs on the fresh state directory before the start."""
        settings.setdefault("MODULE", module)
        s = Server(**settings)
        made.append(s)
        if prepare:
            prepare(s)
        return s.start()

    yield make
    problems = []
    for s in made:
        try:
            s.stop()
        finally:
            lines = crash_lines(s.error_log())
            if lines:
                problems.append("%s (kept): %s" % (s.var, "\n".join(lines[:10])))
            else:
                s.cleanup()
    shutil.rmtree(moddir, ignore_errors=True)
    assert not problems, "children crashed:\n" + "\n".join(problems)
