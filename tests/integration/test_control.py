"""The control socket ([daemon] control): every command and every error, with
real clients (socat, nc -U, preforkd -x), its bounds (clients at once, line
length, a silent client, a client that never reads), the synchronous reload
(through the socket and through preforkd -s reload), the socket file (mode
0600, removed at exit, a stale one replaced, a live one or another file
refused)."""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

import pfharness as H


def start(preforkd, daemon=None, listeners=None, **kw):
    """A daemon with its control socket in its own directory."""
    d = preforkd.new(daemon=daemon, listeners=listeners, **kw)
    d.sock = os.path.join(d.dir, "control.sock")
    d.daemon_keys.setdefault("control", d.sock)
    return d.start()


def ask(path, line, timeout=10.0):
    """Send one line, read the answer to EOF; return it as text."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            out += b
        return out.decode()
    finally:
        s.close()


def run(*argv, timeout=30, stdin=None):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout * H.SLOW,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)


def pfctl(d, command, timeout=30):
    """preforkd -c CONF -x COMMAND."""
    return run(H.PREFORKD, "-c", d.conf, "-x", command, timeout=timeout)


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip("%s not installed (make deps-test installs it)" % tool)


def table(text):
    """A text table as a list of dicts keyed by its header."""
    lines = text.rstrip("\n").split("\n")
    head = lines[0].split()
    return [dict(zip(head, re.split(r"\s{2,}", l.strip()))) for l in lines[1:]]


# --------------------------------------------------------------------------
# the commands, through real clients

def test_help_and_show_through_socat_and_nc(preforkd):
    need("socat")
    need("nc")
    d = start(preforkd)
    r = run("socat", "-", "UNIX-CONNECT:" + d.sock, stdin="help\n")
    assert r.returncode == 0, r
    for cmd in ("show info", "show stats json", "show backends", "show workers",
                "show clients [LISTENER] [N]",
                "set backend LISTENER ADDR ready|drain|maint", "set weight LISTENER ADDR N",
                "reload"):
        assert cmd in r.stdout, (cmd, r.stdout)
    r = run("nc", "-U", d.sock, stdin="show info\n")
    assert r.returncode == 0, r
    assert "pid: %d\n" % d.pid in r.stdout, r.stdout
    assert "generation: 1\n" in r.stdout, r.stdout
    assert "version: " in r.stdout and "uptime: " in r.stdout, r.stdout


def test_show_stats_workers_and_json(preforkd):
    d = start(preforkd, daemon={"workers": 2})
    for i in range(5):
        H.echo_ok(d.port, b"x" * 100)
    r = pfctl(d, "show stats")
    assert r.returncode == 0 and r.stderr == "", r
    rows = table(r.stdout.split("\n\n")[0])
    assert [row["LISTENER"] for row in rows] == ["echo"], r.stdout
    assert rows[0]["LISTEN"] == "127.0.0.1:%d" % d.port
    assert rows[0]["ACCEPTED"] == "5", r.stdout
    # every close counted once its connection ended: the table, and its reason line
    H.wait_for(lambda: re.search(r"^echo\s+client_eof\s+5$", pfctl(d, "show stats").stdout,
                                 re.M), 5 * H.SLOW, "5 closes by client_eof")
    r = pfctl(d, "show workers")
    assert r.returncode == 0, r
    rows = table(r.stdout)
    assert sorted(int(row["PID"]) for row in rows) == sorted(d.worker_pids()), r.stdout
    assert {row["GEN"] for row in rows} == {"1"}, r.stdout
    r = pfctl(d, "show stats json")
    assert r.returncode == 0, r
    v = json.loads(r.stdout)
    assert v["pid"] == d.pid and v["generation"] == 1, v
    assert [l["name"] for l in v["listeners"]] == ["echo"], v
    assert sorted(w["pid"] for w in v["workers"]) == sorted(d.worker_pids()), v
    assert set(v["listeners"][0]["closed"]) >= {"client_eof", "idle_timeout", "no_backend"}


def test_show_backends(preforkd, backends):
    b1, b2 = backends.echo(), backends.echo()
    d = start(preforkd, listeners={"web": H.proxy_listener([b1, b2])})
    r = pfctl(d, "show backends")
    assert r.returncode == 0, r
    rows = table(r.stdout)
    assert [(row["LISTENER"], row["BACKEND"]) for row in rows] == \
        [("web", b1.spec), ("web", b2.spec)], r.stdout
    assert {row["STATE"] for row in rows} == {"up"}, r.stdout
    v = json.loads(pfctl(d, "show stats json").stdout)
    assert [b["address"] for b in v["backends"]] == [b1.spec, b2.spec], v
    assert all(b["listener"] == "web" and b["state"] == "up" for b in v["backends"]), v


def test_set_backend_and_weight(preforkd, backends):
    """set answers ok (exit 0 through -x), and show backends shows what was set."""
    b1, b2 = backends.echo(), backends.echo()
    d = start(preforkd, listeners={"web": H.proxy_listener([b1, b2])})
    r = pfctl(d, "set backend web %s drain" % b1.spec)
    assert (r.returncode, r.stdout) == (0, "ok\n"), r
    assert ask(d.sock, "set backend web %s maint" % b2.spec) == "ok\n"
    assert ask(d.sock, "set weight web %s 7" % b2.spec) == "ok\n"
    rows = {row["BACKEND"]: row for row in table(pfctl(d, "show backends").stdout)}
    assert (rows[b1.spec]["STATE"], rows[b1.spec]["WHY"]) == ("drain", "operator"), rows
    assert (rows[b2.spec]["STATE"], rows[b2.spec]["WEIGHT"]) == ("maint", "7"), rows
    assert ask(d.sock, "set backend web %s ready" % b1.spec) == "ok\n"
    rows = {row["BACKEND"]: row for row in table(pfctl(d, "show backends").stdout)}
    assert (rows[b1.spec]["STATE"], rows[b1.spec]["WHY"]) == ("up", "-"), rows
    d.wait_log(r"listener web: backend %s set to drain by the operator" % re.escape(b1.spec))


# --------------------------------------------------------------------------
# errors: one line starting with "error: ", exit status 1 for preforkd -x

@pytest.mark.parametrize("line, message", [
    ("bogus", 'error: unknown command "bogus" (try help)'),
    ("", "error: empty command (try help)"),
    ("show", "error: show: expected info, stats, stats json, backends, workers or clients"),
    ("show clients 0", 'error: show clients: "0": expected a number from 1 to 1000'),
    ("show clients echo 1001", 'error: show clients: "1001": expected a number from 1 to 1000'),
    ("show clients echo 5 more", "error: usage: show clients [LISTENER] [N]"),
    ("show stats xml", 'error: show stats: unexpected "xml" (expected json or nothing)'),
    ("help me", "error: help: takes no argument"),
    ("set backend web", "error: usage: set backend LISTENER ADDR ready|drain|maint"),
    ("set backend web 127.0.0.1:1 up",
     'error: set backend: state "up": expected ready, drain or maint'),
    ("set weight web 127.0.0.1:1 300",
     'error: set weight: "300": expected a number from 1 to 256'),
    ("show\x01info", "error: byte 0x01 at column 5: commands are printable ASCII"),
])
def test_bad_commands(preforkd, line, message):
    d = start(preforkd)
    assert ask(d.sock, line) == message + "\n"


def test_unknown_listener_and_backend(preforkd, backends):
    b1 = backends.echo()
    d = start(preforkd, listeners={"web": H.proxy_listener([b1])})
    for cmd, want in [
        ("set backend nosuch %s drain" % b1.spec, r"^error: .*\bnosuch\b"),
        ("set backend web 127.0.0.1:1 drain", r"^error: .*127\.0\.0\.1:1\b"),
        ("set weight nosuch %s 2" % b1.spec, r"^error: .*\bnosuch\b"),
        ("set weight web 127.0.0.1:1 2", r"^error: .*127\.0\.0\.1:1\b"),
    ]:
        r = pfctl(d, cmd)
        assert r.returncode == 1, (cmd, r)
        assert re.search(want, r.stdout) and r.stdout.count("\n") == 1, (cmd, r.stdout)
    r = pfctl(d, "bogus")
    assert r.returncode == 1 and r.stdout.startswith("error: unknown command"), r


def connect_from(port, source):
    """A connection to 127.0.0.1:port from address source, past the echo of a byte
    (so a worker has accepted and counted it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5 * H.SLOW)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    return s


