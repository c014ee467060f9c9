"""Process life cycle: worker death and respawn, back-off, stop signals, TTIN/TTOU."""

import hashlib
import os
import re
import select
import signal
import time

import pytest

import pfharness as H

MiB = 1 << 20


def test_start_notifies_ready_with_status(preforkd):
    d = preforkd.start(daemon={"workers": 2})
    f = H.parse_note(next(n for n in d.notes if "READY=1" in n))
    assert f.get("STATUS"), "READY=1 came without a STATUS: %r" % d.notes
    assert len(d.wait_workers(2)) == 2
    d.wait_log(r"generation 1 ready: 2 workers")
    assert d.stop() == 0
    d.wait_note(lambda f: f.get("STOPPING") == "1", 2, "STOPPING=1", check_alive=False)
    d.wait_log(r"\[notice\] master: exiting")


def test_killed_worker_is_replaced(preforkd):
    """kill -9 of a worker: a new one takes its place, connections held by the
    other workers keep working, and the service goes on."""
    d = preforkd.start(daemon={"workers": 3})
    old = d.wait_workers(3)
    socks = []
    try:
        for i in range(6):
            s = H.connect(d.port)
            assert H.exchange(s, b"hello") == b"hello"
            socks.append(s)
        owner = H.worker_of_connections(d, d.port, [s.getsockname()[1] for s in socks])
        assert len(owner) == 6, "could not map every connection to a worker: %r" % owner
        victim = owner[socks[0].getsockname()[1]]
        log_at = d.log_size()
        os.kill(victim, signal.SIGKILL)
        new = d.wait_workers(3, exclude=[victim])
        assert victim not in new and len(set(new) - set(old)) == 1, (old, new)
        d.wait_log(r"\(pid %d\) killed by signal 9" % victim, start=log_at)
        for s in socks:
            port = s.getsockname()[1]
            if owner[port] == victim:
                H.wait_closed_by_peer(s, 2)
            else:
                data = H.payload(50000)
                assert H.digest(H.exchange(s, data)) == H.digest(data), \
                    "connection on surviving worker %d broke" % owner[port]
        # new connections are served, by the new worker too, once it has said hello
        (fresh_pid,) = set(new) - set(old)
        d.wait_worker_ready(fresh_pid, start=log_at)
        for i in range(6):
            s = H.connect(d.port)
            socks.append(s)
            data = H.payload(1000)
            assert H.digest(H.exchange(s, data)) == H.digest(data)
        owner = H.worker_of_connections(d, d.port, [s.getsockname()[1] for s in socks[6:]])
        assert fresh_pid in owner.values(), \
            "the new worker %d took none of 6 new connections: %r" % (fresh_pid, owner)
    finally:
        for s in socks:
            s.close()


@pytest.mark.timeout_s(60)
def test_crash_loop_backs_off(preforkd):
    """A worker killed again and again right after it starts is respawned with growing
    delays (100 ms, 200 ms, ...)."""
    d = preforkd.start(daemon={"workers": 2})
    d.wait_workers(2)
    # the worker in slot 1
    slot_of = d.started_workers()
    victim = next(p for p, (slot, _) in slot_of.items() if slot == 1)
    known = set(d.worker_pids())
    log_at = d.log_size()
    kill_times = []
    appear_times = []
    victims = []
    for k in range(5):
        os.kill(victim, signal.SIGKILL)
        kill_times.append(time.monotonic())
        victims.append(victim)
        # poll every 2 ms for the replacement
        end = H.deadline(8)
        new = None
        while new is None:
            kids = H.children(d.pid)
            fresh = [p for p in kids if p not in known]
            if fresh:
                new = fresh[0]
                appear_times.append(time.monotonic())
                break
            assert time.monotonic() < end, "no respawn %d s after kill #%d; log:\n%s" % (
                8, k + 1, d.log_tail())
            time.sleep(0.002)
        known.add(new)
        victim = new
    # the last one is left alone and stays
    last = victim
    survivors = d.wait_workers(2)
    assert last in survivors
    gaps = [a - k for k, a in zip(kill_times, appear_times)]
    delays = [int(m.group(2)) for m in H.RE_RESPAWN.finditer(d.log()[log_at:])
              if m.group(1) == "1"]
    assert len(delays) >= 5, "expected 5 'respawning worker 1 in N ms' lines, got %r" % delays
    delays = delays[:5]
    print("respawn delays (log) %r ms; measured gaps %r s" % (delays, [round(g, 3) for g in gaps]))
    # the first victim may have lived past 1 s (respawn at once); from then on each
    # delay is at least 1.5x the previous one
    grow = [x for x in delays if x > 0]
    assert len(grow) >= 4, "respawn delays %r" % delays
    assert grow[0] >= 50, "first back-off delay %r ms" % grow[0]
    for a, b in zip(grow, grow[1:]):
        assert b >= 1.5 * a, "respawn delays do not grow: %r" % delays
    # what we measured agrees: each gap at least the logged delay, and growing
    for gap, ms in zip(gaps, delays):
        assert gap >= 0.9 * ms / 1000.0, "respawned after %.3f s, log says %d ms" % (gap, ms)
    measured = [g for g, ms in zip(gaps, delays) if ms > 0]
    for a, b in zip(measured, measured[1:]):
        assert b >= 1.4 * a, "measured respawn gaps do not grow: %r" % gaps
    # service continues
    for _ in range(4):
        assert H.echo_ok(d.port, H.payload(3000))
    # a worker that lived past 1 s is respawned at once (and the delay is reset)
    H.wait_for(lambda: time.monotonic() - appear_times[-1] >= 1.3, 5, "the worker to be 1.3 s old")
    log_at = d.log_size()
    os.kill(last, signal.SIGKILL)
    t_kill = time.monotonic()
    new = d.wait_workers(2, exclude=[last])
    gap = time.monotonic() - t_kill
    assert gap < 0.1 * H.SLOW, "a worker that lived 1.3 s was respawned after %.3f s" % gap
    late = [int(m.group(2)) for m in H.RE_RESPAWN.finditer(d.log()[log_at:])
            if m.group(1) == "1"]
    assert all(ms < 100 for ms in late), "respawn delay not reset: %r ms" % late
    assert len(set(new) - set(survivors)) == 1


