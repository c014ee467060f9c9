"""Proxy mode: balancing (roundrobin with weights, leastconn, source, random, backup),
failover (passive marking, active checks from the master), reload under proxied load."""

import collections
import re
import socket
import threading
import time

import pytest

import pfharness as H


def idents(backends, n):
    """n echo backends that introduce themselves: b"B0\\n", b"B1\\n", ..."""
    return [backends.echo(b"B%d\n" % i) for i in range(n)]


def open_via(port, src=None, timeout=5.0):
    """A connection through the proxy (from source address src if given) on which the
    backend introduced itself and echoed a probe: (socket, ident)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if src is not None:
            s.bind((src, 0))
        s.settimeout(timeout * H.SLOW)
        s.connect(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ident = H.read_line(s, timeout, 64, "ident line").strip().decode()
        probe = b"probe %d" % s.getsockname()[1]
        assert H.exchange(s, probe, timeout=timeout) == probe
    except BaseException:
        s.close()
        raise
    return s, ident


def reach(port, src=None, timeout=5.0):
    """Which backend a new connection reaches (its ident); the connection is closed."""
    s, ident = open_via(port, src=src, timeout=timeout)
    s.close()
    return ident


def summaries(d, listener, n, timeout=10.0):
    """Wait until the log holds n summaries of listener (the last connection closed by
    the client may still be in flight); return them."""
    def got():
        lines = [f for f in H.close_lines(d) if f["listener"] == listener]
        if len(lines) > n:
            raise H.HarnessError("%d summaries of %s, expected %d" % (len(lines), listener, n))
        return lines if len(lines) == n else None
    return H.wait_for(got, timeout, "%d summaries of listener %s" % (n, listener))


def wait_closed(d, socks):
    """Close socks and wait until the daemon logged their summaries (so its connection
    counts have dropped)."""
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    for p in ports:
        H.wait_close_line(d, p)


# --------------------------------------------------------------------------
# 4. balancing

def test_roundrobin_weights(backends, preforkd):
    """roundrobin, weights 3:1:1, one worker: 50 sequential connections are split exactly
    30:10:10."""
    b = idents(backends, 3)
    d = preforkd.start(daemon={"workers": 1}, listeners={"rr": H.proxy_listener(
        [b[0].spec + " weight=3", b[1].spec + " weight=1", b[2]], balance="roundrobin")})
    seq = [reach(d.port) for _ in range(50)]
    print("".join(x[1] for x in seq))
    assert collections.Counter(seq) == {"B0": 30, "B1": 10, "B2": 10}, collections.Counter(seq)
    assert [x.accepted for x in b] == [30, 10, 10]


def test_leastconn(backends, preforkd):
    """leastconn, one worker: held connections spread 2:2:2; after both connections of
    one backend close, the next two go to it; then three more go one to each; with
    loads 0/3/1 the next goes to the idle one, and the one after not to the loaded one."""
    b = idents(backends, 3)
    d = preforkd.start(daemon={"workers": 1}, listeners={"lc": H.proxy_listener(
        b, balance="leastconn")})
    held = []
    try:
        for _ in range(6):
            held.append(open_via(d.port))
        per = collections.Counter(i for _, i in held)
        assert per == {"B0": 2, "B1": 2, "B2": 2}, per
        # empty B1
        gone = [s for s, i in held if i == "B1"]
        held = [(s, i) for s, i in held if i != "B1"]
        wait_closed(d, gone)
        new = [open_via(d.port) for _ in range(2)]
        held += new
        assert [i for _, i in new] == ["B1", "B1"], [i for _, i in new]
        # all at 2 again: the next three go one to each
        new = [open_via(d.port) for _ in range(3)]
        held += new
        assert sorted(i for _, i in new) == ["B0", "B1", "B2"], [i for _, i in new]
        # 3/3/3 now; take B0 down to 0 and B2 to 1
        gone = [s for s, i in held if i == "B0"]
        held = [(s, i) for s, i in held if i != "B0"]
        wait_closed(d, gone)
        gone = [s for s, i in held if i == "B2"][:2]
        held = [(s, i) for s, i in held if s not in gone]
        wait_closed(d, gone)
        # now B0=0, B1=3, B2=1
        new = [open_via(d.port) for _ in range(2)]
        held += new
        assert [i for _, i in new] == ["B0", "B2"] or [i for _, i in new] == ["B0", "B0"], \
            "B0=0 B1=3 B2=1 gave %r" % [i for _, i in new]
    finally:
        for s, _ in held:
            s.close()


def test_source_hash(backends, preforkd):
    """source: one client IP always reaches the same backend whatever its port (and
    whichever worker accepts); 29 client IPs use more than one backend."""
    b = idents(backends, 3)
    d = preforkd.start(daemon={"workers": 2}, listeners={"src": H.proxy_listener(
        b, balance="source")})
    seen = [reach(d.port, src="127.0.0.5") for _ in range(12)]
    assert len(set(seen)) == 1, "127.0.0.5 reached %r" % collections.Counter(seen)
    per_ip = {}
    for i in range(2, 31):
        ip = "127.0.0.%d" % i
        got = {reach(d.port, src=ip) for _ in range(3)}
        assert len(got) == 1, "%s reached %r" % (ip, got)
        per_ip[ip] = got.pop()
    used = collections.Counter(per_ip.values())
    print(used)
    assert len(used) > 1, "29 client IPs all went to %r" % used
    assert per_ip["127.0.0.5"] == seen[0]


def test_random(backends, preforkd):
    """random: 60 connections, none fails, every backend used."""
    b = idents(backends, 3)
    d = preforkd.start(daemon={"workers": 2}, listeners={"rnd": H.proxy_listener(
        b, balance="random")})
    got = collections.Counter(reach(d.port) for _ in range(60))
    print(got)
    assert sum(got.values()) == 60
    assert set(got) == {"B0", "B1", "B2"}, got


def test_backup(backends, preforkd):
    """A backup backend gets nothing while a primary is up, and everything once the
    primaries refuse connections (no client-visible error)."""
    a, bb, k = backends.echo(b"A\n"), backends.echo(b"B\n"), backends.echo(b"K\n")
    d = preforkd.start(daemon={"workers": 2}, listeners={"bk": H.proxy_listener(
        [a, bb, k.spec + " backup"], retries=2)})
    got = collections.Counter(reach(d.port) for _ in range(20))
    assert set(got) == {"A", "B"} and k.accepted == 0, got
    summaries(d, "bk", 20)      # all closed: stopping A and B cuts no connection short
    a.stop()
    bb.stop()
    assert H.port_refuses(a.port) and H.port_refuses(bb.port)
    got = collections.Counter(reach(d.port) for _ in range(20))
    assert got == {"K": 20}, got
    bad = [f for f in summaries(d, "bk", 40) if f["reason"] != "client_eof"]
    assert not bad, bad


# --------------------------------------------------------------------------
# 5. failover

def test_passive_failover_refused_backend(backends, preforkd):
    """One of two backends refuses connections: with retries = 2, 50 connections all
    succeed on the other, and the refused one is marked down (passive)."""
    good = backends.echo(b"G\n")
    dead = H.free_port()        # nobody listens: refused
    assert H.port_refuses(dead)
    d = preforkd.start(daemon={"workers": 2}, listeners={"pf": H.proxy_listener(
        [dead, good], retries=2, max_fails=3, fail_timeout="10s")})
    got = collections.Counter(reach(d.port) for _ in range(50))
    assert got == {"G": 50}, got
    d.wait_log(r"\[warning\] worker \d+ gen 1: listener pf: backend 127\.0\.0\.1:%d marked "
               r"down for 10000 ms after 3 failed connects" % dead)
    lines = summaries(d, "pf", 50)
    assert all(f["backend"] == good.spec and f["reason"] == "client_eof" for f in lines), \
        [f for f in lines if f["backend"] != good.spec][:3]
    # once marked down in both workers, the dead one is not even tried: the log shows
    # at most max_fails (3) failed connects per worker, i.e. one marking line each
    marks = re.findall(r"backend 127\.0\.0\.1:%d marked down" % dead, d.log())
    assert 1 <= len(marks) <= 2, marks


def test_connect_failed_then_no_backend(preforkd):
    """The only backend refuses: the first client is closed with reason connect_failed
    (and the backend marked down, max_fails = 1); the next ones at once with reason
    no_backend and a warning (at most one a second)."""
    dead = H.free_port()
    d = preforkd.start(daemon={"workers": 1}, listeners={"nb": H.proxy_listener(
        [dead], retries=0, max_fails=1, fail_timeout="30s")})
    ports = []
    for _ in range(4):
        with H.connect(d.port) as c:
            ports.append(c.getsockname()[1])
            took = H.wait_closed_by_peer(c, 5)
            assert took < 1.0, "closed after %.2f s" % took
    first = H.wait_close_line(d, ports[0])
    assert first["reason"] == "connect_failed" and first["backend"] == "127.0.0.1:%d" % dead, \
        first
    for p in ports[1:]:
        f = H.wait_close_line(d, p)
        assert f["reason"] == "no_backend" and f["backend"] == "-", f
    d.wait_log(r"listener nb: backend 127\.0\.0\.1:%d marked down for 30000 ms after 1 "
               r"failed connects" % dead)
    warn = re.findall(r"\[warning\] worker 0 gen 1: listener nb: no backend up; closing clients",
                      d.log())
    assert len(warn) == 1, warn


@pytest.mark.timeout_s(60)
def test_active_checks_down_and_up(backends, preforkd):
    """check_interval = 200ms, fall = 2: a backend killed mid-test is logged "is down" and
    taken out of rotation (retries = 0 and passive marking off, so a pick of it would
    show); restarted on the same port it is logged "is up" and used again."""
    a, b = backends.echo(b"A\n"), backends.echo(b"B\n")
    d = preforkd.start(daemon={"workers": 2}, listeners={"ac": H.proxy_listener(
        [a, b], retries=0, max_fails=0, check_interval="200ms", check_timeout="1s",
        fall=2, rise=2)})
    got = collections.Counter(reach(d.port) for _ in range(10))
    assert set(got) == {"A", "B"}, got
    summaries(d, "ac", 10)      # all closed: stopping B cuts no connection short
    at = d.log_size()
    b.stop()
    t0 = time.monotonic()
    d.wait_log(r"\[warning\] master: listener ac: backend 127\.0\.0\.1:%d is down "
               r"\(2 checks failed, last: [^)]+\)" % b.port, timeout=5, start=at)
    print("marked down %.2f s after it stopped" % (time.monotonic() - t0))
    got = collections.Counter(reach(d.port) for _ in range(20))
    assert got == {"A": 20}, got
    at = d.log_size()
    b.start()
    d.wait_log(r"\[notice\] master: listener ac: backend 127\.0\.0\.1:%d is up "
               r"\(2 checks passed\)" % b.port, timeout=5, start=at)
    got = collections.Counter(reach(d.port) for _ in range(20))
    assert got.get("B", 0) >= 5 and got.get("A", 0) >= 5, got
    bad = [f for f in summaries(d, "ac", 50) if f["reason"] != "client_eof"]
    assert not bad, bad[:5]


def test_reload_restarts_health_state(backends, preforkd):
    """Health state restarts on reload: a backend checked down before SIGHUP starts up
    in the new generation and is checked down again; meanwhile the one that is up serves
    every connection made after the new "is down"."""
    a = backends.echo(b"A\n")
    dead = H.free_port()
    d = preforkd.start(daemon={"workers": 2}, listeners={"hs": H.proxy_listener(
        [a, dead], retries=0, max_fails=0, check_interval="200ms", check_timeout="1s",
        fall=2, rise=2)})
    down = r"master: listener hs: backend 127\.0\.0\.1:%d is down" % dead
    d.wait_log(down, timeout=5)
    assert collections.Counter(reach(d.port) for _ in range(10)) == {"A": 10}
    at = d.log_size()
    d.reload()
    d.wait_log(down, timeout=5, start=at)
    assert len(re.findall(down, d.log())) == 2
    assert collections.Counter(reach(d.port) for _ in range(10)) == {"A": 10}
    assert "is up" not in d.log()


def worker_sockets_to(d, port):
    """Sockets of d's workers connected to 127.0.0.1:port (pid, local port)."""
    rows = {inode: lport for lport, rport, state, inode in H.tcp_table()
            if rport == port and inode}
    out = []
    for w in d.worker_pids():
        for ino in H.socket_inodes(w):
            if ino in rows:
                out.append((w, rows[ino]))
    return out


