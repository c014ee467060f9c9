"""Privilege drop: [daemon] user and group.

Started as root with user = nobody, preforkd binds its (low) port first, then
the master and every worker switch to nobody: real, effective, saved and file
system ids, no supplementary groups.  The master reaches the NOTIFY_SOCKET
after the drop, so these tests use an abstract one (no file permissions).
"""

import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

import pfharness as H

needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="dropping privileges needs root (the tests run as uid %d)"
                                % os.geteuid())


def user_ids(name):
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


def assert_creds(pid, uid, gid, what):
    c = H.proc_creds(pid)
    assert c["Uid"] == [uid] * 4, "%s %d: Uid %r, want %d (real, effective, saved, fs)" % (
        what, pid, c["Uid"], uid)
    assert c["Gid"] == [gid] * 4, "%s %d: Gid %r, want %d" % (what, pid, c["Gid"], gid)
    assert c["Groups"] == [], "%s %d: supplementary groups %r left" % (what, pid, c["Groups"])


def other_group(not_gid):
    """An existing group other than gid not_gid (Debian has daemon, bin, sys, ...)."""
    for name in ("daemon", "bin", "sys", "adm", "users"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid not in (not_gid, 0):
            return g.gr_name, g.gr_gid
    pytest.skip("no group other than gid %d and root to switch to" % not_gid)


def low_port_daemon(preforkd, daemon, **kw):
    port = H.low_free_port()
    keys = {"workers": 2}
    keys.update(daemon)
    d = preforkd.start(daemon=keys, listeners={"low": {"listen": "127.0.0.1:%d" % port}},
                       notify_abstract=True, **kw)
    return d, port


@needs_root
def test_user_nobody_on_low_port(preforkd):
    uid, gid = user_ids("nobody")
    d, port = low_port_daemon(preforkd, {"user": "nobody"})
    workers = d.wait_workers(2)
    assert_creds(d.pid, uid, gid, "master")
    for w in workers:
        assert_creds(w, uid, gid, "worker")
    for _ in range(4):
        assert H.echo_ok(port, H.payload(30000))
    assert "running as root" not in d.log(), d.log_tail()
    # a worker respawned by the unprivileged master is unprivileged too
    os.kill(workers[0], signal.SIGKILL)
    for w in d.wait_workers(2, exclude=[workers[0]]):
        assert_creds(w, uid, gid, "respawned worker")
    assert H.echo_ok(port, H.payload(30000))
    assert d.stop() == 0


@needs_root
def test_user_and_group(preforkd):
    uid, ugid = user_ids("nobody")
    gname, gid = other_group(ugid)
    d, port = low_port_daemon(preforkd, {"user": "nobody", "group": gname})
    for pid in [d.pid] + d.wait_workers(2):
        assert_creds(pid, uid, gid, "process")
    assert H.echo_ok(port, H.payload(30000))


@needs_root
def test_reload_keeps_user_and_warns(preforkd):
    """user cannot change on reload: a warning says so, the rest of the reload applies,
    the new workers run as the same user."""
    uid, gid = user_ids("nobody")
    # after the drop the master rereads its config as nobody
    os.chmod(preforkd.tmp, 0o755)
    d, port = low_port_daemon(preforkd, {"user": "nobody"})
    os.chmod(d.conf, 0o644)
    d.daemon_keys["user"] = "daemon"
    d.daemon_keys["workers"] = 3
    d.write_config()
    os.chmod(d.conf, 0o644)
    log_at = d.log_size()
    status = d.reload()
    assert status is not None and "reload failed" not in status, status
    # a warning that names user (the wording of the rest is the daemon's)
    d.wait_log(r"\[warning\] master: [^\n]*\buser\b[^\n]*need a restart; keeping", start=log_at)
    workers = d.wait_workers(3, timeout=15)
    for pid in [d.pid] + workers:
        assert_creds(pid, uid, gid, "process")
    assert H.echo_ok(port, H.payload(30000))


@needs_root
def test_root_without_user_warns(preforkd):
    d = preforkd.start(daemon={"workers": 1})
    d.wait_log(r"\[warning\] master: running as root; set user in \[daemon\]")


def check_config(tmp_dir, daemon_keys, timeout=10):
    """preforkd -t on a config with these [daemon] keys; returns (result, path, line of
    each daemon key)."""
    path = os.path.join(tmp_dir, "t.conf")
    text = H.render_config(daemon_keys, {"echo": {"listen": "127.0.0.1:%d" % H.free_port()}})
    with open(path, "w") as f:
        f.write(text)
    lines = {l.split("=")[0].strip(): i + 1 for i, l in enumerate(text.splitlines()) if "=" in l}
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS",
                                                             "LISTEN_PID")}
    r = subprocess.run([H.PREFORKD, "-t", "-c", path], capture_output=True, text=True,
                       timeout=timeout * H.SLOW, env=env, stdin=subprocess.DEVNULL)
    return r, path, lines


def test_unknown_user_fails_check(binaries, tmp_dir):
    r, path, lines = check_config(tmp_dir, {"workers": 1, "user": "no-such-user-pf"})
    assert r.returncode == 1, r
    want = '%s:%d: user: unknown user "no-such-user-pf"' % (path, lines["user"])
    assert want in r.stderr, "want %r in stderr:\n%s" % (want, r.stderr)