@pytest.mark.timeout_s(60)
def test_sigterm_finishes_transfer_then_exits(preforkd):
    """SIGTERM during a 64 MiB echo: the transfer completes byte-exact, the listener
    closes, then the master exits 0 once the connection is done."""
    d = preforkd.start(daemon={"workers": 2, "shutdown_timeout": "30s"})
    data = H.payload(64 * MiB)
    want = hashlib.sha256(data)
    s = H.connect(d.port)
    s.setblocking(False)
    view = memoryview(data)
    sent = got = 0
    h = hashlib.sha256()
    signalled = None
    end = H.deadline(40)
    while got < len(data):
        assert time.monotonic() < end, "transfer stalled: sent %d, got %d" % (sent, got)
        r, w, _ = select.select([s], [s] if sent < len(data) else [], [], 0.5)
        if w:
            try:
                sent += s.send(view[sent:sent + 256 * 1024])
            except BlockingIOError:
                pass
        if r:
            chunk = s.recv(MiB)
            assert chunk, "EOF after %d of %d bytes (SIGTERM sent at %r)" % (got, len(data),
                                                                            signalled)
            h.update(chunk)
            got += len(chunk)
            assert got <= sent
        if signalled is None and got >= 8 * MiB:
            signalled = got
            d.signal(signal.SIGTERM)
    assert signalled is not None and signalled < len(data)
    assert h.hexdigest() == want.hexdigest(), "64 MiB echo differs after SIGTERM"
    # the master is still there, waiting for our connection; the listener is closed
    d.wait_note(lambda f: f.get("STOPPING") == "1", 5, "STOPPING=1")
    H.wait_for(lambda: H.port_refuses(d.port), 5, "the port to refuse during the stop",
               interval=0.05)
    assert d.proc.poll() is None, "master exited before the connection was done"
    s.close()
    rc = d.wait_exit(10)
    assert rc == 0, "master exit status %r after SIGTERM" % rc
    assert not d.leftover_workers(5)
    d.wait_log(r"reason=client_eof")


def test_sigquit_exits_at_once(preforkd):
    """SIGQUIT with open connections: the master exits 0 within 2 s, the workers
    too, and the connections are cut."""
    d = preforkd.start(daemon={"workers": 2, "shutdown_timeout": "30s"})
    socks = []
    for _ in range(10):
        s = H.connect(d.port)
        assert H.exchange(s, b"q") == b"q"
        socks.append(s)
    d.worker_pids()
    t0 = time.monotonic()
    d.signal(signal.SIGQUIT)
    rc = d.wait_exit(2)
    took = time.monotonic() - t0
    assert rc is not None, "master still running 2 s after SIGQUIT"
    assert rc == 0, "exit status %r after SIGQUIT" % rc
    assert took < 2 * H.SLOW
    assert not d.leftover_workers(2), "workers outlived the master after SIGQUIT"
    for s in socks:
        H.wait_closed_by_peer(s, 2)
        s.close()