@pytest.mark.timeout_s(45)
def test_health_checks_one_per_interval(backends, preforkd):
    """workers = 4, check_interval = 500ms: the backend sees one check per interval (not
    one per worker), none carrying data, and no worker holds a connection to it
    meanwhile (the workers' connection counts stay 0).

    "One per interval" is what the master's timer guarantees, not a count in a
    wall-clock window (which a busy machine stretches either way): a repeating libev
    timer is due `interval` after its last due time (or at once when late), never
    earlier, and it starts once the master runs, after `launched`.  So check k
    (k = 0, 1, ...) reaches the backend no earlier than launched + k * interval;
    checks from each of 4 workers would break that by the third or fourth."""
    interval = 0.5
    b = backends.echo()
    launched = time.monotonic()
    d = preforkd.start(daemon={"workers": 4}, listeners={"hc": H.proxy_listener(
        [b], check_interval="500ms", check_timeout="1s")})
    d.wait_workers(4)
    held = []

    def six_checks():
        # watched all along: no worker connects to the backend
        held.extend(worker_sockets_to(d, b.port))
        return len(b.conns) >= 6
    H.wait_for(six_checks, 15, "six check connections", interval=0.02)
    checks = list(b.conns)
    # every check ends by itself: wait for them to close
    H.wait_for(lambda: all(c.closed for c in checks), 5, "the check connections to close")
    at = sorted(c.t_accept - launched for c in checks)
    print("check connections at %r s after the launch" % [round(t, 3) for t in at])
    assert not held, "workers held connections to the backend: %r" % held[:5]
    assert all(c.nin == 0 for c in checks), "a check connection carried data"
    early = [(k, round(t, 3)) for k, t in enumerate(at) if t < k * interval]
    assert not early, "checks ahead of one per %.1f s (check k at t < k * interval): %r; " \
        "all at %r" % (interval, early, [round(t, 3) for t in at])
    status = d.status()
    assert status and "0 connections (0/0/0/0)" in status, status
    assert not H.close_lines(d), "the workers logged connections: %r" % H.close_lines(d)[:3]


