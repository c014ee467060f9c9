"""Proxy mode: real servers behind it (redis, iperf3), bulk transfers checked by
digest, half-close, connect_timeout, backpressure both ways, and -l/-m/-b."""

import collections
import csv
import hashlib
import io
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import pfharness as H

MiB = 1 << 20
GiB = 1 << 30

REDIS_SERVER = shutil.which("redis-server")
REDIS_BENCHMARK = shutil.which("redis-benchmark")
IPERF3 = shutil.which("iperf3")


# --------------------------------------------------------------------------
# helpers

class Stream:
    """A deterministic byte stream (a seeded block repeated), cut into memoryview
    chunks without copying, so GiBs cost no memory."""

    def __init__(self, seed, block=MiB + 13):
        self.block = random.Random(seed).randbytes(block)
        self.view = memoryview(self.block + self.block)
        self.n = block

    def at(self, off, n):
        o = off % self.n
        return self.view[o:o + min(n, self.n)]

    def chunks(self, total, size=MiB):
        off = 0
        while off < total:
            ch = self.at(off, min(size, total - off))
            yield ch
            off += len(ch)

    def digest(self, total):
        h = hashlib.sha256()
        for ch in self.chunks(total):
            h.update(ch)
        return (total, h.hexdigest())


def send_stream(sock, stream, total, rec, shut=True):
    """sendall `total` bytes of stream, hashing what was sent into rec["sent"]."""
    try:
        h = hashlib.sha256()
        n = 0
        for ch in stream.chunks(total):
            sock.sendall(ch)
            h.update(ch)
            n += len(ch)
        rec["sent"] = (n, h.hexdigest())
        if shut:
            sock.shutdown(socket.SHUT_WR)
    except Exception as e:
        rec["send_error"] = repr(e)


def recv_digest(sock, limit):
    """Read until EOF (recv_into a large buffer); return (length, sha256 hex)."""
    buf = bytearray(4 * MiB)
    mv = memoryview(buf)
    h = hashlib.sha256()
    n = 0
    while True:
        k = sock.recv_into(buf)
        if k == 0:
            return (n, h.hexdigest())
        h.update(mv[:k])
        n += k
        if n > limit:
            raise H.HarnessError("more than %d bytes before EOF" % limit)


def recv_exact(sock, n, timeout=10.0):
    end = H.deadline(timeout)
    got = bytearray()
    sock.settimeout(0.2)
    while len(got) < n:
        if time.monotonic() >= end:
            raise H.HarnessError("got %d of %d bytes in time" % (len(got), n))
        try:
            chunk = sock.recv(n - len(got))
        except socket.timeout:
            continue
        if not chunk:
            raise H.HarnessError("EOF after %d of %d bytes" % (len(got), n))
        got += chunk
    return bytes(got)


def wait_proc_listens(p, port, timeout=10.0, what="server"):
    """Wait until process p has a listening socket on port (without connecting to it)."""
    def ok():
        if p.poll() is not None:
            raise H.HarnessError("%s exited with %s:\n%s" % (what, p.returncode,
                                                             H.BackendPool.proc_log(p)))
        ino = H.listen_inode(port)
        return ino is not None and ino in H.socket_inodes(p.pid)
    H.wait_for(ok, timeout, "%s to listen on port %d" % (what, port), interval=0.01)


def sample_rss(d, into):
    into.append(d.rss_total())
    return into[-1]


# --------------------------------------------------------------------------
# 1. redis-benchmark through the proxy

