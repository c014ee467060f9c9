"""-d (daemonize), the pid file (-p / pidfile) and -s (signal a running instance).

`preforkd -d` returns only once the daemon is ready (or with its start-up
error); the pid file names the master; `preforkd -s reload|stop|quit|reopen`
signals it.  A detached daemon is no child of the test: every one is found
through its pid file and cleaned up by PID (SIGTERM, then SIGKILL after a
deadline, its workers too).
"""

import os
import re
import signal
import socket
import subprocess

import pytest

import pfharness as H


def clean_env():
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
              "WATCHDOG_USEC", "WATCHDOG_PID"):
        env.pop(k, None)
    return env


def pipe_holders(inodes):
    """['PID (COMM) fd N', ...]: the processes (but us) holding the pipes of these inodes."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
            comm = open("/proc/%s/comm" % pid).read().strip()
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%s/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("pipe:[") and int(link[6:-1]) in inodes and int(pid) != os.getpid():
                out.append("%s (%s) fd %s" % (pid, comm, fd))
    return out


def is_preforkd(pid):
    try:
        return os.path.realpath("/proc/%d/exe" % pid) == os.path.realpath(H.PREFORKD)
    except OSError:
        return False


class Detached:
    """The detached daemons of one test and the files they use."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.pidfiles = set()
        self.pids = {}            # pid -> start time, every master and worker seen
        self.masters = set()      # the pids the pid files named
        self.launcher = None      # pid of the last preforkd run()
        self.logs = set()
        H.become_subreaper()      # a detached master (and orphaned workers) reparent to us

    def config(self, name="preforkd.conf", daemon=None, port=None):
        """Write a config (log_target = a file in tmp); return (path, port, log path)."""
        port = port or H.free_port()
        log = os.path.join(self.tmp, name + ".log")
        keys = {"workers": 2, "log_level": "info", "log_target": log,
                "shutdown_timeout": "5s", "drain_timeout": "5s"}
        keys.update(daemon or {})
        if "pidfile" in keys:
            self.pidfiles.add(keys["pidfile"])
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(H.render_config(keys, {"echo": {"listen": "127.0.0.1:%d" % port}}))
        self.logs.add(keys["log_target"])
        return path, port, keys["log_target"]

    def run(self, args, timeout=15):
        """Run preforkd with args to completion; return CompletedProcess.

        Pipes, not files, for stdout and stderr: communicate() returns once
        both are closed, so a daemon that kept the launcher's stdio open would
        show up here (and fail the test), as it would hang `$(preforkd -d)`.
        """
        for i, a in enumerate(args):
            if a == "-p" and i + 1 < len(args):
                self.pidfiles.add(args[i + 1])
        p = subprocess.Popen([H.PREFORKD] + list(args), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=clean_env(), cwd=self.tmp, start_new_session=True)
        self.launcher = p.pid
        pipes = {os.fstat(f.fileno()).st_ino for f in (p.stdout, p.stderr)}
        try:
            out, err = p.communicate(timeout=timeout * H.SLOW)
        except subprocess.TimeoutExpired:
            rc = p.poll()
            holders = pipe_holders(pipes)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.kill()
            self.track()
            if rc is not None:
                pytest.fail("preforkd %s exited %d but its stdout/stderr stayed open %ds, "
                            "held by %s" % (" ".join(args), rc, timeout, holders))
            pytest.fail("preforkd %s did not return within %ds" % (" ".join(args), timeout))
        self.track()
        bad = [l for l in err.splitlines() if any(b in l for b in H.BAD_LOG[1:])]
        assert not bad, "preforkd %s: sanitizer report:\n%s" % (" ".join(args), err)
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)

    def pid_in(self, path):
        try:
            with open(path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        m = re.fullmatch(r"(\d+)\n", text)
        assert m, "pid file %s holds %r, not PID\\n" % (path, text)
        return int(m.group(1))

    def _track(self, pid):
        st = H.proc_starttime(pid)
        if st is not None and pid not in self.pids and is_preforkd(pid):
            self.pids[pid] = st

    def track(self):
        """Note every master the pid files name, and its workers."""
        for path in self.pidfiles:
            try:
                pid = self.pid_in(path)
            except AssertionError:
                continue
            if pid is not None:
                self._track(pid)
                if pid in self.pids:
                    self.masters.add(pid)
        for pid in list(self.masters):
            for w in H.children(pid):
                self._track(w)

    def ours_alive(self, pid):
        H.reap(pid)
        return (pid in self.pids and H.proc_starttime(pid) == self.pids[pid]
                and H.proc_alive(pid))

    def wait_gone(self, pid, timeout):
        """Wait until pid (one of ours) has exited; True if it did."""
        try:
            H.wait_for(lambda: not self.ours_alive(pid), timeout, "pid %d to exit" % pid,
                       interval=0.01)
            return True
        except H.HarnessError:
            return False

    def teardown(self):
        self.track()
        problems = []
        for pid in [p for p in self.masters if self.ours_alive(p)]:
            problems.append("daemon %d still running at teardown" % pid)
            os.kill(pid, signal.SIGTERM)
            if not self.wait_gone(pid, 10):
                os.kill(pid, signal.SIGKILL)
                self.wait_gone(pid, 5)
        for pid in self.pids:
            if self.ours_alive(pid) and not self.wait_gone(pid, 5):
                problems.append("process %d still alive 5 s after its master" % pid)
                os.kill(pid, signal.SIGKILL)
                self.wait_gone(pid, 5)
        for log in self.logs:
            try:
                with open(log, errors="replace") as f:
                    bad = [l for l in f if any(b in l for b in H.BAD_LOG)]
            except FileNotFoundError:
                continue
            if bad:
                problems.append("log %s has:\n  %s" % (log, "  ".join(bad[:20])))
        return problems


@pytest.fixture
def detached(binaries, tmp_dir):
    dt = Detached(tmp_dir)
    yield dt
    problems = H.timed_teardown(dt.teardown)
    # a test that failed half-way leaves a daemon to kill: not a second failure
    if problems and not any(p.startswith("daemon ") for p in problems):
        pytest.fail("teardown:\n" + "\n".join(problems), pytrace=False)


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def wait_log(path, pattern, timeout=10, start=0):
    rx = re.compile(pattern)

    def ok():
        try:
            return rx.search(read(path)[start:])
        except FileNotFoundError:
            return None
    try:
        return H.wait_for(ok, timeout, "/%s/ in %s" % (pattern, path), interval=0.02)
    except H.HarnessError as e:
        tail = read(path)[-3000:] if os.path.exists(path) else "(no log)"
        raise H.HarnessError("%s; log tail:\n%s" % (e, tail))


def assert_detached_master(dt, pid, launcher_pid):
    assert pid != launcher_pid, "the pid file names the launcher"
    assert dt.ours_alive(pid), "pid %d from the pid file is not a live preforkd" % pid
    st = H.proc_stat(pid)
    ppid, sid = int(st[1]), int(st[3])
    assert ppid != launcher_pid
    assert sid == pid, "the daemon is no session leader (sid %d, pid %d): no setsid()" % (sid,
                                                                                        pid)
    assert os.readlink("/proc/%d/cwd" % pid) == "/", "the daemon did not chdir to /"
    for fd in (0, 1, 2):
        assert os.readlink("/proc/%d/fd/%d" % (pid, fd)) == "/dev/null", \
            "fd %d of the daemon is %s, not /dev/null" % (fd, os.readlink(
                "/proc/%d/fd/%d" % (pid, fd)))


@pytest.mark.timeout_s(60)
def test_daemonize_ready_reload_stop(detached):
    """-d returns 0 once serving; -p beats the pidfile key; -s reload starts generation 2,
    -s stop ends it all and removes the pid file."""
    dt = detached
    keyfile = os.path.join(dt.tmp, "from-key.pid")
    conf, port, log = dt.config(daemon={"pidfile": keyfile})
    pidfile = os.path.join(dt.tmp, "p.pid")
    r = dt.run(["-d", "-p", pidfile, "-c", conf])
    assert r.returncode == 0, r
    # ready means ready: no retry, no wait
    assert H.echo_ok(port, H.payload(50000))
    assert re.search(r"generation 1 ready: 2 workers", read(log)), read(log)
    pid = dt.pid_in(pidfile)
    assert pid is not None, "no pid file %s after -d returned" % pidfile
    assert not os.path.exists(keyfile), "-p did not override the pidfile key"
    assert_detached_master(dt, pid, dt.launcher)
    workers = H.wait_for(lambda: len(H.children(pid)) == 2 and H.children(pid), 5,
                         "2 workers under %d" % pid)
    dt.track()

    at = len(read(log))
    r = dt.run(["-s", "reload", "-p", pidfile])
    assert r.returncode == 0, r
    wait_log(log, r"generation 2 ready: 2 workers", start=at)
    assert H.echo_ok(port, H.payload(50000))
    assert dt.pid_in(pidfile) == pid

    dt.track()
    r = dt.run(["-s", "stop", "-p", pidfile])
    assert r.returncode == 0, r
    assert dt.wait_gone(pid, 15), "the daemon still runs 15 s after -s stop"
    H.wait_for(lambda: not os.path.exists(pidfile), 5, "the pid file to be removed")
    for w in workers:
        assert dt.wait_gone(w, 5), "worker %d outlived its master" % w
    assert re.search(r"\[notice\] master: exiting", read(log)), read(log)[-2000:]
    assert H.port_refuses(port)


@pytest.mark.timeout_s(60)
def test_signal_uses_pidfile_key(detached):
    """Without -p, -d and -s use the pidfile key of the config given with -c;
    -s reopen reopens the log file, -s quit stops at once."""
    dt = detached
    pidfile = os.path.join(dt.tmp, "key.pid")
    conf, port, log = dt.config(daemon={"pidfile": pidfile})
    r = dt.run(["-d", "-c", conf])
    assert r.returncode == 0, r
    pid = dt.pid_in(pidfile)
    assert pid is not None and dt.ours_alive(pid)
    assert H.echo_ok(port, H.payload(1000))

    at = len(read(log))
    assert dt.run(["-s", "reload", "-c", conf]).returncode == 0
    wait_log(log, r"generation 2 ready", start=at)

    os.rename(log, log + ".1")
    assert dt.run(["-s", "reopen", "-c", conf]).returncode == 0
    H.wait_for(lambda: os.path.exists(log), 5, "a new log file after -s reopen")
    assert H.echo_ok(port, H.payload(1000))
    # the new file gets the lines from now on
    wait_log(log, r"close listener=echo", timeout=5)

    dt.track()
    assert dt.run(["-s", "quit", "-c", conf]).returncode == 0
    assert dt.wait_gone(pid, 10), "the daemon still runs 10 s after -s quit"
    H.wait_for(lambda: not os.path.exists(pidfile), 5, "the pid file to be removed")


def dead_pid():
    """The pid of a process that has just exited (and been reaped)."""
    p = subprocess.Popen(["/bin/true"])
    p.wait()
    return p.pid


def test_stale_pidfile_is_replaced(detached):
    dt = detached
    conf, port, _ = dt.config()
    pidfile = os.path.join(dt.tmp, "stale.pid")
    stale = dead_pid()
    with open(pidfile, "w") as f:
        f.write("%d\n" % stale)
    r = dt.run(["-d", "-p", pidfile, "-c", conf])
    assert r.returncode == 0, r
    pid = dt.pid_in(pidfile)
    assert pid is not None and pid != stale and dt.ours_alive(pid), (pid, stale)
    assert H.echo_ok(port, H.payload(1000))
    assert dt.run(["-s", "stop", "-p", pidfile]).returncode == 0
    assert dt.wait_gone(pid, 15)


@pytest.mark.parametrize("detach", [True, False], ids=["daemonize", "foreground"])
def test_running_instance_refuses_second_start(detached, detach):
    """The pid file of a running daemon (locked by its master): a second start exits 1 with
    `already running as pid N (pidfile PATH)`, the file is left alone, nothing more listens."""
    dt = detached
    conf, port, _ = dt.config()
    pidfile = os.path.join(dt.tmp, "live.pid")
    assert dt.run(["-d", "-p", pidfile, "-c", conf]).returncode == 0
    pid = dt.pid_in(pidfile)
    assert pid is not None and dt.ours_alive(pid)
    assert H.pidfile_lock_holder(pidfile) == pid, "the master does not hold the pid file's lock"
    # the workers neither hold the lock nor keep the file open
    workers = H.wait_for(lambda: len(H.children(pid)) == 2 and H.children(pid), 5,
                         "2 workers under %d" % pid)
    for w in workers:
        assert H.open_on(w, pidfile) == [], "worker %d has the pid file open" % w

    conf2, port2, _ = dt.config(name="second.conf")
    r = dt.run((["-d"] if detach else []) + ["-p", pidfile, "-c", conf2])
    assert r.returncode == 1, r
    want = "preforkd: already running as pid %d (pidfile %s)" % (pid, pidfile)
    assert want in r.stderr, "want %r in stderr:\n%s" % (want, r.stderr)
    assert read(pidfile) == "%d\n" % pid, "the pid file was touched"
    assert H.pidfile_lock_holder(pidfile) == pid
    assert H.port_refuses(port2)
    assert H.echo_ok(port, H.payload(1000))
    assert dt.run(["-s", "stop", "-p", pidfile]).returncode == 0
    assert dt.wait_gone(pid, 15)


def sleeper():
    """A live process that is no preforkd, as a reused pid would be."""
    return subprocess.Popen(["sleep", "120"], start_new_session=True)


@pytest.mark.parametrize("signame", ["stop", "quit", "reload"])
def test_signal_spares_unrelated_process(detached, signame):
    """`-s` on a pid file naming a live process that is no running preforkd master (no one
    holds the file's lock): exit 1 with `not running`, and that process is not signalled."""
    dt = detached
    pidfile = os.path.join(dt.tmp, "f.pid")
    other = sleeper()
    try:
        with open(pidfile, "w") as f:
            f.write("%d\n" % other.pid)
        r = dt.run(["-s", signame, "-p", pidfile])
        assert r.returncode == 1, r
        assert r.stderr.startswith("preforkd: -s %s: pidfile %s: not running" % (signame, pidfile)), \
            r.stderr
        assert other.poll() is None, "-s %s signalled pid %d (%s)" % (
            signame, other.pid, signal.Signals(-other.returncode).name
            if other.returncode < 0 else other.returncode)
        assert read(pidfile) == "%d\n" % other.pid
    finally:
        other.kill()
        other.wait()


def test_stale_pidfile_naming_live_process_is_taken_over(detached):
    """A leftover pid file whose pid now names an unrelated live process (pid reuse) and that
    no one locks: a fresh start takes it over, and -s then reaches the new master only."""
    dt = detached
    conf, port, _ = dt.config()
    pidfile = os.path.join(dt.tmp, "left.pid")
    other = sleeper()
    try:
        with open(pidfile, "w") as f:
            f.write("%d\n" % other.pid)
        r = dt.run(["-d", "-p", pidfile, "-c", conf])
        assert r.returncode == 0, r
        pid = dt.pid_in(pidfile)
        assert pid is not None and pid != other.pid and dt.ours_alive(pid), (pid, other.pid)
        assert H.pidfile_lock_holder(pidfile) == pid
        assert H.echo_ok(port, H.payload(1000))
        assert dt.run(["-s", "stop", "-p", pidfile]).returncode == 0
        assert dt.wait_gone(pid, 15)
        H.wait_for(lambda: not os.path.exists(pidfile), 5, "the pid file to be removed")
        assert other.poll() is None, "the unrelated process was signalled"
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("planted", ["pidfile", "pidfile.tmp"])
def test_planted_symlink_is_not_followed(detached, planted):
    """A symlink planted where the daemon writes (the pid file, or the temporary file that
    older versions wrote through) never makes it write to the link's target: at the pid file
    the start is refused naming the link; nothing is written through either."""
    dt = detached
    conf, port, _ = dt.config()
    pidfile = os.path.join(dt.tmp, "s.pid")
    target = os.path.join(dt.tmp, "precious")
    with open(target, "w") as f:
        f.write("precious\n")
    os.chmod(target, 0o600)
    link = pidfile if planted == "pidfile" else pidfile + ".tmp"
    os.symlink(target, link)
    r = dt.run(["-d", "-p", pidfile, "-c", conf])
    assert read(target) == "precious\n", "the link's target was written: %r" % read(target)
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert os.path.islink(link) and os.readlink(link) == target, "the link was replaced"
    if planted == "pidfile":
        assert r.returncode == 1, r
        want = "preforkd: pidfile %s: a symbolic link; refusing to follow it" % pidfile
        assert want in r.stderr, "want %r in stderr:\n%s" % (want, r.stderr)
        assert H.port_refuses(port)
        r = dt.run(["-s", "stop", "-p", pidfile])
        assert r.returncode == 1 and "symbolic link" in r.stderr, r
    else:
        assert r.returncode == 0, r
        pid = dt.pid_in(pidfile)
        assert pid is not None and dt.ours_alive(pid)
        assert dt.run(["-s", "stop", "-p", pidfile]).returncode == 0
        assert dt.wait_gone(pid, 15)


def test_signal_without_running_instance(detached):
    dt = detached
    conf, _, _ = dt.config()
    missing = os.path.join(dt.tmp, "none.pid")
    r = dt.run(["-s", "reload", "-p", missing])
    assert r.returncode == 1 and r.stderr.startswith("preforkd: "), r
    stale = os.path.join(dt.tmp, "stale.pid")
    with open(stale, "w") as f:
        f.write("%d\n" % dead_pid())
    r = dt.run(["-s", "reload", "-p", stale])
    assert r.returncode == 1 and r.stderr.startswith("preforkd: "), r
    # no pid file configured at all
    r = dt.run(["-s", "stop", "-c", conf])
    assert r.returncode == 1 and r.stderr.startswith("preforkd: "), r
    # an unknown signal name is a usage error
    r = dt.run(["-s", "explode", "-p", stale])
    assert r.returncode == 2 and "usage" in r.stderr.lower(), r


def test_daemonize_reports_startup_failure(detached):
    """-d with a port already taken: the launcher exits 1 with the bind error on its
    stderr, no pid file, nothing left running."""
    dt = detached
    port = H.free_port()
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        conf, _, _ = dt.config(port=port)
        pidfile = os.path.join(dt.tmp, "fail.pid")
        r = dt.run(["-d", "-p", pidfile, "-c", conf])
        assert r.returncode == 1, r
        assert re.search(r"%s:\d+: listen: listener echo: bind 127\.0\.0\.1:%d: Address "
                         r"already in use" % (re.escape(conf), port), r.stderr), r.stderr
        assert not os.path.exists(pidfile)
    finally:
        blocker.close()
