"""Resources: an idle master sleeps, the master's CPU share, and no spinning when a worker
runs out of fds."""

import math
import platform
import resource
import socket
import time

import pytest

import pfharness as H


def window(d, pids, seconds):
    """CPU seconds each pid used over a window of `seconds` (a measurement, not a wait)."""
    before = {p: H.cpu_time(p) for p in pids}
    t0 = time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - t0
    return {p: H.cpu_time(p) - before[p] for p in pids}, took


def voluntary_switches(pid):
    """How many times pid has blocked (slept) so far: voluntary_ctxt_switches."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches for %d" % pid)


EPOLL_WAIT = {232, 281}     # x86_64 epoll_wait, epoll_pwait


def blocked_in(pid):
    """The syscall number pid is blocked in (/proc/PID/syscall), or None when running."""
    with open("/proc/%d/syscall" % pid) as f:
        first = f.read().split()[0]
    return int(first) if first.isdigit() else None


def test_master_idle_cpu(preforkd):
    """An idle master sleeps in epoll_wait and wakes only for its timers: its 1 s tick
    and each worker's 1 s heartbeat (HEARTBEAT_SECS in src/worker.c).

    Counted, not timed: a repeating timer fires no more than once per interval (once
    more when late), so over a window of t seconds the master blocks again at most
    (1 + workers) * (t + 1) times, however busy the machine; a master that spins
    never blocks in epoll_wait, one that polls blocks far more often."""
    if platform.machine() != "x86_64":
        pytest.skip("syscall numbers here are x86_64's")
    workers = 2
    d = preforkd.start(daemon={"workers": workers, "log_level": "notice"})
    d.wait_workers(workers)
    # one exchange so the workers have done their start-up work
    assert H.echo_ok(d.port, b"warm up")
    H.wait_for(lambda: blocked_in(d.pid) in EPOLL_WAIT, 5, "the master to sleep in epoll_wait")
    before = voluntary_switches(d.pid)
    t0 = time.monotonic()
    time.sleep(3.0)         # a measurement window, not a wait for a condition
    took = time.monotonic() - t0
    wakeups = voluntary_switches(d.pid) - before
    bound = (1 + workers) * (math.ceil(took) + 1)
    print("idle master: %d wakeups in %.2f s (bound %d)" % (wakeups, took, bound))
    assert wakeups <= bound, "idle master woke %d times in %.1f s; its timers allow %d" % (
        wakeups, took, bound)
    H.wait_for(lambda: blocked_in(d.pid) in EPOLL_WAIT, 5, "the master to sleep in epoll_wait")


@pytest.mark.timeout_s(60)
def test_master_cpu_share_under_load(preforkd, pfload_bin):
    """Under a connection churn the master uses < 10% of the CPU the workers use."""
    d = preforkd.start(daemon={"workers": 2, "log_level": "notice"})
    workers = d.wait_workers(2)
    pids = [d.pid] + workers
    before = {p: H.cpu_time(p) for p in pids}
    counts = H.run_pfload("churn", d.port, "-c", 32, "-s", 64, "-d", 4, "-n", 16, timeout=60)
    used = {p: H.cpu_time(p) - before[p] for p in pids}
    assert sorted(d.worker_pids()) == sorted(workers), "workers changed during the load"
    assert counts["failed_connects"] == 0 and counts["resets"] == 0 \
        and counts["mismatches"] == 0, counts
    wtotal = sum(used[w] for w in workers)
    print("pfload %r; CPU s: %r" % (counts, used))
    assert wtotal > 0.5, "workers barely worked (%.2f s CPU): %r" % (wtotal, counts)
    share = used[d.pid] / wtotal
    assert share < 0.10, "master used %.2f s CPU, workers %.2f s (%.0f%%) at %.0f conn/s" % (
        used[d.pid], wtotal, share * 100, counts["rate"])


def _low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


@pytest.mark.timeout_s(60)
def test_emfile_pauses_without_spinning(preforkd):
    """A worker out of file descriptors (limit 64, 200 connections waiting) warns,
    pauses its accepts and does not spin; once connections close, it serves again."""
    d = preforkd.start(daemon={"workers": 1}, preexec_fn=_low_nofile)
    (worker,) = d.wait_workers(1)
    socks = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5 * H.SLOW)
            socks.append(s)
        d.wait_log(r"\[warning\] worker 0 gen 1: accept: Too many open files; pausing accepts")
        warned = d.log().count("pausing accepts")
        used, took = window(d, [worker, d.pid], 2.0)
        print("EMFILE window %.2f s: CPU s %r, warnings before %d" % (took, used, warned))
        assert used[worker] < 0.2 * took, "worker used %.0f ms of CPU in %.1f s at EMFILE" % (
            used[worker] * 1000, took)
        assert used[d.pid] < 0.2 * took, "master used %.0f ms of CPU in %.1f s at EMFILE" % (
            used[d.pid] * 1000, took)
        # the warning is rate-limited: at most one a second
        more = d.log().count("pausing accepts") - warned
        assert more <= int(took) + 1, "%d EMFILE warnings in %.1f s" % (more, took)
    finally:
        for s in socks:
            s.close()
    # once the connections are gone, a new one is served (after the closed ones
    # waiting in the backlog)
    assert H.echo_ok(d.port, H.payload(1000), timeout=10)
    assert d.worker_pids() == [worker], "the worker was replaced"


@pytest.mark.timeout_s(60)
def test_idle_connections_cost_little_memory(preforkd, pfload_bin):
    """2000 idle connections (pfload hold, one exchange each) cost the daemon a few
    KiB each at most: buffers are held only while bytes are pending."""
    if H.ASAN:
        pytest.skip("ASan keeps freed buffers in its quarantine and pads every allocation, "
                    "so RSS does not show what an idle connection holds")
    d = preforkd.start(daemon={"workers": 2, "log_level": "notice"},
                       listeners={"echo": {"buffer_size": "16k"}})
    d.wait_workers(2)
    assert H.echo_ok(d.port, H.payload(100000))
    base = d.rss_total()
    n = 2000
    load = H.Pfload("hold", d.port, "-c", n, "-s", 4000, "-d", 30, "-n", 8)
    try:
        load.wait_stderr(r"holding (\d+) connections", timeout=20)
        grown = d.rss_total() - base
        counts = load.stop()
    finally:
        load.kill()
    print("RSS %.1f MiB -> +%.1f MiB for %d connections; %r"
          % (base / (1 << 20), grown / (1 << 20), n, counts))
    assert counts["held"] == n and counts["mismatches"] == 0 and counts["failed_connects"] == 0, \
        counts
    assert grown / n < 4096, "%.0f bytes of RSS per idle connection" % (grown / n)


@pytest.mark.timeout_s(60)
def test_connect_flood(preforkd, pfload_bin):
    """pfload flood (connect and close, as fast as possible): every connect succeeds,
    the workers survive, and service goes on."""
    d = preforkd.start(daemon={"workers": 2, "log_level": "notice"})
    workers = d.wait_workers(2)
    c = H.run_pfload("flood", d.port, "-c", 64, "-d", 2, "-n", 16)
    print("flood: %r" % c)
    assert c["connects"] > 1000 and c["failed_connects"] == 0 and c["timeouts"] == 0, c
    assert sorted(d.worker_pids()) == sorted(workers)
    assert H.echo_ok(d.port, H.payload(5000))