@pytest.mark.timeout_s(45)
def test_health_checks_come_from_master(backends, preforkd):
    """With check_send/check_expect a check waits for the answer (check_timeout 5s, ample
    time to look), so its socket can be traced: every check connection the backend gets
    belongs to the master, none to a worker."""
    started = threading.Event()
    daemon = {}

    def who(sock):
        """The process of the daemon holding the other end of sock."""
        peer_port, my_port = sock.getpeername()[1], sock.getsockname()[1]
        ino = None
        for lport, rport, state, inode in H.tcp_table():
            if lport == peer_port and rport == my_port and inode:
                ino = inode
        if ino is None:
            return "no open socket on the other end"
        d = daemon["d"]
        for pid in [d.pid] + d.worker_pids():
            if ino in H.socket_inodes(pid):
                return pid
        return "socket inode %d held by none of the daemon's processes" % ino

    def checker(s, rec):
        data = b""
        while not data.endswith(b"\n"):
            ch = s.recv(100)
            if not ch:
                break
            data += ch
        rec["data"] = data
        started.wait(10 * H.SLOW)       # the checks may begin before start() returns
        rec["owner"] = who(s)
        s.sendall(b"+PONG\r\n")
        s.close()
    b = backends.thread(checker)
    try:
        d = preforkd.start(daemon={"workers": 4}, listeners={"hc": H.proxy_listener(
            [b], check_interval="200ms", check_timeout="5s", check_send=r"PING\r\n",
            check_expect="+PONG")})
        daemon["d"] = d
    finally:
        started.set()
    d.wait_workers(4)
    H.wait_for(lambda: len([r for r in b.records if "owner" in r]) >= 5, 10,
               "five answered checks")
    b.check_errors()
    recs = [r for r in b.records if "owner" in r]
    assert all(r["data"] == b"PING\r\n" for r in recs), [r["data"] for r in recs]
    owners = collections.Counter(r["owner"] for r in recs)
    assert owners == {d.pid: len(recs)}, "check connections held by %r (master %d, workers %r)" \
        % (owners, d.pid, d.worker_pids())
    assert "is down" not in d.log()