def redis_cmd(sock, *args):
    """One RESP command on sock; the reply (str, int, bytes, list or an Exception)."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    f = sock.makefile("rb")
    try:
        return _resp_read(f)
    finally:
        f.close()


def _resp_read(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise H.HarnessError("short RESP reply: %r" % line)
    t, body = line[:1], line[1:-2]
    if t == b"+":
        return body.decode()
    if t == b"-":
        return RuntimeError(body.decode())
    if t == b":":
        return int(body)
    if t == b"$":
        n = int(body)
        return None if n < 0 else f.read(n + 2)[:-2]
    if t == b"*":
        return [_resp_read(f) for _ in range(int(body))]
    raise H.HarnessError("bad RESP reply: %r" % line)


def start_redis(backends):
    port = H.free_port()
    p = backends.spawn([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--daemonize", "no"], "redis")

    def pong():
        if p.poll() is not None:
            raise H.HarnessError("redis-server exited with %s:\n%s"
                                 % (p.returncode, H.BackendPool.proc_log(p)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                return redis_cmd(s, "PING") == "PONG"
        except OSError:
            return False
    H.wait_for(pong, 10, "redis-server to answer PING on port %d" % port, interval=0.02)
    return p, port


@pytest.mark.skipif(REDIS_SERVER is None or REDIS_BENCHMARK is None,
                    reason="redis-server/redis-benchmark missing "
                           "(Debian packages redis-server, redis-tools)")
@pytest.mark.timeout_s(60)
def test_redis_benchmark_through_proxy(backends, preforkd):
    """redis-benchmark (20 clients, 4 x 20000 requests) through the proxy: every
    request answered, and the server's counters show every INCR and LPUSH arrived."""
    _, rport = start_redis(backends)
    d = preforkd.start(daemon={"workers": 2},
                       listeners={"redis": H.proxy_listener([rport])})
    n = 20000
    cmd = [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(d.port), "-n", str(n), "-c", "20",
           "-t", "set,get,incr,lpush", "--csv"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=45 * H.SLOW)
    out = r.stdout + r.stderr
    assert r.returncode == 0, "redis-benchmark exited %d:\n%s" % (r.returncode, out[-3000:])
    assert "error" not in out.lower(), "redis-benchmark reported errors:\n%s" % out[-3000:]
    rows = {row["test"]: row for row in csv.DictReader(io.StringIO(r.stdout))}
    print(r.stdout)
    for t in ("SET", "GET", "INCR", "LPUSH"):
        assert t in rows, "no result for %s:\n%s" % (t, r.stdout)
        assert float(rows[t]["rps"]) > 0, rows[t]
    # every request reached the server: the benchmark's fixed keys counted them
    with H.connect(d.port) as s:
        assert redis_cmd(s, "GET", "counter:__rand_int__") == str(n).encode()
        assert redis_cmd(s, "LLEN", "mylist") == n
        assert redis_cmd(s, "PING") == "PONG"
    lines = [f for f in H.close_lines(d) if f["listener"] == "redis"]
    assert lines, "no summary lines:\n%s" % d.log_tail()
    assert all(f["backend"] == "127.0.0.1:%d" % rport for f in lines), lines[:3]
    bad = [f for f in lines if f["reason"] not in ("client_eof", "client_reset")]
    assert not bad, "connections ended badly: %r" % bad[:5]


# --------------------------------------------------------------------------
# 2. bulk: 1 GiB each way, iperf3

SPLICE_MODES = ["auto", "on", "off"]


@pytest.mark.timeout_s(90)
@pytest.mark.parametrize("splice", SPLICE_MODES)
def test_bulk_1gib_each_way(backends, preforkd, splice):
    """1 GiB client->backend and 1 GiB backend->client at the same time through one
    proxied connection, each checked by length and SHA-256, spliced (auto, on) or copied
    (off).  Under ASan 256 MiB each way: every byte crosses the worker's instrumented
    buffers twice and the point (no loss, no corruption, no stall) is made as well at a
    quarter of the time."""
    total = (256 * MiB) if H.ASAN else GiB
    up, down = Stream(1), Stream(2)

    def handler(s, rec):
        t = threading.Thread(target=send_stream, args=(s, down, total, rec))
        t.start()
        rec["got"] = recv_digest(s, total)
        t.join(120 * H.SLOW)
        s.close()
    b = backends.thread(handler)
    d = preforkd.start(daemon={"workers": 2, "log_level": "info"},
                       listeners={"bulk": H.proxy_listener([b], splice=splice)})
    crec = {}
    t0 = time.monotonic()
    c = H.connect(d.port)
    c.settimeout(60 * H.SLOW)
    port = c.getsockname()[1]
    sender = threading.Thread(target=send_stream, args=(c, up, total, crec))
    sender.start()
    try:
        crec["got"] = recv_digest(c, total)
    finally:
        sender.join(120 * H.SLOW)
        c.close()
    elapsed = time.monotonic() - t0
    H.wait_for(lambda: b.records and "t_done" in b.records[0], 30, "the backend to finish")
    b.check_errors()
    brec = b.records[0]
    assert "send_error" not in crec and "send_error" not in brec, (crec, brec)
    print("%d MiB each way in %.2f s (%.0f MiB/s each way)" % (total // MiB, elapsed,
                                                               total / MiB / elapsed))
    assert crec["sent"][0] == total and brec["sent"][0] == total
    assert brec["got"] == crec["sent"], "client->backend stream differs"
    assert crec["got"] == brec["sent"], "backend->client stream differs"
    f = H.wait_close_line(d, port)
    assert (int(f["in"]), int(f["out"])) == (total, total), f
    assert f["reason"] in ("client_eof", "backend_eof"), f
    assert len(b.records) == 1


