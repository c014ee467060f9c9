"""Socket activation through systemd-socket-activate(1) (Debian package systemd).

systemd-socket-activate binds the sockets, waits for a first connection, then
execs preforkd with LISTEN_FDS, LISTEN_PID (its own pid, so preforkd's) and
LISTEN_FDNAMES.  preforkd must use those sockets, never bind its own, and never
close them on a reload.
"""

import os
import re

import pytest

import pfharness as H

pytestmark = pytest.mark.skipif(
    not os.access(H.SOCKET_ACTIVATE, os.X_OK),
    reason="%s missing (Debian package systemd; make check installs it)" % H.SOCKET_ACTIVATE)


def master_holds(d, inode):
    return inode in H.socket_inodes(d.pid)


def test_two_named_sockets_serve_and_survive_reload(preforkd):
    """--fdname=alpha:beta with [listener alpha] and [listener beta]: both serve echo,
    with the very sockets systemd passed, before and after a reload; the connection
    that woke the service up is served too."""
    d = preforkd.start(cls=H.ActivatedDaemon, passed=["alpha", "beta"],
                       listeners={"alpha": {}, "beta": {}}, daemon={"workers": 2})
    assert os.path.realpath("/proc/%d/exe" % d.pid) == os.path.realpath(H.PREFORKD), \
        "systemd-socket-activate did not exec preforkd in place"
    data = H.payload(30000)
    assert H.digest(H.exchange(d.trigger, data)) == H.digest(data), \
        "the connection made before preforkd started was not echoed"
    passed = d.passed_inodes()
    for name in ("alpha", "beta"):
        assert passed[name] is not None and master_holds(d, passed[name]), \
            "listener %s: the master does not hold the passed socket %r" % (name, passed)
        assert H.echo_ok(d.ports[name], H.payload(50000))
    # preforkd bound nothing of its own: one listening socket per port, the passed one
    listening = [(lport, ino) for lport, _, state, ino in H.tcp_table()
                 if state == H.TCP_LISTEN and lport in (d.ports["alpha"], d.ports["beta"])]
    assert sorted(ino for _, ino in listening) == sorted(passed.values()), listening

    for workers in (3, 1):
        d.daemon_keys["workers"] = workers
        d.write_config()
        status = d.reload()
        assert status is not None and "reload failed" not in status, status
        d.wait_workers(workers, timeout=15)
        assert d.passed_inodes() == passed, "a passed socket was replaced by a reload"
        for name in ("alpha", "beta"):
            assert master_holds(d, passed[name]), \
                "the master closed the passed socket %s on reload" % name
            for _ in range(4):
                assert H.echo_ok(d.ports[name], H.payload(20000))


def test_unknown_name_is_matched_by_address(preforkd):
    """A passed socket whose name has no [listener] goes to the listener with its address."""
    port = H.free_port()
    d = preforkd.start(cls=H.ActivatedDaemon, passed=["alpha", "other"],
                       passed_ports={"other": port},
                       listeners={"alpha": {}, "beta": {"listen": "127.0.0.1:%d" % port}},
                       daemon={"workers": 2})
    inode = d.passed_inodes()["other"]
    assert inode is not None and master_holds(d, inode)
    for p in (port, d.ports["alpha"]):
        assert H.echo_ok(p, H.payload(40000))
    status = d.reload()
    assert status is not None and "reload failed" not in status, status
    assert d.passed_inodes()["other"] == inode and master_holds(d, inode)
    assert H.echo_ok(port, H.payload(40000))