# --------------------------------------------------------------------------
# 9. reload under proxied load

@pytest.mark.timeout_s(90)
def test_reload_changes_backends_under_load(backends, preforkd, pfload_bin):
    """pfload churn through the proxy while SIGHUP switches the backends from A,B to C,D:
    no failed connect, reset, early EOF or mismatch; a connection held across the reload
    keeps working on its old backend; every connection the new generation accepted went
    to C or D, every one of the old generation to A or B."""
    a, b, c, dd = (backends.echo() for _ in range(4))
    d = preforkd.start(daemon={"workers": 2, "drain_timeout": "20s"},
                       listeners={"rl": H.proxy_listener([a, b])})
    # the held connection: the only one open, so its backend is the one holding one
    held = H.connect(d.port)
    held_port = held.getsockname()[1]
    assert H.exchange(held, b"before") == b"before"
    (conn,) = [x for x in a.open_conns() + b.open_conns()]
    old_backend = a if conn in a.conns else b
    load = H.Pfload("churn", d.port, "-c", 16, "-s", 2000, "-d", 4, "-t", 10000)
    try:
        H.wait_for(lambda: c.accepted == 0 and a.accepted + b.accepted > 1000, 10,
                   "the load to be under way")
        d.listeners["rl"]["backend"] = [c.spec, dd.spec]
        d.write_config()
        status = d.reload(timeout=15)
        assert status is None or "reload failed" not in status, status
        # the held connection still works, on its old backend
        nin = conn.nin
        assert H.exchange(held, b"during the load, after the reload") == \
            b"during the load, after the reload"
        assert conn.nin == nin + len(b"during the load, after the reload") and not conn.closed
        H.wait_for(lambda: c.accepted > 20 and dd.accepted > 20, 10,
                   "the new backends to take the load")
        counts = load.wait(timeout=30 * H.SLOW)
    finally:
        load.kill()
    print("pfload: %r; A %d B %d C %d D %d" % (counts, a.accepted, b.accepted, c.accepted,
                                             dd.accepted))
    for k in ("failed_connects", "resets", "early_eofs", "timeouts", "mismatches"):
        assert counts[k] == 0, counts
    assert counts["completed"] > 100, counts
    assert H.exchange(held, b"after the load") == b"after the load"
    assert not conn.closed
    held.close()
    f = H.wait_close_line(d, held_port)
    assert f["gen"] == 1 and f["backend"] == old_backend.spec and f["reason"] == "client_eof", f
    lines = [x for x in H.close_lines(d) if x["listener"] == "rl"]
    old = {a.spec, b.spec}
    new = {c.spec, dd.spec}
    wrong = [x for x in lines if x["backend"] not in (old if x["gen"] == 1 else new)]
    assert not wrong, "%d connections on the wrong backend set, e.g. %r" % (len(wrong), wrong[:3])
    assert {x["backend"] for x in lines if x["gen"] == 2} == new
    bad = [x for x in lines if x["reason"] != "client_eof"]
    assert not bad, bad[:5]