def iperf_once(backends, d, sport, reverse):
    srv = backends.spawn([IPERF3, "-s", "-1", "-B", "127.0.0.1", "-p", str(sport)],
                         "iperf3-s%s" % ("-R" if reverse else ""))
    wait_proc_listens(srv, sport, what="iperf3 -s")
    cmd = [IPERF3, "-c", "127.0.0.1", "-p", str(d.port), "-t", "2", "-J"]
    if reverse:
        cmd.append("-R")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30 * H.SLOW)
    assert r.returncode == 0, "%s exited %d:\n%s\n%s" % (" ".join(cmd), r.returncode,
                                                        r.stdout[-2000:], r.stderr[-2000:])
    j = json.loads(r.stdout)
    assert "error" not in j, j["error"]
    bps = j["end"]["sum_received"]["bits_per_second"]
    print("iperf3%s through the proxy: %.2f Gbit/s" % (" -R" if reverse else "", bps / 1e9))
    assert bps > 0 and j["end"]["sum_sent"]["bytes"] > 0, j["end"]
    # the one-off server ends by itself once its test is over
    try:
        srv.wait(10 * H.SLOW)
    except subprocess.TimeoutExpired:
        pytest.fail("iperf3 -s -1 still running after its test:\n%s"
                    % H.BackendPool.proc_log(srv))
    return bps


@pytest.mark.skipif(IPERF3 is None, reason="iperf3 missing (Debian package iperf3)")
@pytest.mark.timeout_s(60)
def test_iperf3_through_proxy(backends, preforkd):
    """iperf3 -t 2, both directions (-R), through the proxy to iperf3 -s -1."""
    sport = H.free_port()
    d = preforkd.start(daemon={"workers": 2},
                       listeners={"iperf": H.proxy_listener([sport])})
    iperf_once(backends, d, sport, reverse=False)
    iperf_once(backends, d, sport, reverse=True)
    # a control and a data connection per run (the last summaries may still be on
    # their way; a data connection may end in a reset: iperf3 closes it unread)
    lines = H.wait_for(lambda: [f for f in H.close_lines(d) if f["listener"] == "iperf"]
                       if len(H.close_lines(d)) >= 4 else None, 10,
                       "4 summaries (control + data, 2 runs)")
    assert not [f for f in lines if f["reason"] in ("error", "connect_failed", "no_backend")]


# --------------------------------------------------------------------------
# 3. half-close

@pytest.mark.parametrize("splice", SPLICE_MODES)
def test_half_close_client_first(backends, preforkd, splice):
    """Client sends, then SHUT_WR; the backend reads to EOF, then answers (digest + 1 MiB)
    and closes; the client gets all of it, then EOF.  reason=client_eof."""
    tail = Stream(7)

    def handler(s, rec):
        rec["got"] = recv_digest(s, 64 * MiB)
        n, hx = rec["got"]
        s.sendall(b"%d %s\n" % (n, hx.encode()))
        for ch in tail.chunks(MiB):
            s.sendall(ch)
        s.close()
    b = backends.thread(handler)
    d = preforkd.start(daemon={"workers": 1},
                       listeners={"px": H.proxy_listener([b], splice=splice)})
    data = H.payload(3 * MiB + 5)
    with H.connect(d.port) as c:
        port = c.getsockname()[1]
        c.settimeout(20 * H.SLOW)
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        back = H.read_until_eof(c, timeout=20, limit=2 * MiB)
    line, rest = back.split(b"\n", 1)
    n, hx = line.split()
    assert (int(n), hx.decode()) == H.digest(data), "the backend got something else"
    assert H.digest(rest) == tail.digest(MiB), "the reply after the half-close differs"
    b.check_errors()
    f = H.wait_close_line(d, port)
    assert f["reason"] == "client_eof", f
    assert (int(f["in"]), int(f["out"])) == (len(data), len(back)), f


@pytest.mark.parametrize("splice", SPLICE_MODES)
def test_half_close_backend_first(backends, preforkd, splice):
    """The backend sends 1 MiB and SHUT_WRs first; the client reads to EOF, then still
    sends 2 MiB, which the backend receives in full.  reason=backend_eof."""
    hello = Stream(8)

    def handler(s, rec):
        for ch in hello.chunks(MiB):
            s.sendall(ch)
        s.shutdown(socket.SHUT_WR)
        rec["got"] = recv_digest(s, 64 * MiB)
        s.close()
    b = backends.thread(handler)
    d = preforkd.start(daemon={"workers": 1},
                       listeners={"px": H.proxy_listener([b], splice=splice)})
    data = H.payload(2 * MiB)
    with H.connect(d.port) as c:
        port = c.getsockname()[1]
        got = H.read_until_eof(c, timeout=20, limit=2 * MiB)
        assert H.digest(got) == hello.digest(MiB)
        c.settimeout(20 * H.SLOW)
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        H.wait_for(lambda: b.records and "t_done" in b.records[0], 20, "the backend to finish")
        assert H.read_until_eof(c, timeout=10, limit=0) == b""
    b.check_errors()
    assert b.records[0]["got"] == H.digest(data), "the backend got something else"
    f = H.wait_close_line(d, port)
    assert f["reason"] == "backend_eof", f
    assert (int(f["in"]), int(f["out"])) == (len(data), MiB), f