def test_master_killed_workers_exit(preforkd):
    """kill -9 of the master: the workers see their channel close and exit."""
    d = preforkd.start(daemon={"workers": 2, "shutdown_timeout": "5s"})
    workers = d.wait_workers(2)
    os.kill(d.pid, signal.SIGKILL)
    d.proc.wait(timeout=5)
    left = d.leftover_workers(5)
    assert not left, "workers %r still alive 5 s after the master died" % left
    assert all(not H.proc_alive(p) for p in workers)


def test_ttin_ttou_change_worker_count(preforkd):
    """SIGTTIN adds a worker, SIGTTOU removes one (never below 1), until the next reload."""
    d = preforkd.start(daemon={"workers": 2})
    d.wait_workers(2)
    d.signal(signal.SIGTTIN)
    d.wait_workers(3)
    d.signal(signal.SIGTTIN)
    four = d.wait_workers(4)
    for n in (3, 2, 1):
        d.signal(signal.SIGTTOU)
        d.wait_workers(n)
    one = d.worker_pids()
    # at the minimum TTOU changes nothing: the TTIN after it brings us to 2.
    # Two signals pending at once are delivered lowest number first (TTIN
    # before TTOU), so TTIN is sent only once TTOU has been delivered; the
    # master's self-pipe keeps that order from then on.
    d.signal(signal.SIGTTOU)
    H.wait_for(lambda: not H.signal_pending(d.pid, signal.SIGTTOU), 5, "SIGTTOU delivery",
               interval=0.001)
    d.signal(signal.SIGTTIN)
    two = d.wait_workers(2)
    assert "SIGTTOU: 0" not in d.log()
    assert one[0] in two, "the last worker was replaced: %r -> %r" % (one, two)
    for _ in range(4):
        assert H.echo_ok(d.port, H.payload(2000))
    d.signal(signal.SIGTTIN)
    d.wait_workers(3)
    # a reload goes back to the configured count
    status = d.reload()
    assert "reload failed" not in (status or "")
    d.wait_workers(2, exclude=four + two)
    assert H.echo_ok(d.port, b"x")


def test_shutdown_timeout_cuts_connections(preforkd):
    """SIGTERM with a connection left open: it is closed at shutdown_timeout
    (reason=shutdown) and the master exits 0."""
    d = preforkd.start(daemon={"workers": 1, "shutdown_timeout": "1s"})
    s = H.connect(d.port)
    assert H.exchange(s, b"x") == b"x"
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    took = H.wait_closed_by_peer(s, 5)
    s.close()
    assert 0.8 <= took <= 1.0 + 1.0 * H.SLOW, "cut after %.2f s (shutdown_timeout 1s)" % took
    rc = d.wait_exit(5)
    assert rc == 0, "exit status %r" % rc
    assert time.monotonic() - t0 < 3 * H.SLOW
    # the contract leaves the reason open: the graceful deadline is a drain deadline too
    d.wait_log(r"close listener=echo .*reason=(shutdown|drain_deadline)")
    d.wait_log(r"master: exiting")


def test_second_sigterm_stops_at_once(preforkd):
    """A second SIGTERM during a graceful stop exits at once."""
    d = preforkd.start(daemon={"workers": 2, "shutdown_timeout": "30s"})
    s = H.connect(d.port)
    assert H.exchange(s, b"x") == b"x"
    start = d.drain_notes()
    d.signal(signal.SIGTERM)
    d.wait_note(lambda f: f.get("STOPPING") == "1", 5, "STOPPING=1", start=start)
    assert d.proc.poll() is None, "master exited with a connection open and 30 s to go"
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait_exit(2)
    assert rc == 0, "exit status %r after a second SIGTERM" % rc
    assert time.monotonic() - t0 < 2 * H.SLOW
    H.wait_closed_by_peer(s, 2)
    s.close()
    assert not d.leftover_workers(2)


def test_workers_ignore_master_signals(preforkd):
    """Workers ignore HUP/INT/QUIT/USR1/TTIN/TTOU/PIPE; SIGTERM kills one (and it is
    respawned)."""
    d = preforkd.start(daemon={"workers": 2})
    workers = d.wait_workers(2)
    w = workers[0]
    sigs = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1,
            signal.SIGTTIN, signal.SIGTTOU, signal.SIGPIPE)
    for sig in sigs:
        os.kill(w, sig)
    # every signal is delivered (or discarded, when ignored) before we look
    H.wait_for(lambda: not any(H.signal_pending(w, s) for s in sigs), 5, "signal delivery")
    for _ in range(4):
        assert H.echo_ok(d.port, b"ok")
    assert sorted(d.worker_pids()) == sorted(workers)
    state = H.proc_stat(w)[0]
    assert state not in ("T", "t", "Z", "X"), "worker state %r after the signals" % state
    os.kill(w, signal.SIGTERM)
    new = d.wait_workers(2, exclude=[w])
    assert workers[1] in new
    d.wait_log(r"\(pid %d\) killed by signal 15" % w)