def test_leastconn_source_bind_failure_keeps_count(backends, preforkd):
    """leastconn, one worker: backend B0's connections are bound to a source address
    that is not on the host (so each one fails before its connect), B1's need none.
    A failed bind must leave B0's connection count at 0, not wrap it below 0: with B1
    holding a connection, every new client is tried on B0 again (and closed with
    reason connect_failed), never sent to B1 as if B0 were the loaded one."""
    if not H.have_ipv6_loopback():
        pytest.skip("no IPv6 loopback")
    dead6 = "[::1]:%d" % H.free_port()     # never connected to: the bind fails first
    b1 = backends.echo(b"B1\n")
    d = preforkd.start(daemon={"workers": 1}, listeners={"lc": H.proxy_listener(
        [dead6, b1], balance="leastconn", retries=0, source="2001:db8::1")})
    held = None
    ports = []
    try:
        # the first pick may be either backend; get one connection held on B1
        for _ in range(3):
            c = H.connect(d.port)
            try:
                ident = H.read_line(c, limit=64, what="ident line").strip().decode()
            except H.HarnessError:
                ports.append(c.getsockname()[1])
                c.close()
                continue
            assert ident == "B1", ident
            held = c
            break
        assert held is not None, "no connection reached B1; log:\n%s" % d.log_tail()
        # B0 = 0, B1 = 1: leastconn picks B0, whose bind fails, every time
        for _ in range(3):
            with H.connect(d.port) as c:
                ports.append(c.getsockname()[1])
                H.wait_closed_by_peer(c, 5)
        for p in ports:
            f = H.wait_close_line(d, p)
            assert f["reason"] == "connect_failed" and f["backend"] == dead6, f
        assert len(b1.open_conns()) == 1, "B1 took more connections: %r" % b1.conns
        d.wait_log(r"\[warning\] worker 0 gen 1: listener lc: bind to source "
                   r"\[2001:db8::1\]:0 for backend \[::1\]:%s: " % dead6.rsplit(":", 1)[1])
    finally:
        if held is not None:
            held.close()
