"""Resources: an idle master sleeps, the master works per lease under load, and no
spinning when a worker runs out of fds.  Counted (wakeups, loop turns, syscalls), not
timed: CPU time on a busy machine measures the machine as much as the daemon."""

import math
import os
import platform
import re
import resource
import select
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import pfharness as H


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


class Syscalls:
    """strace -c attached to one process: how many calls of each traced syscall it
    made between start (once strace says it is attached) and stop().  Exact, where
    CPU time on a busy machine is not; strace slows the process it traces, which
    only makes it wake less often per unit of work."""

    def __init__(self, pid, names, timeout=10.0):
        self.pid = pid
        fd, self.out = tempfile.mkstemp(prefix="preforkd-strace-")
        os.close(fd)
        self.proc = subprocess.Popen(
            ["strace", "-c", "-o", self.out, "-e", "trace=" + ",".join(names),
             "-p", str(pid)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        err = ""
        end = H.deadline(timeout)
        os.set_blocking(self.proc.stderr.fileno(), False)
        try:
            while "attached" not in err:
                left = end - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise H.HarnessError("strace did not attach to %d: %r" % (pid, err))
                r, _, _ = select.select([self.proc.stderr], [], [], min(left, 0.2))
                if r:
                    err += self.proc.stderr.read() or ""
        except BaseException:
            self.kill()
            raise
        self.t0 = time.monotonic()

    def stop(self, timeout=10.0):
        """Detach; return ({syscall: calls}, seconds traced)."""
        took = time.monotonic() - self.t0
        self.proc.send_signal(signal.SIGINT)
        calls = {}
        try:
            self.proc.wait(timeout * H.SLOW)
            with open(self.out) as f:
                for line in f:
                    p = line.split()
                    if len(p) >= 5 and p[3].isdigit() and p[-1] != "total":
                        calls[p[-1]] = int(p[3])
        finally:
            self.kill()
        return calls, took

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()
        try:
            os.unlink(self.out)
        except FileNotFoundError:
            pass


LOOP_CALLS = ("epoll_wait", "epoll_pwait")      # one per turn of a libev loop

RE_DISPATCH = re.compile(r"master: dispatch: (\d+) notifications took (\d+) connections")


def dispatched(d):
    """(leases, connections) the master has counted so far: the sums of its
    once-a-second debug lines (answers to ACCEPT, and the connections they took)."""
    leases = conns = 0
    for n, m in RE_DISPATCH.findall(d.log()):
        leases += int(n)
        conns += int(m)
    return leases, conns


def loop_turns(calls):
    return sum(calls.get(c, 0) for c in LOOP_CALLS)


# accept() calls a lease makes at once, at most
ACCEPT_BATCH = H.src_define("worker.c", "ACCEPT_BATCH")
# a lease's cap, connections past the fewest taken
LEASE_SLACK = H.src_define("dispatch.c", "LEASE_SLACK")
# the answer timer's period while a lease is out
ANSWER_SECS = H.src_define("dispatch.h", "ANSWER_SECS")
# how long a worker out of descriptors stops accepting
ACCEPT_PAUSE_SECS = H.src_define("net.h", "ACCEPT_PAUSE_SECS")


@pytest.mark.timeout_s(90)
def test_master_wakes_per_lease_under_load(preforkd, pfload_bin):
    """Under a connection churn the master works per lease, not per connection, and
    a lease covers a batch: the master's cost stays small however fast the load.

    Counted, not timed.  The master turns its loop (one epoll_wait each) only for
    events: a turn on the listen socket sends one ACCEPT (a lease), or stops
    watching it, and a stop costs one more turn at most (libev drops the
    descriptor from epoll only when it next reports it); watching starts again
    only after an answer, a heartbeat or the answer timer.  So turns <= leases
    (ACCEPT) + 3 * (answers + heartbeats + answer timer firings) + ticks, with
    one answer per lease: about 4 per lease, however many connections a lease
    takes; a master that spins or polls turns far more often.  The leases and the
    connections they took are the master's own count (its debug line each second).

    That a lease covers a batch is checked where the design promises it: b
    connections queued while the master is stopped are handed out by leases that
    each take min(ACCEPT_BATCH, cap) at once, and of two leases in a row one has a
    cap of LEASE_SLACK (the worker that took fewest), so they take at most
    2 * b / ACCEPT_BATCH leases while LEASE_SLACK or more wait, LEASE_SLACK more
    after (one connection each at worst), and two that find the backlog just
    drained."""
    workers = 2
    d = preforkd.start(daemon={"workers": workers, "log_level": "debug"})
    pids = d.wait_workers(workers)
    trace = Syscalls(d.pid, LOOP_CALLS)
    try:
        counts = H.run_pfload("churn", d.port, "-c", 32, "-s", 64, "-d", 4, "-n", 16,
                              timeout=60)
        calls, took = trace.stop()
    finally:
        trace.kill()
    assert sorted(d.worker_pids()) == sorted(pids), "workers changed during the load"
    assert counts["failed_connects"] == 0 and counts["resets"] == 0 \
        and counts["mismatches"] == 0, counts
    H.wait_for(lambda: dispatched(d)[1] == counts["connects"], 5,
               "the master to count %d connections dispatched" % counts["connects"])
    leases, conns = dispatched(d)
    turns = loop_turns(calls)
    secs = math.ceil(took) + 1          # firings of a 1 s timer in the window, at most
    heartbeats = workers * secs
    answer_timer = math.ceil(took / ANSWER_SECS) + 1
    bound = leases + 3 * (leases + heartbeats + answer_timer) + secs + 2   # + attach, detach
    print("churn %r; master: %d loop turns in %.2f s for %d leases taking %d connections "
          "(bound %d)" % (counts, turns, took, leases, conns, bound))
    assert counts["connects"] > 1000, "the load barely ran: %r" % counts
    assert turns <= bound, "master turned its loop %d times for %d leases in %.1f s; " \
        "the design allows %d" % (turns, leases, took, bound)

    # a burst: b connections wait together, so every lease finds a batch
    b = 256
    socks = []
    os.kill(d.pid, signal.SIGSTOP)
    try:
        for _ in range(b):
            socks.append(H.connect(d.port))
    finally:
        os.kill(d.pid, signal.SIGCONT)
        try:
            H.wait_for(lambda: dispatched(d)[1] == conns + len(socks), 10,
                       "the master to count the burst of %d dispatched" % len(socks))
        finally:
            for s in socks:
                s.close()
    burst_leases = dispatched(d)[0] - leases
    burst_bound = 2 * b // ACCEPT_BATCH + LEASE_SLACK + 2
    print("burst of %d: %d leases (bound %d)" % (b, burst_leases, burst_bound))
    assert burst_leases <= burst_bound, "%d queued connections took %d leases; " \
        "batches allow %d" % (b, burst_leases, burst_bound)


def _low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


@pytest.mark.timeout_s(60)
def test_emfile_pauses_without_spinning(preforkd):
    """A worker out of file descriptors (limit 64, 200 connections waiting) warns,
    pauses its accepts and does not spin; once connections close, it serves again.

    Counted, not timed.  With its descriptors all held, every accept() the worker
    tries fails with EMFILE and pauses it for ACCEPT_PAUSE_SECS, so over t seconds
    it tries at most one burst of one accept() per pause: t / ACCEPT_PAUSE_SECS + 1
    calls.  Its loop turns only for the pause timer, the ACCEPT the master sends
    once it says it has resumed, and its heartbeat; the master's only for the
    worker's two messages per pause, its heartbeat, its own tick and answer timer,
    each followed by at most two turns on the listen socket (offered, or stopped
    and dropped from epoll).  A loop that retried at once, or on a short timer,
    turns hundreds or thousands of times."""
    workers = 1
    d = preforkd.start(daemon={"workers": workers}, preexec_fn=_low_nofile)
    (worker,) = d.wait_workers(workers)
    socks = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5 * H.SLOW)
            socks.append(s)
        d.wait_log(r"\[warning\] worker 0 gen 1: accept: Too many open files; pausing accepts")
        warned = d.log().count("pausing accepts")
        wtrace = Syscalls(worker, ("accept", "accept4") + LOOP_CALLS)
        try:
            mtrace = Syscalls(d.pid, LOOP_CALLS)
            try:
                time.sleep(2.0)     # a measurement window, not a wait for a condition
                mcalls, mtook = mtrace.stop()
            finally:
                mtrace.kill()
            wcalls, took = wtrace.stop()
        finally:
            wtrace.kill()
        accepts = wcalls.get("accept", 0) + wcalls.get("accept4", 0)
        pauses = math.ceil(took / ACCEPT_PAUSE_SECS) + 1
        secs = math.ceil(took) + 1
        wturns, mturns = loop_turns(wcalls), loop_turns(mcalls)
        wbound = 2 * pauses + secs + 2                          # + attach, detach
        mbound = 3 * (2 * pauses + workers * secs + math.ceil(took / ANSWER_SECS) + 1) \
            + secs + 2
        print("EMFILE window %.2f s: worker %d accept() calls (bound %d), %d loop turns "
              "(bound %d); master %d loop turns in %.2f s (bound %d); warnings before %d"
              % (took, accepts, pauses, wturns, wbound, mturns, mtook, mbound, warned))
        assert accepts <= pauses, "worker tried accept() %d times in %.1f s at EMFILE; " \
            "a pause of %.1f s allows %d" % (accepts, took, ACCEPT_PAUSE_SECS, pauses)
        assert wturns <= wbound, "worker turned its loop %d times in %.1f s at EMFILE; " \
            "its timers allow %d" % (wturns, took, wbound)
        assert mturns <= mbound, "master turned its loop %d times in %.1f s at EMFILE; " \
            "the design allows %d" % (mturns, mtook, mbound)
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