def test_show_clients(preforkd):
    """show clients: a listener with max_conn_per_client lists the clients that hold
    connections, counted across the workers, most open first, N rows at most; a
    listener without per-client limits keeps no table (the header alone); an
    unknown listener is an error."""
    d = start(preforkd, daemon={"workers": 2}, listeners={
        "plain": {},
        "lim": {"max_conn_per_client": 10},
    })
    head = "LISTENER  CLIENT  OPEN  RECENT\n"
    assert ask(d.sock, "show clients") == head
    held = [connect_from(d.ports["lim"], "127.0.0.2") for _ in range(3)]
    held.append(connect_from(d.ports["lim"], "127.0.0.3"))
    held.append(connect_from(d.ports["plain"], "127.0.0.4"))
    try:
        def rows(cmd="show clients"):
            r = pfctl(d, cmd)
            assert r.returncode == 0 and r.stdout.startswith("LISTENER  CLIENT "), r
            return [(row["LISTENER"], row["CLIENT"], int(row["OPEN"]))
                    for row in table(r.stdout)]
        want = [("lim", "127.0.0.2", 3), ("lim", "127.0.0.3", 1)]
        H.wait_for(lambda: rows() == want, 5 * H.SLOW, "show clients: %r" % (want,))
        assert rows("show clients lim") == want
        assert rows("show clients 1") == want[:1]
        assert rows("show clients lim 1") == want[:1]
        assert ask(d.sock, "show clients plain") == head, "no per-client limit: no table"
        r = pfctl(d, "show clients nosuch")
        assert r.returncode == 1 and r.stdout == "error: no listener nosuch\n", r
    finally:
        for s in held:
            s.close()
    H.wait_for(lambda: all(n == 0 for _, _, n in rows()), 5 * H.SLOW,
               "the clients' connections given back")


