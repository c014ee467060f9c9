"""sd_notify: what the master tells a test-owned NOTIFY_SOCKET (a path, or @abstract).

READY=1 / RELOADING=1 + MONOTONIC_USEC / STOPPING=1 in order, the STATUS of a
failed reload, EXTEND_TIMEOUT_USEC while a graceful stop drains, STATUS figures
against the connections the test holds, and WATCHDOG=1 pings.
"""

import os
import re
import signal
import statistics
import time

import pytest

import pfharness as H

RE_STATUS = re.compile(
    r"^gen (\d+): (\d+) workers, (\d+) connections \((\d+(?:/\d+)*)\), "
    r"(\d+) draining generations with (\d+) connections, (\d+) conn/s, "
    r"last reload: (none|gen \d+ ok|failed: .+)$")


def states(d, start=0):
    return [k for _, k, _ in d.state_notes(start)]


def is_ready(f):
    return f.get("READY") == "1"


def parse_status(text):
    m = RE_STATUS.match(text or "")
    assert m, "STATUS does not follow the documented format: %r" % text
    return {
        "gen": int(m.group(1)), "workers": int(m.group(2)), "conns": int(m.group(3)),
        "per_worker": [int(x) for x in m.group(4).split("/")],
        "draining": int(m.group(5)), "draining_conns": int(m.group(6)),
        "rate": int(m.group(7)), "last_reload": m.group(8),
    }


def wait_status(d, pred, timeout, what):
    """Wait until the latest STATUS has the figures' format and satisfies
    pred(parsed); return it (parsed).  (READY=1 after a failed reload carries
    another STATUS, "reload failed: ...", until the next figures.)"""
    def ok():
        st = d.status()
        if st is None or not RE_STATUS.match(st):
            return None
        p = parse_status(st)
        return p if pred(p) else None
    try:
        return H.wait_for(ok, timeout, what, interval=0.02)
    except H.HarnessError as e:
        raise H.HarnessError("%s; latest STATUS %r" % (e, d.status()))


def assert_from_master(d):
    senders = {p for p in d.note_pids if p is not None}
    assert senders <= {d.pid}, "notes from processes other than the master %d: %r" % (
        d.pid, senders)


def watchdog_pings(d, seconds):
    """Times of the WATCHDOG=1 notes received during the next `seconds`."""
    first = d.notes_for(seconds)
    return [d.note_times[i] for i in range(first, len(d.notes))
            if H.parse_note(d.notes[i]).get("WATCHDOG") == "1"]


def test_ready_reloading_ready_stopping(preforkd):
    """READY=1 at start, then on SIGHUP RELOADING=1 with a CLOCK_MONOTONIC stamp and
    READY=1 once generation 2 is up, then STOPPING=1 on SIGTERM: in that order,
    each once, all from the master."""
    d = preforkd.start(daemon={"workers": 2})
    d.wait_workers(2)
    d.drain_notes()
    assert states(d) == ["READY"], "notes at start: %r" % d.notes
    _, _, f = d.state_notes()[0]
    st = parse_status(f.get("STATUS"))
    assert (st["gen"], st["workers"], st["last_reload"]) == (1, 2, "none"), f

    start = d.drain_notes()
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    d.signal(signal.SIGHUP)
    i, f = d.wait_note(lambda f: f.get("RELOADING") == "1", 10, "RELOADING=1", start=start)
    after = time.clock_gettime(time.CLOCK_MONOTONIC)
    assert "READY" not in f and "STOPPING" not in f, "RELOADING=1 came with %r" % f
    assert re.fullmatch(r"\d+", f.get("MONOTONIC_USEC", "")), "RELOADING=1 without a " \
        "MONOTONIC_USEC: %r" % d.notes[i]
    stamp = int(f["MONOTONIC_USEC"]) / 1e6
    # the same clock on the same machine: the stamp lies between the signal and its note
    assert before - 1.0 <= stamp <= after + 1.0, \
        "MONOTONIC_USEC %.3f s, CLOCK_MONOTONIC was %.3f s .. %.3f s" % (stamp, before, after)
    _, f = d.wait_note(is_ready, 10, "READY=1 after the reload", start=i + 1)
    st = parse_status(f.get("STATUS"))
    assert (st["gen"], st["workers"], st["last_reload"]) == (2, 2, "gen 2 ok"), f
    assert states(d) == ["READY", "RELOADING", "READY"], d.notes
    assert H.echo_ok(d.port, H.payload(10000))

    assert d.stop() == 0
    d.wait_note(lambda f: f.get("STOPPING") == "1", 2, "STOPPING=1", check_alive=False)
    d.drain_notes()
    assert states(d) == ["READY", "RELOADING", "READY", "STOPPING"], d.notes
    assert_from_master(d)


