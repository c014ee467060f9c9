"""The operator's state of backends through the control socket: set backend ...
drain|maint|ready and set weight.  New connections avoid a drained backend and one in
maintenance while the connections open to it finish; maintenance stops its health
checks (a backend that counts the check connections shows it); a weight changes a
roundrobin split; the settings are kept across a reload for a backend with the same
address, and reset when the backend goes away; every bad command gets one error line."""

import collections
import json
import os
import socket

import pytest

import pfharness as H


def idents(backends, n):
    """n echo backends that introduce themselves: b"B0\\n", b"B1\\n", ..."""
    return [backends.echo(b"B%d\n" % i) for i in range(n)]


def open_via(port, timeout=5.0):
    """A connection through the proxy on which the backend introduced itself and
    echoed a probe: (socket, ident)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * H.SLOW)
    try:
        ident = H.read_line(s, timeout, 64, "ident line").strip().decode()
        probe = b"probe %d" % s.getsockname()[1]
        assert H.exchange(s, probe, timeout=timeout) == probe
    except BaseException:
        s.close()
        raise
    return s, ident


def reach(port):
    """Which backend a new connection reaches (its ident); the connection is closed."""
    s, ident = open_via(port)
    s.close()
    return ident


def control_path(d):
    return os.path.join(d.dir, "control.sock")


def ctl(d, line, timeout=5.0):
    """Send one command line on d's control socket; the whole answer (to EOF), as text."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout * H.SLOW)
    try:
        s.connect(control_path(d))
        s.sendall(line.encode() + b"\n")
        out = H.read_until_eof(s, timeout=timeout, limit=1 << 20)
    finally:
        s.close()
    return out.decode()


def ctl_ok(d, line):
    out = ctl(d, line)
    assert not out.startswith("error"), "%r answered %r" % (line, out)
    return out


def backend_rows(d):
    """The backends of `show stats json`, by address."""
    v = json.loads(ctl_ok(d, "show stats json"))
    return {b["address"]: b for b in v["backends"]}


def start_ctl(preforkd, blist, workers=1, **keys):
    """A daemon with a control socket in its directory, one proxy listener "web"."""
    d = preforkd.new(daemon={"workers": workers},
                     listeners={"web": H.proxy_listener(blist, **keys)})
    d.daemon_keys["control"] = control_path(d)
    return d.start()


def until_both_reached(d, want, n=50):
    """New connections until each ident in want was reached (n at most); the idents."""
    seen = []
    for _ in range(n):
        seen.append(reach(d.port))
        if want <= set(seen):
            break
    return seen


def test_drain_new_connections_avoid_it_open_ones_finish(backends, preforkd):
    """Two workers, roundrobin over B0 and B1: a connection held open to B1; drain B1:
    40 new connections all reach B0, the held one still exchanges bytes, show stats
    says drain by the operator; ready: B1 is reached again."""
    b = idents(backends, 2)
    d = start_ctl(preforkd, b, workers=2, balance="roundrobin", retries=0)
    held = []
    while not any(i == "B1" for _, i in held):
        held.append(open_via(d.port))
        assert len(held) < 20, "B1 never reached"
    s1 = next(s for s, i in held if i == "B1")
    ctl_ok(d, "set backend web %s drain" % b[1].spec)
    got = collections.Counter(reach(d.port) for _ in range(40))
    assert got == {"B0": 40}, got
    data = H.payload(100000, seed=1)
    assert H.exchange(s1, data, timeout=10) == data, "the connection open to B1 was cut"
    row = backend_rows(d)[b[1].spec]
    assert (row["state"], row["why"]) == ("drain", "operator"), row
    assert row["active"] >= 1, row
    assert backend_rows(d)[b[0].spec]["state"] == "up"
    d.wait_log(r"listener web: backend %s set to drain by the operator" % b[1].spec)

    ctl_ok(d, "set backend web %s ready" % b[1].spec)
    seen = until_both_reached(d, {"B0", "B1"})
    assert "B1" in seen, seen
    assert backend_rows(d)[b[1].spec]["state"] == "up"
    for s, _ in held:
        s.close()


def test_maint_stops_health_checks(backends, preforkd):
    """check_interval = 100ms over B0 and B1: maint B1: new connections avoid it and its
    check connections stop (B0 gets 10 more checks meanwhile, B1 one at most: one in
    flight when the command came); ready: B1 is checked again and reached again."""
    b = idents(backends, 2)
    d = start_ctl(preforkd, b, workers=2, retries=0, check_interval="100ms",
                  check_timeout="1s", rise=1, fall=1)
    H.wait_for(lambda: b[1].accepted >= 2, 10 * H.SLOW, "checks of B1")
    ctl_ok(d, "set backend web %s maint" % b[1].spec)
    c1 = b[1].accepted
    c0 = b[0].accepted
    got = collections.Counter(reach(d.port) for _ in range(20))
    assert got == {"B0": 20}, got
    H.wait_for(lambda: b[0].accepted >= c0 + 20 + 10, 20 * H.SLOW, "10 more checks of B0")
    assert b[1].accepted <= c1 + 1, "B1 in maint was checked %d more times" % (b[1].accepted - c1)
    row = backend_rows(d)[b[1].spec]
    assert (row["state"], row["why"]) == ("maint", "operator"), row
    d.wait_log(r"backend %s: checks stopped \(maintenance\)" % b[1].spec.replace(".", r"\."))

    c1 = b[1].accepted
    ctl_ok(d, "set backend web %s ready" % b[1].spec)
    H.wait_for(lambda: b[1].accepted >= c1 + 3, 10 * H.SLOW, "B1 checked again after ready")
    assert backend_rows(d)[b[1].spec]["check"]["last"] == "passed"
    assert "B1" in until_both_reached(d, {"B0", "B1"})


