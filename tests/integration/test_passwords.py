"""Demo users' passwords: bcrypt hashes made by scripts/server.sh, checked by
mod_authn_file behind mod_authn_socache's cache; a file already there is kept."""
import os
import subprocess

import requests


def htpasswd_lines(server):
    with open(os.path.join(server.var, "htpasswd")) as f:
        return [l.strip() for l in f if l.strip()]


def test_demo_users_have_bcrypt_hashes_and_log_in(server):
    lines = htpasswd_lines(server)
    users = {l.split(":", 1)[0]: l.split(":", 1)[1] for l in lines}
    assert set(users) == {"alice", "bob", "carol", "admin"}, users
    for user, hashed in users.items():
        assert hashed.startswith("$2y$"), (user, hashed)
        r = requests.get(server.url("/boards"), auth=(user, user), timeout=10)
        assert r.status_code == 200, (user, r.status_code)
        r = requests.get(server.url("/boards"), auth=(user, user + "x"), timeout=10)
        assert r.status_code == 401, (user, r.status_code)
    r = requests.get(server.url("/boards"), auth=("mallory", "mallory"), timeout=10)
    assert r.status_code == 401


def test_checked_credentials_are_served_from_the_cache(servers):
    srv = servers.start()
    assert requests.get(srv.url("/boards"), auth=("carol", "carol"), timeout=10).status_code == 200
    # carol's entry changes in the file; the cached one holds until it expires
    p = subprocess.run(["htpasswd", "-b", "-B", "-C", "5", os.path.join(srv.var, "htpasswd"),
                        "carol", "other"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    assert p.returncode == 0, p.stdout
    for _ in range(4):  # every child reads the one shared cache
        r = requests.get(srv.url("/boards"), auth=("carol", "carol"), timeout=10)
        assert r.status_code == 200, r.status_code
    # bob was not cached yet: his new entry is read from the file
    p = subprocess.run(["htpasswd", "-b", "-B", "-C", "5", os.path.join(srv.var, "htpasswd"),
                        "bob", "other"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    assert p.returncode == 0, p.stdout
    assert requests.get(srv.url("/boards"), auth=("bob", "other"), timeout=10).status_code == 200
    assert requests.get(srv.url("/boards"), auth=("bob", "bob"), timeout=10).status_code == 401


def write_sha1_htpasswd(server):
    path = os.path.join(server.var, "htpasswd")
    for i, u in enumerate(("alice", "bob")):
        p = subprocess.run(["htpasswd", "-b", "-s"] + (["-c"] if i == 0 else []) + [path, u, u],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        assert p.returncode == 0, p.stdout
    with open(path) as f:
        server.written = f.read()


def test_an_existing_htpasswd_file_is_kept(servers):
    srv = servers.start(prepare=write_sha1_htpasswd)
    with open(os.path.join(srv.var, "htpasswd")) as f:
        assert f.read() == srv.written
    assert requests.get(srv.url("/boards"), auth=("alice", "alice"), timeout=10).status_code == 200
    assert requests.get(srv.url("/boards"), auth=("carol", "carol"), timeout=10).status_code == 401