def test_failed_reload_reports_file_line(preforkd):
    """A bad config on SIGHUP: RELOADING=1 then READY=1 with
    STATUS=reload failed: FILE:LINE: key: ...; the periodic STATUS keeps saying so
    (still generation 1); a good reload afterwards reports gen 2 ok."""
    d = preforkd.start(daemon={"workers": 2})
    lines = d.config_text().splitlines()
    at = next(i for i, l in enumerate(lines) if l.startswith("workers ="))
    lines[at] = "workers = 0"
    d.write_config("\n".join(lines) + "\n")
    where = "%s:%d: workers: " % (d.conf, at + 1)
    start = d.drain_notes()
    status = d.reload()
    assert states(d, start) == ["RELOADING", "READY"], d.notes[start:]
    assert status is not None and status.startswith("reload failed: "), status
    assert where in status, "STATUS %r does not name %r" % (status, where)
    # the next figures carry the failure, for generation 1
    wait_status(d, lambda p: p["gen"] == 1 and p["last_reload"].startswith("failed: " + where),
                5, "a STATUS with gen 1 and last reload: failed: %s" % where)
    assert H.echo_ok(d.port, H.payload(5000))

    d.write_config()
    status = d.reload()
    st = parse_status(status)
    assert (st["gen"], st["last_reload"]) == (2, "gen 2 ok"), status
    assert H.echo_ok(d.port, H.payload(5000))
    assert_from_master(d)


def test_stopping_on_immediate_stop(preforkd):
    d = preforkd.start(daemon={"workers": 2})
    assert d.stop(signal.SIGQUIT) == 0
    d.wait_note(lambda f: f.get("STOPPING") == "1", 2, "STOPPING=1 after SIGQUIT",
                check_alive=False)
    d.drain_notes()
    assert states(d) == ["READY", "STOPPING"], d.notes


@pytest.mark.timeout_s(60)
def test_extend_timeout_while_draining(preforkd):
    """A graceful stop held up by an open connection sends EXTEND_TIMEOUT_USEC about
    once a second: the time left to shutdown_timeout plus 5 s."""
    timeout_s = 4.0
    d = preforkd.start(daemon={"workers": 2, "shutdown_timeout": "4s"})
    s = H.connect(d.port)
    try:
        assert H.exchange(s, b"held open\n") == b"held open\n"
        start = d.drain_notes()
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        i, _ = d.wait_note(lambda f: f.get("STOPPING") == "1", 5, "STOPPING=1", start=start)
        # the held connection is still served while the stop waits for it
        data = H.payload(20000)
        assert H.digest(H.exchange(s, data)) == H.digest(data)
        # listen until 2.8 s into the stop, well inside shutdown_timeout
        d.notes_for(max(0.0, t0 + 2.8 - time.monotonic()))
        ext = [(d.note_times[k], H.parse_note(d.notes[k])) for k in range(i, len(d.notes))]
        ext = [(t, f["EXTEND_TIMEOUT_USEC"]) for t, f in ext if "EXTEND_TIMEOUT_USEC" in f]
        assert len(ext) >= 2, "EXTEND_TIMEOUT_USEC notes in the first 2.8 s of a stop: " \
            "%r (all notes since STOPPING: %r)" % (ext, d.notes[i:])
        for t, v in ext:
            assert re.fullmatch(r"\d+", v), "EXTEND_TIMEOUT_USEC=%r" % v
            left = timeout_s - (t - t0)          # at most this much was left when it was sent
            got = int(v) / 1e6
            assert left + 5 - 1.0 <= got <= timeout_s + 5 + 0.5, \
                "EXTEND_TIMEOUT_USEC %.3f s, %.3f s into the stop (shutdown_timeout %.0f s " \
                "+ 5 s grace)" % (got, t - t0, timeout_s)
        gaps = [b[0] - a[0] for a, b in zip(ext, ext[1:])]
        assert all(0.4 <= g <= 1.8 for g in gaps), "EXTEND_TIMEOUT_USEC gaps %r s" % gaps
        vals = [int(v) for _, v in ext]
        assert vals == sorted(vals, reverse=True), "EXTEND_TIMEOUT_USEC grows: %r" % vals
        assert d.proc.poll() is None, "master exited with a connection still open"
    finally:
        s.close()
    rc = d.wait_exit(timeout_s + 3)
    assert rc == 0, "exit status %r after the last connection closed" % rc
    d.drain_notes()
    assert states(d)[-1] == "STOPPING" and "READY" not in states(d, i), d.notes
    assert_from_master(d)


