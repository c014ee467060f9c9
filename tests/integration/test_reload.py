"""Reload (SIGHUP): under load, with a bad config, adding and removing listeners."""

import re
import socket
import subprocess
import time

import pytest

import pfharness as H


def current_gen_pids(d):
    gen = d.current_generation()
    return gen, {pid for pid, (_, g) in d.started_workers().items() if g == gen}


@pytest.mark.timeout_s(120)
def test_reload_under_load_loses_nothing(preforkd, pfload_bin):
    """pfload churn at >= 2000 connections/s while 20 reloads change the worker count
    among 1..4: no failed connect, no reset, no mismatch; the old generations exit."""
    d = preforkd.start(daemon={"workers": 2, "log_level": "notice", "drain_timeout": "10s"})
    load = H.Pfload("churn", d.port, "-c", 32, "-s", 64, "-d", 60, "-n", 16, "-t", 10000)
    try:
        counts_seq = [3, 1, 4, 2]     # every reload changes the worker count
        statuses = []
        t0 = time.monotonic()
        for i in range(20):
            assert load.running(), "pfload ended early: %r" % load.wait()
            d.daemon_keys["workers"] = counts_seq[i % 4]
            d.write_config()
            statuses.append(d.reload(timeout=15))
            # keep each generation under load for a moment before the next reload
            time.sleep(0.25)
        reload_time = time.monotonic() - t0
        counts = load.stop()
    finally:
        load.kill()
    print("pfload: %r; 20 reloads in %.2f s" % (counts, reload_time))
    failed = [s for s in statuses if s and "reload failed" in s]
    assert not failed, "a reload failed: %r" % failed[:3]
    assert counts["failed_connects"] == 0, counts
    assert counts["resets"] == 0, counts
    assert counts["early_eofs"] == 0, counts
    assert counts["timeouts"] == 0, counts
    assert counts["mismatches"] == 0, counts
    min_rate = 500 if H.ASAN else 2000
    assert counts["rate"] >= min_rate, "load too light to mean anything: %r" % counts
    assert counts["completed"] > 0
    # 21 generations: only the last one's workers remain, the old ones exited
    want = d.daemon_keys["workers"]

    def settled():
        gen, pids = current_gen_pids(d)
        kids = set(d.worker_pids())
        return gen == 21 and len(pids) == want and kids == pids
    try:
        H.wait_for(settled, 15, "only generation 21's %d workers to remain" % want, interval=0.05)
    except H.HarnessError as e:
        gen, pids = current_gen_pids(d)
        raise AssertionError("%s: generation %r, its workers %r, children %r"
                             % (e, gen, sorted(pids), sorted(d.worker_pids())))
    assert H.echo_ok(d.port, H.payload(70000))
    assert reload_time < 60