def activation_failure(tmp_dir, passed, listeners, timeout=10, daemon=None):
    """Launch a socket-activated preforkd that must fail at start: return (exit
    status, its stderr).  Not in the session: a failed start may log [crit]."""
    os.makedirs(tmp_dir, exist_ok=True)
    d = H.ActivatedDaemon(tmp_dir, passed=passed, listeners=listeners,
                          daemon=dict({"workers": 2}, **(daemon or {})))
    try:
        d.launch(may_exit=True)     # the trigger may be reset by the exit
        rc = d.wait_exit(timeout)
        if rc is None:
            pytest.fail("socket-activated preforkd still runs %ds after its start; log:\n%s"
                        % (timeout, d.log_tail()))
        log = d.log()
        bad = [l for l in log.splitlines() if any(b in l for b in H.BAD_LOG[1:])]
        assert not bad, "sanitizer report:\n%s" % log
        with pytest.raises(OSError):
            # the failed instance took its passed sockets with it
            H.connect(d.ports[passed[0]], timeout=1).close()
        return rc, log
    finally:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(timeout=10)
        d.kill_leftovers()
        d.close()


def test_passed_socket_matching_no_listener_fails(binaries, tmp_dir):
    """alpha and beta passed, only [listener alpha] configured: exit 1, the message
    names the socket beta."""
    rc, log = activation_failure(tmp_dir, ["alpha", "beta"], {"alpha": {}})
    assert rc == 1, "exit status %r; log:\n%s" % (rc, log)
    assert "preforkd: socket beta (fd 4) passed by systemd matches no [listener]" in log, log


def test_listener_without_passed_socket_fails(binaries, tmp_dir):
    """Socket-activated with only alpha passed, [listener beta] gets nothing: exit 1,
    naming the listener at the line of its listen key, as for a bind that fails
    (preforkd does not bind it itself)."""
    rc, log = activation_failure(tmp_dir, ["alpha"], {"alpha": {}, "beta": {}})
    assert rc == 1, "exit status %r; log:\n%s" % (rc, log)
    assert re.search(r"\.conf:\d+: listen: listener beta: no socket passed by systemd", log), log


def test_reuseport_refuses_passed_sockets(binaries, tmp_dir):
    """dispatch = reuseport needs a socket per worker; systemd passes one: exit 1,
    saying so."""
    rc, log = activation_failure(tmp_dir, ["alpha"], {"alpha": {}},
                                 daemon={"dispatch": "reuseport"})
    assert rc == 1, "exit status %r; log:\n%s" % (rc, log)
    assert "listener alpha: dispatch = reuseport needs a socket per worker" in log, log


def test_handoff_serves_passed_socket(preforkd):
    """dispatch = handoff works with a passed socket: the master accepts on it."""
    d = preforkd.start(cls=H.ActivatedDaemon, passed=["alpha"], listeners={"alpha": {}},
                       daemon={"workers": 2, "dispatch": "handoff"})
    data = H.payload(30000)
    assert H.digest(H.exchange(d.trigger, data)) == H.digest(data)
    for _ in range(6):
        assert H.echo_ok(d.ports["alpha"], H.payload(20000))


def test_removed_listener_parks_passed_socket(preforkd):
    """A reload that drops [listener beta] keeps its passed socket open in the master;
    putting beta back serves from that same socket."""
    d = preforkd.start(cls=H.ActivatedDaemon, passed=["alpha", "beta"],
                       listeners={"alpha": {}, "beta": {}}, daemon={"workers": 2})
    passed = d.passed_inodes()
    beta = dict(d.listeners["beta"])
    beta_port = d.ports["beta"]
    d.remove_listener("beta")
    d.write_config()
    status = d.reload()
    assert status is not None and "reload failed" not in status, status
    assert master_holds(d, passed["beta"]), "the master closed the passed socket beta"
    assert H.listen_inode(beta_port) == passed["beta"]
    assert H.echo_ok(d.ports["alpha"], H.payload(20000))

    d.set_listener("beta", **beta)
    d.write_config()
    status = d.reload()
    assert status is not None and "reload failed" not in status, status
    assert d.passed_inodes() == passed
    for name in ("alpha", "beta"):
        assert master_holds(d, passed[name])
        assert H.echo_ok(d.ports[name], H.payload(20000))