def test_status_counts_held_connections(preforkd):
    """STATUS figures follow the connections the test holds: per worker (by slot),
    in total, and those of a draining generation after a reload."""
    d = preforkd.start(daemon={"workers": 2, "drain_timeout": "20s"})
    d.wait_workers(2)
    slot = {pid: sl for pid, (sl, gen) in d.started_workers().items() if gen == 1}
    socks = []
    try:
        for i in range(6):
            s = H.connect(d.port)
            msg = b"connection %d\n" % i
            assert H.exchange(s, msg) == msg
            socks.append(s)
        owner = H.worker_of_connections(d, d.port, [s.getsockname()[1] for s in socks])
        assert len(owner) == 6, "could not map every connection to a worker: %r" % owner
        per_slot = [0, 0]
        for pid in owner.values():
            per_slot[slot[pid]] += 1
        st = wait_status(d, lambda p: p["conns"] == 6, 5, "STATUS with 6 connections")
        assert (st["gen"], st["workers"], st["per_worker"]) == (1, 2, per_slot), \
            "STATUS %r, connections per slot %r" % (d.status(), per_slot)
        assert (st["draining"], st["draining_conns"]) == (0, 0), d.status()

        for s in socks[:4]:
            s.close()
        del socks[:4]
        st = wait_status(d, lambda p: p["conns"] == 2, 5, "STATUS with 2 connections")
        assert sum(st["per_worker"]) == 2, d.status()

        # the 2 left open belong to generation 1, which drains after a reload
        status = d.reload()
        assert parse_status(status)["gen"] == 2, status
        st = wait_status(d, lambda p: p["gen"] == 2 and p["draining_conns"] == 2, 5,
                         "STATUS with 1 draining generation holding 2 connections")
        assert (st["conns"], st["per_worker"], st["draining"]) == (0, [0, 0], 1), d.status()
        for s in socks:
            data = H.payload(3000)
            assert H.digest(H.exchange(s, data)) == H.digest(data)
            s.close()
        socks = []
        wait_status(d, lambda p: p["draining"] == 0 and p["draining_conns"] == 0, 10,
                    "STATUS with no draining generation")
    finally:
        for s in socks:
            s.close()
    # a burst of connections shows as a rate
    for _ in range(100):
        with H.connect(d.port) as s:
            assert H.exchange(s, b"r") == b"r"
    wait_status(d, lambda p: p["rate"] >= 20, 5, "STATUS with >= 20 conn/s after 100 connections")
    assert_from_master(d)