def test_weight_changes_the_roundrobin_split(backends, preforkd):
    """One worker, roundrobin over B0 and B1 (weights 1:1): 20 connections split 10:10;
    set weight B0 3: the next 40 split 30:10; show stats says weight 3."""
    b = idents(backends, 2)
    d = start_ctl(preforkd, b, workers=1, balance="roundrobin")
    got = collections.Counter(reach(d.port) for _ in range(20))
    assert got == {"B0": 10, "B1": 10}, got
    ctl_ok(d, "set weight web %s 3" % b[0].spec)
    got = collections.Counter(reach(d.port) for _ in range(40))
    assert got == {"B0": 30, "B1": 10}, got
    assert backend_rows(d)[b[0].spec]["weight"] == 3
    assert backend_rows(d)[b[1].spec]["weight"] == 1
    d.wait_log(r"backend %s weight set to 3 by the operator" % b[0].spec)


def test_kept_across_reload(backends, preforkd):
    """Drain B1 and weight B0 3, then a reload that adds B2 (weight 1) and moves B1 to
    the end: the new generation still avoids B1 and splits 3:1 between B0 and B2."""
    b = idents(backends, 3)
    d = start_ctl(preforkd, b[:2], workers=1, balance="roundrobin")
    ctl_ok(d, "set backend web %s drain" % b[1].spec)
    ctl_ok(d, "set weight web %s 3" % b[0].spec)
    d.set_listener("web", **H.proxy_listener([b[0], b[2], b[1]], balance="roundrobin",
                                            listen=d.listeners["web"]["listen"]))
    d.write_config()
    d.reload()
    got = collections.Counter(reach(d.port) for _ in range(40))
    assert got == {"B0": 30, "B2": 10}, got
    rows = backend_rows(d)
    assert (rows[b[1].spec]["state"], rows[b[0].spec]["weight"]) == ("drain", 3), rows
    assert rows[b[2].spec]["state"] == "up"


def test_reset_when_the_backend_goes_away(backends, preforkd):
    """Maint B1, reload without B1 (its setting is dropped, logged), reload with B1
    again: it starts ready and is reached."""
    b = idents(backends, 2)
    d = start_ctl(preforkd, b, workers=1, balance="roundrobin")
    listen = d.listeners["web"]["listen"]
    ctl_ok(d, "set backend web %s maint" % b[1].spec)
    ctl_ok(d, "set weight web %s 5" % b[1].spec)
    d.set_listener("web", **H.proxy_listener([b[0]], listen=listen))
    d.write_config()
    d.reload()
    d.wait_log(r"backend %s is no longer configured; the operator's setting of it "
               r"\(maint, weight\) is dropped" % b[1].spec)
    assert "no backend %s in listener web" % b[1].spec in \
        ctl(d, "set backend web %s drain" % b[1].spec)
    d.set_listener("web", **H.proxy_listener(b, balance="roundrobin", listen=listen))
    d.write_config()
    d.reload()
    got = collections.Counter(reach(d.port) for _ in range(20))
    assert got == {"B0": 10, "B1": 10}, got
    row = backend_rows(d)[b[1].spec]
    assert (row["state"], row["weight"]) == ("up", 1), row


def test_why_down(backends, preforkd):
    """The state's why: a backend refusing connections, marked down by the one worker
    after a failed connect (max_fails = 1), shows down, "marked down by 1 of 1 workers";
    drained as well, it shows drain by the operator, which comes first."""
    b = idents(backends, 1)
    dead = H.free_port()
    spec = "127.0.0.1:%d" % dead
    d = start_ctl(preforkd, [b[0], dead], workers=1, balance="roundrobin", retries=1,
                  max_fails=1, fail_timeout="60s")
    for _ in range(2):          # one of the two tries the dead one first, then B0
        assert reach(d.port) == "B0"
    d.wait_log(r"backend %s marked down" % spec)
    row = H.wait_for(lambda: (lambda r: r if r["state"] == "down" else None)(
        backend_rows(d)[spec]), 5 * H.SLOW, "the refused backend down in the view")
    assert row["why"] == "marked down by 1 of 1 workers", row
    assert backend_rows(d)[b[0].spec]["state"] == "up"
    ctl_ok(d, "set backend web %s drain" % spec)
    row = backend_rows(d)[spec]
    assert (row["state"], row["why"]) == ("drain", "operator"), row


@pytest.mark.parametrize("line, error", [
    ("set backend nope 127.0.0.1:1 drain", "no listener nope"),
    ("set backend web 127.0.0.1:1 drain", "no backend 127.0.0.1:1 in listener web"),
    ("set backend echo {b0} drain", "no backend {b0} in listener echo"),
    # a state or weight out of range is refused by the command parser (ctlcmd.c),
    # in its own words; each names the value
    ("set backend web {b0} down", "down"),
    ("set weight nope {b0} 2", "no listener nope"),
    ("set weight web 127.0.0.1:1 2", "no backend 127.0.0.1:1 in listener web"),
    ("set weight web {b0} 0", '"0"'),
])
def test_errors(backends, preforkd, line, error):
    """Each bad setting gets one error line naming what was wrong, and changes nothing."""
    b = idents(backends, 1)
    d = preforkd.new(daemon={"workers": 1},
                     listeners={"web": H.proxy_listener(b), "echo": {}})
    d.daemon_keys["control"] = control_path(d)
    d.start()
    spec = b[0].spec
    out = ctl(d, line.format(b0=spec))
    assert out.startswith("error") and error.format(b0=spec) in out, out
    assert len(out.strip().splitlines()) == 1, out
    row = backend_rows(d)[spec]
    assert (row["state"], row["weight"]) == ("up", 1), row
    assert reach(d.ports["web"]) == "B0"