def test_long_line_is_refused(preforkd):
    d = start(preforkd)
    assert ask(d.sock, "help" + " " * 1020) .startswith("help  "), "1024 bytes are a line"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5 * H.SLOW)
    s.connect(d.sock)
    try:
        s.sendall(b"x" * 1025)
        got = H.read_until_eof(s, timeout=5 * H.SLOW)
    finally:
        s.close()
    assert got == b"error: line too long (at most 1024 bytes)\n", got
    assert ask(d.sock, "show info").startswith("pid: "), "the master still answers"


def test_too_many_clients(preforkd):
    d = start(preforkd)
    held = []
    try:
        for i in range(16):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.sock)
            held.append(s)
        # the 17th is told at once, and closed
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5 * H.SLOW)
        s.connect(d.sock)
        try:
            got = H.read_until_eof(s, timeout=5 * H.SLOW)
        except ConnectionResetError:
            got = b"(reset)"
        s.close()
        assert got == b"error: too many control clients at once; try again\n", got
    finally:
        for s in held:
            s.close()
    H.wait_for(lambda: ask(d.sock, "show info").startswith("pid: "), 5 * H.SLOW,
               "a new client served once the 16 left")


@pytest.mark.timeout_s(60)
def test_silent_and_nonreading_clients_are_cut_off(preforkd):
    """A client that says nothing gets an error after 10 s; one that never reads a large
    answer is closed 10 s after the socket filled; meanwhile the master answers others."""
    # 24 x 64 backends: show stats json is far larger than a Unix socket's buffers
    ls = {"big%d" % j: {"mode": "proxy",
                        "backend": ["127.0.0.1:%d" % (20000 + 64 * j + i) for i in range(64)]}
          for j in range(24)}
    d = start(preforkd, daemon={"workers": 1}, listeners=ls)
    full = len(ask(d.sock, "show stats json", timeout=20 * H.SLOW))
    assert full > 1 << 19, full
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(d.sock)
    lazy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lazy.connect(d.sock)
    t0 = time.monotonic()
    lazy.sendall(b"show stats json\n")
    try:
        # the master serves others meanwhile, promptly
        for i in range(5):
            t = time.monotonic()
            assert ask(d.sock, "show info", timeout=2 * H.SLOW).startswith("pid: ")
            assert time.monotonic() - t < 2 * H.SLOW
        silent.settimeout(15 * H.SLOW)
        got = H.read_until_eof(silent, timeout=15 * H.SLOW)
        waited = time.monotonic() - t0
        assert got == b"error: no command within 10 s\n", got
        assert 9 <= waited < 15 * H.SLOW, waited
        d.wait_log(r"\[warning\] master: control: a client read none of its answer for 10 s; "
                   r"closing it", timeout=15 * H.SLOW)
        # what it reads now is what the socket held: less than the answer, then the end
        lazy.settimeout(5 * H.SLOW)
        got = b""
        try:
            got = H.read_until_eof(lazy, timeout=5 * H.SLOW)
        except ConnectionResetError:
            pass
        assert len(got) < full, (len(got), full)
    finally:
        silent.close()
        lazy.close()
    assert ask(d.sock, "show info").startswith("pid: ")