def test_bad_config_on_reload_keeps_old_workers(preforkd, binaries):
    """A config error on SIGHUP changes nothing: the same workers serve, the error names
    FILE:LINE in the log, in -t output and in the sd_notify STATUS."""
    d = preforkd.start(daemon={"workers": 2})
    before = sorted(d.wait_workers(2))
    good = d.config_text()
    lines = good.splitlines()
    # an unknown key right after the listener's header
    at = next(i for i, l in enumerate(lines) if l.startswith("[listener")) + 1
    lines.insert(at, "no_such_key = 1")
    bad_line = at + 1
    d.write_config("\n".join(lines) + "\n")
    where = "%s:%d:" % (d.conf, bad_line)
    log_at = d.log_size()
    status = d.reload()
    assert status is not None and "reload failed" in status, "STATUS after a bad reload: %r" % status
    assert where in status, "STATUS %r does not name %s" % (status, where)
    d.wait_log(r"reload failed, keeping generation 1", start=log_at)
    assert where in d.log()[log_at:], "log does not name %s:\n%s" % (where, d.log_tail())
    assert sorted(d.worker_pids()) == before, "workers changed after a failed reload"
    for _ in range(4):
        assert H.echo_ok(d.port, H.payload(20000))
    assert sorted(d.worker_pids()) == before
    # preforkd -t names the same place and exits 1
    r = subprocess.run([binaries, "-t", "-c", d.conf], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert where in r.stderr, "-t output does not name %s: %r" % (where, r.stderr)
    # a good config again: the reload goes through (generation 2)
    d.write_config(good)
    status = d.reload()
    assert "reload failed" not in (status or "")
    d.wait_log(r"generation 2 ready: 2 workers")
    d.wait_workers(2, exclude=before)
    assert H.echo_ok(d.port, b"after")


def test_reload_bind_failure_names_file_and_line(preforkd):
    """A listener added by reload whose port is taken fails the reload, and the error
    names FILE:LINE of its listen key (log and STATUS), like the file's other errors;
    the running generation goes on serving."""
    d = preforkd.start(daemon={"workers": 1}, listeners={"a": {}})
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        d.set_listener("b", listen="127.0.0.1:%d" % port)
        d.write_config()
        line = d.config_text().splitlines().index("listen = 127.0.0.1:%d" % port) + 1
        want = "%s:%d: listen: listener b: bind 127.0.0.1:%d: Address already in use" % (
            d.conf, line, port)
        log_at = d.log_size()
        status = d.reload()
        assert status is not None and status.endswith("reload failed: " + want), status
        d.wait_log(r"(?m)\[error\] master: %s$" % re.escape(want), start=log_at)
        d.wait_log(r"reload failed, keeping generation 1", start=log_at)
    finally:
        taken.close()
    assert H.echo_ok(d.ports["a"], H.payload(5000))


def test_listener_added_and_removed_by_reload(preforkd):
    """Adding a [listener] by reload opens its port; removing it closes it; an unchanged
    listener keeps its very socket (same inode in the master)."""
    d = preforkd.start(daemon={"workers": 2}, listeners={"a": {}})
    pa = d.ports["a"]
    ino_a = H.listen_inode(pa)
    assert ino_a is not None and ino_a in H.socket_inodes(d.pid), \
        "listener a's socket not found in the master"
    d.set_listener("b")
    pb = d.ports["b"]
    assert H.port_refuses(pb)
    d.write_config()
    status = d.reload()
    assert "reload failed" not in (status or ""), status
    assert H.echo_ok(pb, H.payload(5000))
    assert H.echo_ok(pa, H.payload(5000))
    assert H.listen_inode(pa) == ino_a and ino_a in H.socket_inodes(d.pid), \
        "listener a was reopened by a reload that did not change it"
    d.remove_listener("b")
    d.write_config()
    status = d.reload()
    assert "reload failed" not in (status or ""), status
    H.wait_for(lambda: H.port_refuses(pb), 5, "removed listener's port %d to refuse" % pb,
               interval=0.05)
    assert H.listen_inode(pb) is None
    assert H.listen_inode(pa) == ino_a and ino_a in H.socket_inodes(d.pid)
    assert H.echo_ok(pa, H.payload(5000))


def test_old_generation_finishes_its_connections(preforkd):
    """After a reload the old generation keeps serving the connections it holds (and
    takes no new ones); its worker exits once they are closed."""
    d = preforkd.start(daemon={"workers": 1, "drain_timeout": "30s"})
    (old,) = d.wait_workers(1)
    held = H.connect(d.port)
    assert H.exchange(held, b"before") == b"before"
    status = d.reload()
    assert "reload failed" not in (status or ""), status
    d.wait_log(r"generation 2 ready: 1 workers")
    gen, new = current_gen_pids(d)
    assert gen == 2 and old not in new
    # the old worker is still there, holding our connection, which still echoes
    assert old in d.worker_pids()
    data = H.payload(200000)
    assert H.digest(H.exchange(held, data)) == H.digest(data)
    # new connections go to the new generation
    fresh = H.connect(d.port)
    assert H.exchange(fresh, b"new") == b"new"
    owner = H.worker_of_connections(d, d.port, [fresh.getsockname()[1], held.getsockname()[1]])
    assert owner.get(fresh.getsockname()[1]) in new, owner
    assert owner.get(held.getsockname()[1]) == old, owner
    held.close()
    H.wait_for(lambda: old not in d.worker_pids(), 5, "the old worker to exit", interval=0.02)
    d.wait_log(r"\(pid %d\) exited with status 0" % old)
    assert H.exchange(fresh, b"still") == b"still"
    fresh.close()


def test_drain_timeout_cuts_old_connections(preforkd):
    """A connection the old generation still holds at drain_timeout is closed
    (reason=drain_deadline) and the old worker exits."""
    d = preforkd.start(daemon={"workers": 1, "drain_timeout": "1s"})
    (old,) = d.wait_workers(1)
    held = H.connect(d.port)
    assert H.exchange(held, b"x") == b"x"
    d.reload()
    t0 = time.monotonic()
    took = H.wait_closed_by_peer(held, 5)
    held.close()
    assert took <= 1.0 + 1.0 * H.SLOW, "cut after %.2f s (drain_timeout 1s)" % took
    assert time.monotonic() - t0 >= 0.8, "cut before drain_timeout"
    H.wait_for(lambda: old not in d.worker_pids(), 5, "the old worker to exit", interval=0.02)
    d.wait_log(r"reason=drain_deadline")
    assert H.echo_ok(d.port, b"y")


def test_max_draining_closes_the_oldest_generation(preforkd):
    """With max_draining = 2, a third draining generation makes the oldest one
    close at once; the two newer draining generations keep their connections."""
    d = preforkd.start(daemon={"workers": 1, "drain_timeout": "30s", "max_draining": 2})
    socks = []
    pids = []
    for gen in (1, 2, 3):
        d.wait_log(r"generation %d ready: 1 workers" % gen)
        s = H.connect(d.port)
        assert H.exchange(s, b"g%d" % gen) == b"g%d" % gen
        owner = H.worker_of_connections(d, d.port, [s.getsockname()[1]])
        pids.append(owner[s.getsockname()[1]])
        socks.append(s)
        status = d.reload()
        assert "reload failed" not in (status or ""), status
    # generations 1, 2, 3 draining: the oldest (1) is closed at once
    H.wait_closed_by_peer(socks[0], 5)
    H.wait_for(lambda: pids[0] not in d.worker_pids(), 5, "generation 1's worker to exit")
    for i in (1, 2):
        assert pids[i] in d.worker_pids(), "generation %d's worker is gone" % (i + 1)
        assert H.exchange(socks[i], b"still %d" % i) == b"still %d" % i
    for s in socks:
        s.close()
    assert H.echo_ok(d.port, b"z")


def test_reload_replaces_a_generation_that_never_became_ready(binaries, tmp_dir):
    """A reload to buffer_size = 16m where no process may allocate 16 MiB: generation
    2's workers fail at start, so it never becomes ready.  A reload with the file
    fixed must replace it at once (not be queued until generation 2 is ready, which
    it never is): generation 3 becomes ready and serves, and generation 1 still
    finishes its held connection.  Outside the session: the failure logs [crit]."""
    import signal
    d = H.Daemon(tmp_dir, daemon={"workers": 2, "drain_timeout": "30s"},
                 listeners={"echo": {"buffer_size": "16k"}}, **H.alloc_limited())
    held = None
    try:
        d.start()
        held = H.connect(d.port)
        assert H.exchange(held, b"gen 1") == b"gen 1"
        d.listeners["echo"]["buffer_size"] = "16m"
        d.write_config()
        log_at = d.log_size()
        d.signal(signal.SIGHUP)
        d.wait_log(r"worker \d gen 2 \(pid \d+\) exited", start=log_at)
        d.listeners["echo"]["buffer_size"] = "16k"
        d.write_config()
        status = d.reload()
        assert "reload failed" not in (status or ""), status
        d.wait_log(r"generation 3 ready: 2 workers", start=log_at)
        assert "reload queued" not in d.log()[log_at:], d.log_tail()
        for i in range(4):
            assert H.echo_ok(d.port, H.payload(20000, seed=i))
        assert H.exchange(held, b"still gen 1") == b"still gen 1"
        held.close()
        held = None
        assert d.stop() == 0, d.log_tail()
    finally:
        if held is not None:
            held.close()
        bad = H.end_daemon(d)
    assert not bad, "sanitizer report:\n%s" % "\n".join(bad)
