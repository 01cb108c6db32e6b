#!/usr/bin/python3
"""Runs the browser checks (board.spec.mjs) against a private httpd it starts
and stops by pid; the restart scenario restarts that same server."""
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    var = tempfile.mkdtemp(prefix="rtb-browser-", dir="/tmp")
    env = dict(os.environ, VAR=var, PORT=str(free_port()), CHILDREN="2", THREADS="25")
    server = os.path.join(ROOT, "scripts", "server.sh")
    subprocess.run([server, "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    try:
        restart = "{0} stop && {0} start >/dev/null".format(shlex.quote(server))
        spec_env = dict(env, RTB_URL="http://127.0.0.1:%s" % env["PORT"], RTB_BOARD="demo",
                        RTB_RESTART_CMD=restart,
                        RTB_SCREENSHOTS=os.path.join(ROOT, "tests", "output", "screenshots"))
        rc = subprocess.run(["node", os.path.join(ROOT, "tests", "browser", "board.spec.mjs")],
                            env=spec_env, timeout=900).returncode
    finally:
        subprocess.run([server, "stop"], env=env)
    log = open(os.path.join(var, "error.log")).read()
    if "Segmentation fault" in log:
        print("httpd children crashed during the browser checks (see %s/error.log)" % var)
        rc = rc or 1
    else:
        shutil.rmtree(var, ignore_errors=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()