# --------------------------------------------------------------------------
# synchronous reload

def test_reload_answers_when_the_generation_is_ready(preforkd):
    d = start(preforkd, daemon={"workers": 2})
    d.daemon_keys["workers"] = 3
    d.write_config()
    got = ask(d.sock, "reload", timeout=30 * H.SLOW)
    assert got == "ok generation 2\n", got
    # answered only once generation 2 was ready: the master logged it before
    assert re.search(r"generation 2 ready: 3 workers", d.log()), d.log_tail()
    r = run(H.PREFORKD, "-c", d.conf, "-s", "reload")
    assert r.returncode == 0 and r.stdout == "ok generation 3\n", r
    assert re.search(r"generation 3 ready", d.log())
    r = pfctl(d, "reload")
    assert r.returncode == 0 and r.stdout == "ok generation 4\n", r


def test_reload_failed_gives_every_error(preforkd):
    d = start(preforkd)
    d.daemon_keys["workers"] = "many"
    d.daemon_keys["bogus"] = "1"
    d.write_config()
    text = d.config_text().split("\n")
    wline = text.index("workers = many") + 1
    bline = text.index("bogus = 1") + 1
    got = ask(d.sock, "reload", timeout=30 * H.SLOW)
    assert got == ("error: reload failed\n"
                   "%s:%d: workers: expected auto or a number from 1 to 256\n"
                   "%s:%d: bogus: unknown key in [daemon]\n" % (d.conf, wline, d.conf, bline)), got
    assert ask(d.sock, "show info").count("generation: 1\n") == 1
    # the command-line clients read the file first, and stop at its errors
    r = run(H.PREFORKD, "-c", d.conf, "-s", "reload")
    assert r.returncode == 1 and r.stdout == "", r
    assert "%s:%d: bogus: unknown key in [daemon]" % (d.conf, bline) in r.stderr, r
    r = pfctl(d, "show info")
    assert r.returncode == 2 and r.stdout == "", r
    assert "bogus: unknown key" in r.stderr and \
        "preforkd: -x: the configuration has errors; its control socket is unknown" \
        in r.stderr, r


def test_s_reload_fails_with_the_masters_errors(preforkd):
    """A configuration that parses but cannot be applied (its new listener's port is
    taken): preforkd -s reload prints the master's error line and exits 1."""
    d = start(preforkd)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        d.set_listener("more", listen="127.0.0.1:%d" % busy.getsockname()[1])
        d.write_config()
        r = run(H.PREFORKD, "-c", d.conf, "-s", "reload")
        assert r.returncode == 1, r
        assert r.stdout.startswith("error: reload failed\n"), r
        assert re.search(r"^%s:\d+: listen: .*Address already in use" % re.escape(d.conf),
                         r.stdout, re.M), r.stdout
    finally:
        busy.close()