def test_unknown_group_fails_check(binaries, tmp_dir):
    r, path, lines = check_config(tmp_dir, {"user": "nobody", "group": "no-such-group-pf"})
    assert r.returncode == 1, r
    want = "%s:%d: group: " % (path, lines["group"])
    assert want in r.stderr and "no-such-group-pf" in r.stderr, \
        "want %r naming the group in stderr:\n%s" % (want, r.stderr)


def test_group_without_user_fails_check(binaries, tmp_dir):
    r, path, lines = check_config(tmp_dir, {"group": "nogroup"})
    assert r.returncode == 1, r
    assert "%s:%d: group: " % (path, lines["group"]) in r.stderr, r.stderr


def test_known_user_passes_check(binaries, tmp_dir):
    r, path, _ = check_config(tmp_dir, {"user": "nobody", "group": "nogroup"})
    assert r.returncode == 0, r
    assert r.stdout.strip() == "%s: configuration ok" % path, r


@pytest.fixture
def others_dir():
    """A directory (0755) that other users can reach and a copy of preforkd in it,
    wherever the checkout and $TMPDIR live: a fresh clone in a private (0700)
    directory does not let nobody run build/preforkd, nor read a file beside it.
    Made in /tmp (1777 on every Debian), not in $TMPDIR, which may be private."""
    d = tempfile.mkdtemp(prefix="preforkd-others-", dir="/tmp")
    try:
        os.chmod(d, 0o755)
        shutil.copy(H.PREFORKD, os.path.join(d, "preforkd"))
        os.chmod(os.path.join(d, "preforkd"), 0o755)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@needs_root
def test_unprivileged_start_cannot_switch_user(binaries, others_dir):
    """Not root and user names someone else: start-up error, exit 1 (no serving).
    It runs a copy of the binary in the test's own directory, not the checkout's."""
    uid, gid = user_ids("nobody")
    binary = os.path.join(others_dir, "preforkd")
    port = H.free_port()
    path = os.path.join(others_dir, "u.conf")
    with open(path, "w") as f:
        f.write(H.render_config({"workers": 1, "user": "daemon"},
                                {"echo": {"listen": "127.0.0.1:%d" % port}}))
    os.chmod(path, 0o644)

    def become_nobody():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS",
                                                             "LISTEN_PID")}
    p = subprocess.Popen([binary, "-c", path], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=others_dir, preexec_fn=become_nobody, start_new_session=True)
    try:
        out, err = p.communicate(timeout=10 * H.SLOW)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail("preforkd run by nobody with user = daemon did not exit; stderr:\n%s" % err)
    assert p.returncode == 1, (p.returncode, err)
    assert err.startswith("preforkd: ") or "\npreforkd: " in err, err
    assert H.port_refuses(port)


def run_signal(signame, pidfile):
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS",
                                                             "LISTEN_PID")}
    return subprocess.run([H.PREFORKD, "-s", signame, "-p", pidfile], capture_output=True,
                          text=True, timeout=10 * H.SLOW, env=env, stdin=subprocess.DEVNULL)


@needs_root
def test_pidfile_left_in_root_dir_is_harmless(preforkd):
    """user = nobody, pid file in a root-owned directory: the master, no longer root, cannot
    remove it at exit.  What it leaves is detectably stale (no lock, no pid): -s refuses it,
    even once its pid names a live process again (pid reuse), and a fresh start takes it
    over."""
    os.chmod(preforkd.tmp, 0o755)
    rundir = os.path.join(preforkd.tmp, "run")
    os.mkdir(rundir, 0o755)
    pidfile = os.path.join(rundir, "preforkd.pid")
    d = preforkd.start(daemon={"workers": 2, "user": "nobody", "pidfile": pidfile},
                       notify_abstract=True)
    workers = d.wait_workers(2)
    assert H.pidfile_lock_holder(pidfile) == d.pid, "the master does not hold the pid file's lock"
    for w in workers:
        assert H.open_on(w, pidfile) == [], "worker %d has the pid file open" % w

    r = run_signal("stop", pidfile)
    assert r.returncode == 0, r
    assert d.wait_exit(15) == 0, d.log_tail()
    assert os.path.exists(pidfile), "removed from a root-owned directory by nobody?"
    d.wait_log(r"\[warning\] master: pid file %s emptied, not removed: Permission denied"
               % re.escape(pidfile))
    assert H.pidfile_lock_holder(pidfile) is None, "the lock outlived the master"
    with open(pidfile) as f:
        assert f.read() == "", "the leftover still names a process"
    r = run_signal("stop", pidfile)
    assert r.returncode == 1 and "not running" in r.stderr, r

    # pid reuse: the leftover now names a live process that is no preforkd
    other = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        with open(pidfile, "w") as f:
            f.write("%d\n" % other.pid)
        for signame in ("stop", "reload"):
            r = run_signal(signame, pidfile)
            assert r.returncode == 1 and "not running" in r.stderr, r
        assert other.poll() is None, "-s signalled the process the leftover names"
        d2 = preforkd.start(daemon={"workers": 1, "user": "nobody", "pidfile": pidfile},
                            notify_abstract=True)
        assert H.pidfile_lock_holder(pidfile) == d2.pid
        with open(pidfile) as f:
            assert f.read() == "%d\n" % d2.pid
        assert H.echo_ok(d2.port, H.payload(1000))
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