def test_halfclose_timeout(backends, preforkd):
    """After the client's FIN, a backend that neither answers nor closes: the connection
    is closed at halfclose_timeout (reason=halfclose_timeout)."""
    release = threading.Event()

    def handler(s, rec):
        rec["got"] = recv_digest(s, MiB)     # the client's FIN arrives
        release.wait(30 * H.SLOW)            # ... and we say nothing
        s.close()
    b = backends.thread(handler)
    d = preforkd.start(daemon={"workers": 1},
                       listeners={"px": H.proxy_listener([b], halfclose_timeout="500ms")})
    try:
        with H.connect(d.port) as c:
            port = c.getsockname()[1]
            c.sendall(b"question")
            c.shutdown(socket.SHUT_WR)
            took = H.wait_closed_by_peer(c, 5)
        H.wait_for(lambda: b.records and "got" in b.records[0], 5, "the backend's EOF")
        assert b.records[0]["got"] == H.digest(b"question")
    finally:
        release.set()
    assert 0.4 <= took <= 0.5 + 1.5 * H.SLOW, "closed after %.2f s" % took
    f = H.wait_close_line(d, port)
    assert f["reason"] == "halfclose_timeout", f


def test_idle_timeout_and_resets(backends, preforkd):
    """idle_timeout = 1s closes a silent proxied connection (reason idle_timeout) while an
    active one lives on; a backend's reset ends its connection with backend_reset, a
    client's reset with client_reset."""
    def resetter(s, rec):
        data = s.recv(100)
        rec["got"] = data
        if data.startswith(b"reset"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            return
        while data:
            s.sendall(data)
            data = s.recv(65536)
        s.close()
    b = backends.thread(resetter)
    d = preforkd.start(daemon={"workers": 1},
                       listeners={"px": H.proxy_listener([b], idle_timeout="1s")})
    idle, active = H.connect(d.port), H.connect(d.port)
    try:
        assert H.exchange(idle, b"hello") == b"hello"
        assert H.exchange(active, b"hello") == b"hello"
        t0 = time.monotonic()
        idle_port, active_port = idle.getsockname()[1], active.getsockname()[1]
        # keep `active` busy every 300 ms while `idle` waits for its timeout
        idle.settimeout(0.3)
        closed = None
        while closed is None and time.monotonic() - t0 < 3 * H.SLOW:
            assert H.exchange(active, b"tick", timeout=2) == b"tick"
            try:
                if idle.recv(10) == b"":
                    closed = time.monotonic() - t0
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = time.monotonic() - t0
        assert closed is not None, "the idle connection is still open after 3 s"
        assert 0.9 <= closed <= 1.0 + 1.0 * H.SLOW, "closed after %.2f s" % closed
        assert H.exchange(active, b"still here") == b"still here"
        assert H.wait_close_line(d, idle_port)["reason"] == "idle_timeout"
    finally:
        idle.close()
        active.close()
    assert H.wait_close_line(d, active_port)["reason"] == "client_eof"
    # the backend resets
    with H.connect(d.port) as c:
        port = c.getsockname()[1]
        c.sendall(b"reset please")
        H.wait_closed_by_peer(c, 5)
    assert H.wait_close_line(d, port)["reason"] == "backend_reset"
    # the client resets
    c = H.connect(d.port)
    port = c.getsockname()[1]
    assert H.exchange(c, b"bye") == b"bye"
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    assert H.wait_close_line(d, port)["reason"] == "client_reset"
    b.check_errors()


def test_graceful_stop_and_drain_with_proxied_connections(backends, preforkd):
    """A proxied connection held across a reload keeps working and is cut at
    drain_timeout; one held at SIGTERM keeps working until shutdown_timeout cuts it; the
    master exits 0."""
    b = backends.echo()
    d = preforkd.start(daemon={"workers": 1, "drain_timeout": "1s", "shutdown_timeout": "1s"},
                       listeners={"px": H.proxy_listener([b])})
    old = H.connect(d.port)
    old_port = old.getsockname()[1]
    assert H.exchange(old, b"before the reload") == b"before the reload"
    d.reload()
    assert H.exchange(old, b"after the reload") == b"after the reload"
    took = H.wait_closed_by_peer(old, 5)
    old.close()
    assert took <= 1.0 + 1.0 * H.SLOW, "the old connection lasted %.2f s more" % took
    f = H.wait_close_line(d, old_port)
    assert f["gen"] == 1 and f["reason"] in ("drain_deadline", "shutdown"), f
    c = H.connect(d.port)
    port = c.getsockname()[1]
    assert H.exchange(c, b"before the stop") == b"before the stop"
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    H.wait_for(lambda: H.port_refuses(d.port), 5, "the listener to close")
    assert H.exchange(c, b"while stopping") == b"while stopping"
    H.wait_closed_by_peer(c, 5)
    c.close()
    assert time.monotonic() - t0 >= 0.9, "cut before shutdown_timeout"
    assert d.wait_exit(10) == 0
    f = H.wait_close_line(d, port)
    assert f["reason"] in ("shutdown", "drain_deadline"), f
    H.wait_for(lambda: not b.open_conns(), 5, "the backend's connections to close")


# --------------------------------------------------------------------------
# 6. connect_timeout

class Blackhole:
    """A port whose SYNs go unanswered: a listening socket with backlog 0 and its accept
    queue filled by connections nobody accepts (further SYNs are dropped)."""

    def __init__(self):
        self.port = H.free_port()
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.bind(("127.0.0.1", self.port))
        self.ls.listen(0)
        self.fill = []
        for _ in range(3):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", self.port))
            self.fill.append(s)

    def verify(self):
        """True when a plain connect times out (0.5 s)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", self.port))
            return False
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            s.close()

    def close(self):
        for s in self.fill:
            s.close()
        self.ls.close()


@pytest.fixture
def blackhole():
    bh = Blackhole()
    yield bh
    bh.close()


def test_connect_timeout(backends, preforkd, blackhole):
    """A backend that never answers the handshake: with connect_timeout = 500ms and
    retries = 0 the client is closed after about 0.5 s (reason=connect_timeout); with
    retries = 1 and a good second backend the client is served after the timeout."""
    if not blackhole.verify():
        pytest.skip("a full accept queue (listen backlog 0) does not drop SYNs on this kernel")
    good = backends.echo()
    d = preforkd.start(daemon={"workers": 1}, listeners={
        "bh": H.proxy_listener([blackhole.port], connect_timeout="500ms", retries=0),
        "retry": H.proxy_listener([blackhole.port, good], connect_timeout="500ms",
                                  retries=1),
    })
    with H.connect(d.ports["bh"]) as c:
        port = c.getsockname()[1]
        c.sendall(b"anybody there?")
        took = H.wait_closed_by_peer(c, 5)
    assert 0.4 <= took <= 3.0, "closed after %.2f s (connect_timeout 500ms)" % took
    f = H.wait_close_line(d, port)
    assert f["reason"] == "connect_timeout", f
    assert f["backend"] == "127.0.0.1:%d" % blackhole.port and f["connect"] == "-", f
    d.wait_log(r"listener bh: connect to 127\.0\.0\.1:%d timed out" % blackhole.port)
    # the first pick of "retry" is the black hole (listed first): served after the timeout
    t0 = time.monotonic()
    with H.connect(d.ports["retry"]) as c:
        port = c.getsockname()[1]
        back = H.exchange(c, b"x" * 1000, timeout=5)
        took = time.monotonic() - t0
    assert back == b"x" * 1000
    assert 0.4 <= took <= 3.0, "served after %.2f s" % took
    f = H.wait_close_line(d, port)
    assert f["backend"] == good.spec and f["reason"] == "client_eof", f
    assert good.accepted == 1


# --------------------------------------------------------------------------
# 7. backpressure

def rss_ok(d, baseline, peak):
    if H.ASAN:
        assert peak - baseline < 64 * MiB, \
            "RSS grew by %.1f MiB (baseline %.1f MiB)" % ((peak - baseline) / MiB, baseline / MiB)
    else:
        assert peak < 64 * MiB, "daemon RSS reached %.1f MiB" % (peak / MiB)


@pytest.mark.timeout_s(60)
def test_backpressure_upload_to_silent_backend(backends, preforkd):
    """A client uploads (up to 500 MiB, non-blocking) to a backend that reads nothing:
    the upload stalls, the daemon's RSS stays bounded, another client is served; then the
    backend reads and gets every byte the client managed to send, intact."""
    drain = threading.Event()

    def silent(s, rec):
        drain.wait(40 * H.SLOW)
        rec["got"] = recv_digest(s, 600 * MiB)
        s.close()
    sink = backends.thread(silent)
    echo = backends.echo()
    d = preforkd.start(daemon={"workers": 2, "log_level": "notice"}, listeners={
        "up": H.proxy_listener([sink]), "echo": H.proxy_listener([echo])})
    baseline = d.rss_total()
    stream = Stream(3)
    limit = 500 * MiB
    h = hashlib.sha256()
    written = 0
    rss = [baseline]
    c = H.connect(d.ports["up"])
    try:
        c.setblocking(False)
        end = time.monotonic() + 20 * H.SLOW
        last_progress = next_sample = time.monotonic()
        while written < limit and time.monotonic() < end:
            ch = stream.at(written, min(256 * 1024, limit - written))
            try:
                n = c.send(ch)
                h.update(ch[:n])
                written += n
                last_progress = time.monotonic()
            except BlockingIOError:
                select.select([], [c], [], 0.1)
            now = time.monotonic()
            if now >= next_sample:
                sample_rss(d, rss)
                next_sample = now + 0.1
            if now - last_progress >= 1.0:
                break
        assert written < limit, "the upload never stalled: %d bytes taken" % written
        print("upload stalled after %.1f MiB; RSS baseline %.1f MiB, peak %.1f MiB"
              % (written / MiB, baseline / MiB, max(rss) / MiB))
        for _ in range(4):
            assert H.echo_ok(d.ports["echo"], H.payload(100000), timeout=10)
        sample_rss(d, rss)
        rss_ok(d, baseline, max(rss))
        # now the backend reads: everything sent arrives, in order
        drain.set()
        c.setblocking(True)
        c.shutdown(socket.SHUT_WR)
        H.wait_for(lambda: sink.records and "t_done" in sink.records[0], 30,
                   "the backend to read everything")
    finally:
        drain.set()
        c.close()
    sink.check_errors()
    assert sink.records[0]["got"] == (written, h.hexdigest())


@pytest.mark.timeout_s(60)
def test_backpressure_download_to_silent_client(backends, preforkd):
    """A backend sends (up to 500 MiB, non-blocking) to a client that reads nothing: the
    backend's send stalls, the daemon's RSS stays bounded, another client is served; then
    the client reads and gets every byte the backend sent, intact."""
    finish = threading.Event()
    stream = Stream(4)
    limit = 500 * MiB

    def talker(s, rec):
        s.setblocking(False)
        h = hashlib.sha256()
        rec["sent"] = 0
        end = time.monotonic() + 40 * H.SLOW
        while rec["sent"] < limit and not finish.is_set() and time.monotonic() < end:
            ch = stream.at(rec["sent"], min(256 * 1024, limit - rec["sent"]))
            try:
                n = s.send(ch)
                h.update(ch[:n])
                rec["sent"] += n
                rec["t_progress"] = time.monotonic()
            except BlockingIOError:
                select.select([], [s], [], 0.1)
        rec["digest"] = (rec["sent"], h.hexdigest())
        s.setblocking(True)
        s.close()
    src = backends.thread(talker)
    echo = backends.echo()
    d = preforkd.start(daemon={"workers": 2, "log_level": "notice"}, listeners={
        "down": H.proxy_listener([src]), "echo": H.proxy_listener([echo])})
    baseline = d.rss_total()
    rss = [baseline]
    c = H.connect(d.ports["down"])
    try:
        H.wait_for(lambda: src.records and src.records[0].get("sent"), 5, "the backend to send")
        rec = src.records[0]

        def stalled():
            sample_rss(d, rss)
            if rec["sent"] >= limit:
                raise H.HarnessError("the backend sent all %d bytes: no backpressure" % limit)
            return time.monotonic() - rec["t_progress"] >= 1.0
        H.wait_for(stalled, 20, "the backend's send to stall", interval=0.1)
        print("download stalled after %.1f MiB; RSS baseline %.1f MiB, peak %.1f MiB"
              % (rec["sent"] / MiB, baseline / MiB, max(rss) / MiB))
        for _ in range(4):
            assert H.echo_ok(d.ports["echo"], H.payload(100000), timeout=10)
        sample_rss(d, rss)
        rss_ok(d, baseline, max(rss))
        finish.set()
        c.settimeout(30 * H.SLOW)
        got = recv_digest(c, limit)
    finally:
        finish.set()
        c.close()
    H.wait_for(lambda: "digest" in rec, 10, "the backend to finish")
    src.check_errors()
    assert got == rec["digest"], "received %r, the backend sent %r" % (got, rec["digest"])


# --------------------------------------------------------------------------
# 8. source addresses

def test_source_addresses_in_turn(backends, preforkd):
    """source = ::1 127.0.0.2-127.0.0.4: the backend's connections come from 127.0.0.2,
    .3, .4, .2, ... (::1 skipped: the backend is IPv4); after a reload to 127.0.0.5 new
    connections come from there while one held across the reload keeps its address."""
    b = backends.echo()
    d = preforkd.start(daemon={"workers": 1}, listeners={
        "px": H.proxy_listener([b], source="::1 127.0.0.2-127.0.0.4")})
    held = H.connect(d.port)
    assert H.exchange(held, b"held") == b"held"
    for i in range(6):
        with H.connect(d.port) as c:
            assert H.exchange(c, b"hello %d" % i) == b"hello %d" % i
    H.wait_for(lambda: b.accepted == 7, 5, "7 connections at the backend")
    peers = [c.peer for c in b.conns]
    assert [p[0] for p in peers] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"] * 2 + \
        ["127.0.0.2"], peers
    assert all(p[1] != 0 for p in peers), peers
    d.listeners["px"]["source"] = "127.0.0.5"
    d.write_config()
    d.reload()
    for i in range(2):
        with H.connect(d.port) as c:
            assert H.exchange(c, b"after %d" % i) == b"after %d" % i
    H.wait_for(lambda: b.accepted == 9, 5, "2 more connections at the backend")
    assert [c.peer[0] for c in b.conns[7:]] == ["127.0.0.5"] * 2
    assert H.exchange(held, b"still held") == b"still held"
    assert b.conns[0].peer[0] == "127.0.0.2" and not b.conns[0].closed
    held.close()


def test_source_bind_failure_moves_on(backends, preforkd):
    """A source address not on this host (192.0.2.1) is skipped for the next one, and
    the worker warns (once a second at most); the backend is not blamed for it (with
    the default max_fails it stays in rotation).  With no address that binds, the client
    is closed with connect_failed and the backend still serves the others."""
    b1 = backends.echo()
    d = preforkd.start(daemon={"workers": 1}, listeners={
        "px": H.proxy_listener([b1], source="127.0.0.2 192.0.2.1", retries=0),
        "bad": H.proxy_listener([b1], source="192.0.2.1", retries=0)})
    for i in range(8):
        with H.connect(d.ports["px"]) as c:
            assert H.exchange(c, b"x%d" % i) == b"x%d" % i
    H.wait_for(lambda: b1.accepted == 8, 5, "8 backend connections")
    assert {c.peer[0] for c in b1.conns} == {"127.0.0.2"}
    d.wait_log(r"\[warning\] .*listener px: bind to source 192\.0\.2\.1:0 for backend "
               r"127\.0\.0\.1:\d+: Cannot assign requested address")
    for i in range(4):
        with H.connect(d.ports["bad"]) as c:
            port = c.getsockname()[1]
            H.wait_closed_by_peer(c, 5)
        f = H.wait_close_line(d, port)
        assert f["reason"] == "connect_failed", f
    assert "marked down" not in d.log(), d.log_tail()
    with H.connect(d.ports["px"]) as c:
        assert H.exchange(c, b"after") == b"after"


# --------------------------------------------------------------------------
# 9. splice: pipes only while bytes move

def fd_kinds(pid):
    """{"socket": n, "pipe": n, ...}: what the open fds of pid are."""
    return collections.Counter(link.split(":", 1)[0] for _, link in H.fd_links(pid))


@pytest.mark.parametrize("splice", ["auto", "on"])
def test_idle_connections_hold_no_pipes(backends, preforkd, splice):
    """Four proxied connections: small exchanges never open a pipe under auto; 1 MiB
    each way opens them (auto: a bulk transfer; on: any), and once the connections are
    idle for a second the worker holds their 2 sockets each and no pipe.  Then they
    still relay byte for byte."""
    b = backends.echo()
    d = preforkd.start(daemon={"workers": 1},
                       listeners={"px": H.proxy_listener([b], splice=splice)})
    (w,) = d.worker_pids()
    base = fd_kinds(w)
    n = 4
    idle = base + collections.Counter(socket=2 * n)
    conns = [H.connect(d.port) for _ in range(n)]
    try:
        for c in conns:
            assert H.exchange(c, b"small talk") == b"small talk"
        if splice == "auto":
            assert fd_kinds(w) == idle, (base, fd_kinds(w))
        data = H.payload(MiB)
        for c in conns:
            assert H.digest(H.exchange(c, data)) == H.digest(data)
        # within a second of its last byte the last connection keeps its pipes
        busy = fd_kinds(w)
        assert busy["pipe"] > base["pipe"], (base, busy)
        H.wait_for(lambda: fd_kinds(w) == idle, 5 * H.SLOW, "the idle connections' pipes to close")
        for c in conns:
            assert H.digest(H.exchange(c, data)) == H.digest(data)
    finally:
        for c in conns:
            c.close()
    H.wait_for(lambda: fd_kinds(w) == base, 5 * H.SLOW, "the connections to close")


def test_splice_without_fds_copies(backends, preforkd):
    """A worker with room for exactly two more fds (RLIMIT_NOFILE lowered from outside):
    a connection with splice = on gets its two sockets but no pipe, and relays 4 MiB
    each way by copying, byte for byte; the reason is logged at debug level."""
    b = backends.echo()
    d = preforkd.start(daemon={"workers": 1, "log_level": "debug"},
                       listeners={"px": H.proxy_listener([b], splice="on")})
    (w,) = d.worker_pids()
    used = {int(fd) for fd in os.listdir("/proc/%d/fd" % w)}
    limit, free = 0, 0
    while free < 2:
        if limit not in used:
            free += 1
        limit += 1
    _, hard = resource.prlimit(w, resource.RLIMIT_NOFILE)
    resource.prlimit(w, resource.RLIMIT_NOFILE, (limit, hard))
    data = H.payload(4 * MiB)
    with H.connect(d.port) as c:
        port = c.getsockname()[1]
        assert H.digest(H.exchange(c, data, timeout=20)) == H.digest(data)
    f = H.wait_close_line(d, port)
    assert (int(f["in"]), int(f["out"])) == (len(data), len(data)), f
    d.wait_log(r"\[debug\] .*listener px: no pipe to splice with: Too many open files; "
               r"copying")


def test_splice_steps_over_urgent_data(backends, preforkd):
    """splice(2) stops at TCP urgent data, where read() steps over it: a client that
    sends a byte with MSG_OOB on a splicing connection does not make the worker spin,
    and the bytes after it are relayed (the urgent byte is not: it is out of band)."""
    b = backends.echo()
    d = preforkd.start(daemon={"workers": 1},
                       listeners={"px": H.proxy_listener([b], splice="on")})
    (w,) = d.worker_pids()
    with H.connect(d.port) as c:
        head = H.payload(64 * 1024)
        assert H.digest(H.exchange(c, head)) == H.digest(head)
        c.send(b"!", socket.MSG_OOB)
        assert H.exchange(c, b"tail") == b"tail"
        before = H.cpu_time(w)
        t0 = time.monotonic()
        H.wait_for(lambda: time.monotonic() - t0 >= 1.0, 2, "a second", interval=0.1)
        spent = H.cpu_time(w) - before
        assert spent < 0.5, "the worker used %.2f s of CPU in 1 s with urgent data " \
            "pending: spinning" % spent
        assert H.exchange(c, b"still") == b"still"


# --------------------------------------------------------------------------
# 10. -l / -m / -b

def run_cli(args, timeout=10):
    env = {k: v for k, v in os.environ.items()
           if k not in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID")}
    p = subprocess.Popen([H.PREFORKD] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout * H.SLOW)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, err = p.communicate()
        pytest.fail("preforkd %s did not exit; stderr:\n%s" % (" ".join(args), err))
    bad = [l for l in err.splitlines() if any(b in l for b in H.BAD_LOG[1:])]
    assert not bad, "sanitizer report:\n%s" % err
    return p.returncode, out, err


def ident_of(port, data=b"ping", timeout=5.0):
    """Connect, read the backend's ident line, check the echo of data; return the ident."""
    with H.connect(port, timeout=timeout) as s:
        ident = H.read_line(s, timeout).strip()
        assert H.digest(H.exchange(s, data, timeout=timeout)) == H.digest(data)
    return ident


def test_cli_listen_mode_proxy_backend(backends, preforkd):
    """preforkd -l ADDR -m proxy -b ADDR proxies with no config file."""
    b = backends.echo(b"cli\n")
    port = H.free_port()
    d = preforkd.new(listeners={}, use_config=False,
                     args=["-l", "127.0.0.1:%d" % port, "-m", "proxy", "-b", b.spec,
                           "-w", "1", "-L", "info"])
    d.start()
    assert ident_of(port) == b"cli"
    assert ident_of(port, H.payload(300000)) == b"cli"
    assert b.accepted == 2
    f = H.close_lines(d)[0]
    assert f["listener"] == "cli-1" and f["backend"] == b.spec, f


def test_cli_backend_alone_implies_proxy(backends, preforkd):
    """-b without -m means proxy; -b takes weight= and backup."""
    a, bb, bk = backends.echo(b"A\n"), backends.echo(b"B\n"), backends.echo(b"K\n")
    port = H.free_port()
    d = preforkd.new(listeners={}, use_config=False,
                     args=["-l", "127.0.0.1:%d" % port, "-b", a.spec + " weight=3",
                           "--backend", bb.spec, "-b", bk.spec + " backup", "-w", "1"])
    d.start()
    got = [ident_of(port) for _ in range(8)]
    assert sorted(got) == [b"A"] * 6 + [b"B"] * 2, got
    assert bk.accepted == 0


def test_cli_mode_errors(binaries):
    """-m proxy without -b: exit 1 naming backend; -m bogus: usage, exit 2; -b or -m
    without -l: usage, exit 2."""
    port = H.free_port()
    rc, out, err = run_cli(["-l", "127.0.0.1:%d" % port, "-m", "proxy"])
    assert rc == 1, (rc, err)
    assert "backend" in err, "the error does not name backend: %r" % err
    rc, out, err = run_cli(["-l", "127.0.0.1:%d" % port, "-m", "bogus"])
    assert rc == 2 and "usage" in err.lower(), (rc, err)
    rc, out, err = run_cli(["-b", "127.0.0.1:%d" % port])
    assert rc == 2 and "usage" in err.lower(), (rc, err)
    rc, out, err = run_cli(["-m", "proxy"])
    assert rc == 2 and "usage" in err.lower(), (rc, err)
    rc, out, err = run_cli(["-l", "127.0.0.1:%d" % port, "-m", "echo", "-b",
                            "127.0.0.1:%d" % H.free_port()])
    assert rc == 1 and "backend" in err, (rc, err)