def test_reload_requests_at_once_share_the_outcome(preforkd):
    """Three reload requests reach the master together (it is stopped while they
    connect and send).  The first one read runs a reload at once; the other two came
    after that reload read the file, so it cannot answer them (the file may have
    changed since): they share one more reload, queued until the first's generation
    is ready."""
    d = start(preforkd)
    socks = []
    os.kill(d.pid, signal.SIGSTOP)
    try:
        for i in range(3):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30 * H.SLOW)
            s.connect(d.sock)
            s.sendall(b"reload\n")
            socks.append(s)
    finally:
        os.kill(d.pid, signal.SIGCONT)
    got = [H.read_until_eof(s, timeout=30 * H.SLOW) for s in socks]
    for s in socks:
        s.close()
    assert sorted(got) == [b"ok generation 2\n", b"ok generation 3\n",
                           b"ok generation 3\n"], got
    # two reloads ran, and no third was queued behind them
    info = ask(d.sock, "show info")
    assert "generation: 3\n" in info and "reloads ok: 2\n" in info, info
    assert len(re.findall(r"\] master: reloading ", d.log())) == 2, d.log_tail()


def test_s_reload_without_control_socket_signals(preforkd):
    """control = off: -s reload signals the master as before; -x has nothing to talk to."""
    d = preforkd.new(daemon={"control": "off"})
    d.daemon_keys["pidfile"] = os.path.join(d.dir, "p.pid")
    d.start()
    start_at = d.drain_notes()
    r = run(H.PREFORKD, "-c", d.conf, "-s", "reload")
    assert r.returncode == 0 and r.stdout == "", r
    d.wait_note(lambda f: f.get("READY") == "1", 10 * H.SLOW, "READY=1 after the signal",
                start=start_at)
    r = pfctl(d, "show info")
    assert r.returncode == 2 and "no control socket" in r.stderr, r


# --------------------------------------------------------------------------
# the socket file

def test_socket_mode_and_removal(preforkd):
    d = start(preforkd)
    st = os.lstat(d.sock)
    assert stat.S_ISSOCK(st.st_mode), st
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert st.st_uid == os.geteuid()
    assert d.stop() == 0
    assert not os.path.exists(d.sock), "the socket file is removed at exit"


def unix_inodes(path):
    """Inodes of the sockets named path (/proc/net/unix): the listening one and those
    it accepted."""
    out = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == path:
                out.add(int(fields[6]))
    return out


def test_workers_hold_no_control_socket(preforkd):
    """Workers forked while a client waits for its reload hold neither the control
    socket nor that client's."""
    d = start(preforkd)
    held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    held.connect(d.sock)
    try:
        assert ask(d.sock, "reload", timeout=30 * H.SLOW) == "ok generation 2\n"
        ours = unix_inodes(d.sock)
        # the listening socket and the held client's at least (the reload client's
        # may be closing meanwhile)
        assert len(ours & set(H.socket_inodes(d.pid))) >= 2, "the master holds them"
        gen2 = [pid for pid, (_, g) in d.started_workers().items() if g == 2]
        assert gen2
        for pid in gen2:
            assert not ours & set(H.socket_inodes(pid)), "worker %d holds one" % pid
    finally:
        held.close()


def test_stale_socket_is_replaced(preforkd):
    d = preforkd.new()
    sock = os.path.join(d.dir, "control.sock")
    d.daemon_keys["control"] = sock
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.close()               # the file stays, nobody listens: stale
    d.start()
    assert ask(sock, "show info").startswith("pid: %d\n" % d.pid)


def test_live_socket_or_other_file_is_refused(preforkd):
    d = preforkd.new()
    sock = os.path.join(d.dir, "control.sock")
    d.daemon_keys["control"] = sock
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(sock)
    s.listen(1)
    try:
        d._spawn()
        assert d.wait_exit(10 * H.SLOW) == 1
        assert "preforkd: control socket %s: a process listens on it (another preforkd?)" \
            % sock in d.log(), d.log_tail()
    finally:
        s.close()
    assert os.path.exists(sock), "a live socket is left alone"
    os.unlink(sock)
    with open(sock, "w") as f:
        f.write("data\n")
    d._spawn()
    assert d.wait_exit(10 * H.SLOW) == 1
    assert "control socket %s: the file exists and is not a socket" % sock in d.log()
    with open(sock) as f:
        assert f.read() == "data\n"


