"""Echo: byte-exact payloads, half-close, backpressure, idle timeout."""

import os
import select
import socket
import time

import pytest

import pfharness as H

MiB = 1 << 20


@pytest.mark.timeout_s(90)
def test_echo_many_sizes_500_concurrent(preforkd):
    """500 connections at once, payloads from 1 B to 8 MiB, each echoed byte for byte."""
    d = preforkd.start(daemon={"workers": 2, "log_level": "notice"})
    sizes = ([1] * 60 + [2] * 20 + [10] * 90 + [100] * 60 + [1000] * 60
             + [4095, 4096, 4097] * 20 + [16383, 16384, 16385] * 20 + [65536] * 40
             + [262144] * 30 + [MiB] * 16 + [4 * MiB] * 2 + [8 * MiB] * 2)
    assert len(sizes) == 500
    # interleave sizes so large and small transfers run side by side
    sizes = sizes[::2] + sizes[1::2]
    payloads = [H.payload(n) for n in sizes]
    problems = H.multi_echo(d.port, payloads, timeout=60)
    assert not problems, "%d failed echoes, first ones:\n%s" % (len(problems),
                                                                "\n".join(problems[:10]))
    # one exchange alone still works afterwards
    assert H.echo_ok(d.port, H.payload(3 * MiB + 7))


@pytest.mark.parametrize("size", [1, 1000, 100 * 1024, 4 * MiB + 3])
def test_half_close_echoes_everything_then_eof(preforkd, size):
    """send, then shutdown(SHUT_WR): every byte comes back, then EOF."""
    d = preforkd.start(daemon={"workers": 1})
    data = H.payload(size)
    with H.connect(d.port) as s:
        back = H.exchange(s, data, timeout=20, shut_wr=True, expect_eof=True)
    assert H.digest(back) == H.digest(data)


def test_half_close_before_reading(preforkd):
    """The whole payload and the FIN are sent before anything is read."""
    d = preforkd.start(daemon={"workers": 1})
    data = H.payload(32 * 1024)     # fits the socket buffers: sendall cannot stall
    with H.connect(d.port) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        back = H.read_until_eof(s, timeout=10, limit=len(data))
    assert H.digest(back) == H.digest(data)
    d.wait_log(r"reason=client_eof")


class Pattern:
    """An endless byte stream (a random block repeated), cheap to produce and check."""

    def __init__(self, block=MiB + 13):
        self.block = os.urandom(block)
        self.twice = self.block + self.block

    def at(self, off, n):
        n = min(n, len(self.block))
        o = off % len(self.block)
        return self.twice[o:o + n]


@pytest.mark.timeout_s(90)
def test_backpressure_bounds_memory(preforkd):
    """A client writes up to 200 MiB and never reads: the write stalls, memory stays bounded,
    other clients are served, and the stalled bytes come back intact once it reads."""
    d = preforkd.start(daemon={"workers": 2, "log_level": "notice"},
                       listeners={"echo": {"buffer_size": "16k"}})
    baseline = d.rss_total()
    pat = Pattern()
    s = H.connect(d.port)
    s.setblocking(False)
    written = 0
    limit = 200 * MiB
    max_rss = 0
    last_progress = time.monotonic()
    end = time.monotonic() + 20 * H.SLOW
    next_sample = 0
    # write until no progress for 1 s (the stall), 200 MiB, or the deadline
    while written < limit and time.monotonic() < end:
        try:
            n = s.send(pat.at(written, 256 * 1024))
            written += n
            last_progress = time.monotonic()
        except BlockingIOError:
            select.select([], [s], [], 0.1)
        now = time.monotonic()
        if now >= next_sample:
            max_rss = max(max_rss, d.rss_total())
            next_sample = now + 0.1
        if now - last_progress >= 1.0:
            break
    assert written < limit, "the write never stalled: %d bytes taken without reading" % written
    stalled_at = written
    print("stalled after %d bytes; baseline RSS %.1f MiB, max %.1f MiB"
          % (written, baseline / MiB, max_rss / MiB))
    # while it is stalled, every worker still serves other clients
    for _ in range(4):
        assert H.echo_ok(d.port, H.payload(100000), timeout=10)
    # and the daemon took no more bytes from the stalled client meanwhile
    try:
        written += s.send(pat.at(written, 256 * 1024))
    except BlockingIOError:
        pass
    max_rss = max(max_rss, d.rss_total())
    if H.ASAN:
        assert max_rss - baseline < 64 * MiB, \
            "RSS grew by %.1f MiB (baseline %.1f MiB)" % ((max_rss - baseline) / MiB, baseline / MiB)
    else:
        assert max_rss < 64 * MiB, "daemon RSS reached %.1f MiB with a stalled client" % (max_rss / MiB)
    # now read everything back and check it byte for byte
    got = 0
    end = H.deadline(30)
    while got < written:
        assert time.monotonic() < end, "read back only %d of %d bytes" % (got, written)
        r, _, _ = select.select([s], [], [], 0.5)
        if not r:
            continue
        chunk = s.recv(MiB)
        assert chunk, "EOF after %d of %d bytes" % (got, written)
        assert got + len(chunk) <= written, "more bytes than sent"
        pos = 0
        while pos < len(chunk):
            want = pat.at(got + pos, len(chunk) - pos)
            assert chunk[pos:pos + len(want)] == want, "echo differs at byte %d" % (got + pos)
            pos += len(want)
        got += len(chunk)
    s.close()
    assert stalled_at > 0