def test_stopped_worker_is_skipped(preforkd):
    """A worker that stops answering (SIGSTOP) does not hold up new connections:
    the others take them."""
    d = preforkd.start(daemon={"workers": 2})
    workers = d.wait_workers(2)
    os.kill(workers[1], signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        for i in range(10):
            assert H.echo_ok(d.port, b"while stopped %d" % i, timeout=5)
        took = time.monotonic() - t0
        print("10 connections with one worker stopped: %.2f s" % took)
    finally:
        os.kill(workers[1], signal.SIGCONT)
    assert sorted(d.worker_pids()) == sorted(workers)
    for _ in range(4):
        assert H.echo_ok(d.port, b"after")


def test_sigusr1_reopens_log_file(preforkd):
    """log_target = a file: after it is renamed, SIGUSR1 makes master and workers
    write to a new file of that name."""
    d = preforkd.new(daemon={"workers": 1})
    path = os.path.join(d.dir, "target.log")
    d.daemon_keys["log_target"] = path
    d.start()
    assert H.echo_ok(d.port, b"one")
    H.wait_for(lambda: "reason=client_eof" in _read(path), 5, "a close line in the log file")
    os.rename(path, path + ".1")
    d.signal(signal.SIGUSR1)
    H.wait_for(lambda: os.path.exists(path), 5, "the log file to be reopened", interval=0.01)
    # a worker line and a master line land in the new file
    assert H.echo_ok(d.port, b"two")
    H.wait_for(lambda: "reason=client_eof" in _read(path), 5, "a worker line in the new file")
    d.signal(signal.SIGTTIN)
    H.wait_for(lambda: "SIGTTIN" in _read(path) or "worker 1 gen 1 started" in _read(path), 5,
               "a master line in the new file")
    for p in (path, path + ".1"):
        bad = [l for l in _read(p).splitlines() if any(b in l for b in H.BAD_LOG)]
        assert not bad, bad


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_journal_stream_log_format(preforkd):
    """With JOURNAL_STREAM set, lines are `<P>[LEVEL] TAG: message`, no timestamp."""
    d = preforkd.new(daemon={"workers": 1})
    # JOURNAL_STREAM names stderr's device:inode, as systemd sets it
    open(d.logpath, "ab").close()
    st = os.stat(d.logpath)
    d.extra_env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    d.start()
    assert H.echo_ok(d.port, b"j")
    d.wait_log(r"reason=client_eof")
    lines = [l for l in d.log().splitlines() if l.strip()]
    assert lines
    rx = re.compile(r"^<[0-7]>\[(debug|info|notice|warning|error|crit)\] "
                    r"(master|worker \d+ gen \d+): ")
    odd = [l for l in lines if not rx.match(l)]
    assert not odd, "lines not in journal format: %r" % odd[:5]
    assert any(l.startswith("<5>[notice] master: ") for l in lines)
    assert any(l.startswith("<6>[info] worker 0 gen 1: close ") for l in lines)


def test_worker_that_cannot_start_is_not_respawned(binaries, tmp_dir):
    """Workers that fail at start (buffer_size = 16m, and no process may allocate
    16 MiB) exit with status 2, "failed while starting": the master respawns a slot
    with the back-off (a shortage may pass), gives it up after FATAL_TRIES such exits
    in a row and says so, and with no worker left says that too and exits 1 (never
    READY=1).  Outside the session: the workers' failure is logged at [crit]."""
    tries = H.src_define("proc.c", "FATAL_TRIES")
    d = H.Daemon(tmp_dir, daemon={"workers": 2}, listeners={"echo": {"buffer_size": "16m"}},
                 **H.alloc_limited())
    try:
        d._spawn()
        rc = d.wait_exit(10)
        log = d.log()
        assert rc == 1, "exit status %r; log:\n%s" % (rc, log)
        exited = re.findall(r"worker (\d) gen 1 \(pid \d+\) exited with status (\d+)", log)
        assert sorted(exited) == sorted([("0", "2"), ("1", "2")] * tries), log
        assert len(re.findall(r"\[crit\] worker \d gen 1: scratch buffer", log)) == 2 * tries, log
        assert len(re.findall(r"respawning worker \d in \d+ ms", log)) == 2 * (tries - 1), log
        assert len(re.findall(r"\[error\] master: worker \d failed to start %d times in a row "
                              r"\(status 2\): not respawning" % tries, log)) == 2, log
        assert re.search(r"\[error\] master: no worker of generation 1 can start and no other "
                         r"is left; stopping", log), log
        assert not [n for n in d.notes if "READY=1" in n], d.notes
    finally:
        bad = H.end_daemon(d)
    assert not bad, "sanitizer report:\n%s" % "\n".join(bad)