def test_status_at_most_about_once_a_second(preforkd):
    """Figures changing all the time give about one STATUS a second, not one per change."""
    d = preforkd.start(daemon={"workers": 2})
    first = d.drain_notes()
    t0 = time.monotonic()
    held = []
    try:
        while time.monotonic() - t0 < 3.0:
            s = H.connect(d.port)
            assert H.exchange(s, b"x") == b"x"
            held.append(s)
            if len(held) > 5:
                held.pop(0).close()
            d.drain_notes()
    finally:
        for s in held:
            s.close()
    d.drain_notes()
    window = [H.parse_note(d.notes[i]) for i in range(first, len(d.notes))
              if d.note_times[i] - t0 <= 3.0]
    updates = [f["STATUS"] for f in window if "STATUS" in f]
    assert 1 <= len(updates) <= 5, "%d STATUS updates in 3 s: %r" % (len(updates), updates)


def test_watchdog_pings(preforkd):
    """WATCHDOG_USEC=400000: WATCHDOG=1 about every 200 ms."""
    d = preforkd.start(daemon={"workers": 2}, env={"WATCHDOG_USEC": "400000"})
    pings = watchdog_pings(d, 2.0)
    assert 6 <= len(pings) <= 14, "%d WATCHDOG=1 in 2 s (WATCHDOG_USEC=400000)" % len(pings)
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert 0.1 <= statistics.median(gaps) <= 0.35, "WATCHDOG=1 gaps %r" % gaps
    assert_from_master(d)


def test_watchdog_pid_is_honoured(preforkd):
    """WATCHDOG_PID naming another process: no pings; naming the master: pings."""
    other = preforkd.start(daemon={"workers": 1},
                           env={"WATCHDOG_USEC": "400000", "WATCHDOG_PID": str(os.getpid())})
    assert watchdog_pings(other, 1.5) == [], "pinged although WATCHDOG_PID=%d" % os.getpid()
    # the master's own pid, which only the shell that execs it knows
    mine = preforkd.start(
        daemon={"workers": 1}, env={"WATCHDOG_USEC": "400000"},
        wrap=lambda d: ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh"])
    pings = watchdog_pings(mine, 1.5)
    assert 4 <= len(pings) <= 11, "%d WATCHDOG=1 in 1.5 s with WATCHDOG_PID = the master" % len(
        pings)


@pytest.mark.timeout_s(60)
def test_watchdog_stops_while_a_worker_hangs(preforkd):
    """No WATCHDOG=1 while a worker of the current generation misses its heartbeats;
    the pings resume once it answers again."""
    d = preforkd.start(daemon={"workers": 2}, env={"WATCHDOG_USEC": "400000"})
    victim = d.wait_workers(2)[0]
    assert len(watchdog_pings(d, 1.0)) >= 3
    os.kill(victim, signal.SIGSTOP)
    try:
        H.wait_for(lambda: watchdog_pings(d, 1.0) == [], 15,
                   "a whole second without WATCHDOG=1 while worker %d is stopped" % victim,
                   interval=0)
    finally:
        os.kill(victim, signal.SIGCONT)
    H.wait_for(lambda: watchdog_pings(d, 0.5), 10, "WATCHDOG=1 again after SIGCONT", interval=0)
    assert H.echo_ok(d.port, H.payload(5000))


def test_no_watchdog_without_watchdog_usec(preforkd):
    d = preforkd.start(daemon={"workers": 1})
    assert watchdog_pings(d, 1.0) == []


def test_abstract_notify_socket(preforkd):
    """NOTIFY_SOCKET=@name: the same messages reach a socket in the abstract namespace."""
    d = preforkd.start(daemon={"workers": 2}, notify_abstract=True)
    assert d.notify.getsockname() in ("\0" + d.notify_name, b"\0" + d.notify_name.encode())
    assert states(d) == ["READY"], d.notes
    status = d.reload()
    assert parse_status(status)["gen"] == 2, status
    assert H.echo_ok(d.port, H.payload(5000))
    assert d.stop() == 0
    d.wait_note(lambda f: f.get("STOPPING") == "1", 2, "STOPPING=1", check_alive=False)
    assert states(d) == ["READY", "RELOADING", "READY", "STOPPING"], d.notes
    assert_from_master(d)