def test_x_cannot_connect_exits_2(preforkd, tmp_dir):
    conf = os.path.join(tmp_dir, "p.conf")
    sock = os.path.join(tmp_dir, "control.sock")
    with open(conf, "w") as f:
        f.write(H.render_config({"control": sock}, {"e": {"listen": "127.0.0.1:1"}}))
    r = run(H.PREFORKD, "-c", conf, "-x", "show info")
    assert r.returncode == 2, r
    assert r.stdout == "" and re.search(r"^preforkd: -x: control socket %s: No such file"
                                        % re.escape(sock), r.stderr), r
    r = run(H.PREFORKD, "-c", conf, "-s", "reload")
    assert r.returncode == 1 and "control socket %s" % sock in r.stderr, r


def test_control_auto_under_runtime_directory(preforkd):
    """No control key: auto, $RUNTIME_DIRECTORY/control.sock, as under the shipped unit."""
    d = preforkd.new()
    d.extra_env["RUNTIME_DIRECTORY"] = d.dir
    d.start()
    sock = os.path.join(d.dir, "control.sock")
    assert stat.S_ISSOCK(os.lstat(sock).st_mode)
    env = dict(os.environ, RUNTIME_DIRECTORY=d.dir)
    r = subprocess.run([H.PREFORKD, "-c", d.conf, "-x", "show info"], capture_output=True,
                       text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "pid: %d\n" % d.pid in r.stdout, r


def test_reload_changing_control_needs_a_restart(preforkd):
    d = start(preforkd)
    d.daemon_keys["control"] = os.path.join(d.dir, "other.sock")
    d.write_config()
    assert ask(d.sock, "reload", timeout=30 * H.SLOW) == "ok generation 2\n"
    d.wait_log(r"\[warning\] master: user, group, pidfile and control need a restart")
    assert not os.path.exists(os.path.join(d.dir, "other.sock"))
    assert ask(d.sock, "show info").startswith("pid: ")


def test_reload_while_stopping_is_refused(preforkd):
    """During a graceful stop (a connection still open) the socket still answers, and a
    reload is refused at once with its reason."""
    d = start(preforkd)
    c = H.connect(d.port)
    try:
        H.exchange(c, b"hold")
        at = d.log_size()
        d.signal(signal.SIGTERM)
        d.wait_log(r"shutting down", start=at)
        assert ask(d.sock, "reload") == "error: reload failed\nthe master is stopping\n"
        assert ask(d.sock, "show info").startswith("pid: %d\n" % d.pid)
    finally:
        c.close()
    assert d.wait_exit(15 * H.SLOW) == 0
    assert not os.path.exists(d.sock)


@pytest.mark.parametrize("argv, message", [
    (["-x", "help", "-s", "reload"], "preforkd: -s: -x goes without -s and -t"),
    (["-x", "help", "-t"], "preforkd: -t: -x goes without -s and -t"),
    (["-x", ""], "preforkd: -x : expected one command line"),
    (["-x", "show\ninfo"], "expected one command line"),
])
def test_x_usage_errors(binaries, tmp_dir, argv, message):
    r = run(H.PREFORKD, "-c", os.path.join(tmp_dir, "none.conf"), *argv)
    assert r.returncode == 2, r
    assert message in r.stderr, r


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_socket_owned_by_user(preforkd, tmp_dir):
    """Started as root with user = nobody: the socket is nobody's, mode 0600, made before
    the drop; root's client still talks to it, and the master (as nobody) removes it at
    exit from a directory of nobody's, as RuntimeDirectory= makes one."""
    import pwd
    pw = pwd.getpwnam("nobody")
    os.chmod(tmp_dir, 0o711)
    run_dir = os.path.join(tmp_dir, "run")
    os.mkdir(run_dir, 0o700)
    os.chown(run_dir, pw.pw_uid, pw.pw_gid)
    sock = os.path.join(run_dir, "control.sock")
    d = preforkd.start(daemon={"user": "nobody", "control": sock}, notify_abstract=True)
    st = os.lstat(sock)
    assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), st
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
    assert ask(sock, "show info").startswith("pid: %d\n" % d.pid)
    assert d.stop() == 0
    assert not os.path.exists(sock)