def test_idle_timeout(preforkd):
    """An idle connection is closed after about idle_timeout; an active one survives 2x."""
    d = preforkd.start(daemon={"workers": 1}, listeners={"echo": {"idle_timeout": "1s"}})
    idle = H.connect(d.port)
    active = H.connect(d.port)
    idle_port = idle.getsockname()[1]
    active_port = active.getsockname()[1]
    assert H.digest(H.exchange(idle, b"x")) == H.digest(b"x")
    t_idle = time.monotonic()
    assert H.digest(H.exchange(active, b"y")) == H.digest(b"y")
    idle.setblocking(False)
    closed_after = None
    t0 = time.monotonic()
    next_ping = t0 + 0.3
    n = 0
    # run 2.5 s (2.5x the timeout): ping `active` every 300 ms, watch `idle`
    while time.monotonic() - t0 < 2.5:
        now = time.monotonic()
        if now >= next_ping:
            n += 1
            data = b"ping %d" % n
            back = H.exchange(active, data, timeout=2)
            assert back == data
            next_ping += 0.3
        if closed_after is None:
            r, _, _ = select.select([idle], [], [], max(0.0, min(0.02, next_ping - now)))
            if r:
                try:
                    chunk = idle.recv(100)
                    assert chunk == b"", "unexpected bytes on the idle connection"
                except ConnectionResetError:
                    pass
                closed_after = time.monotonic() - t_idle
        else:
            time.sleep(max(0.0, min(0.02, next_ping - now)))
    print("idle connection closed after %r s; %d pings on the active one" % (closed_after, n))
    assert closed_after is not None, "the idle connection is still open after 2.5 s"
    assert 0.85 <= closed_after <= 1.0 + 0.6 * H.SLOW, \
        "idle connection closed after %.2f s (idle_timeout 1s)" % closed_after
    # the active one is still open and working
    assert H.exchange(active, b"still here", timeout=2) == b"still here"
    active.close()
    idle.close()
    d.wait_log(r"close listener=echo client=127\.0\.0\.1:%d .*reason=idle_timeout" % idle_port)
    # the active connection ended with our close, not with the timer
    d.wait_log(r"close listener=echo client=127\.0\.0\.1:%d .*reason=client_eof" % active_port)
    assert d.log().count("reason=idle_timeout") == 1


def test_client_reset_is_logged_and_harmless(preforkd):
    """A client that resets its connection (with bytes in flight) costs nothing but a
    close line with reason=client_reset."""
    import struct
    d = preforkd.start(daemon={"workers": 1})
    (worker,) = d.wait_workers(1)
    s = H.connect(d.port)
    port = s.getsockname()[1]
    assert H.exchange(s, b"x") == b"x"
    s.send(H.payload(500000)[:100000])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    d.wait_log(r"close listener=echo client=127\.0\.0\.1:%d .*reason=(client_reset|error)" % port)
    assert d.worker_pids() == [worker]
    assert H.echo_ok(d.port, H.payload(10000))


@pytest.mark.timeout_s(60)
def test_pfload_end_modes(preforkd, pfload_bin):
    """Churn ending each connection by close, by half-close, and by reset: no errors."""
    d = preforkd.start(daemon={"workers": 2, "log_level": "notice"})
    for end in ("close", "shut", "rst"):
        c = H.run_pfload("churn", d.port, "-c", 16, "-s", 5000, "-d", 1, "-e", end)
        assert c["completed"] > 100, (end, c)
        for k in ("failed_connects", "resets", "early_eofs", "timeouts", "mismatches"):
            assert c[k] == 0, (end, c)
    assert d.worker_pids() and H.echo_ok(d.port, b"fine")
