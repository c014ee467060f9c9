"""The shared statistics, read back through the control socket (`show stats json`).

Known echo and proxy traffic gives exact counters (bytes, closes by reason,
backend connects, failures and retries, rejected PROXY headers); totals are
never lower after a reload (SIGHUP) nor after a worker is killed with
SIGKILL; the gauges of open connections come back to 0 once the clients
close and once the worker holding them is killed.

The answer is read with a plain AF_UNIX socket: the tools an operator uses
on it (socat, nc -U, the client) are test_control.py's subject.  Skipped by
a binary without the control socket.
"""

import json
import os
import signal
import socket

import pfharness as H


def show(d, what="show stats json", timeout=5.0):
    """One command on d's control socket; the answer, whole (it closes after)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout * H.SLOW)
    try:
        s.connect(os.path.join(d.dir, "control.sock"))
        s.sendall(what.encode() + b"\n")
        out = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out.append(chunk)
    finally:
        s.close()
    return b"".join(out).decode()


def stats(d):
    return json.loads(show(d))


def listener(st, name):
    rows = [l for l in st["listeners"] if l["name"] == name]
    assert len(rows) == 1, st["listeners"]
    return rows[0]


def backend(st, lname, addr):
    rows = [b for b in st["backends"] if b["listener"] == lname and b["address"] == addr]
    assert len(rows) == 1, st["backends"]
    return rows[0]


def wait_stats(d, pred, what, timeout=5.0):
    """Wait until pred(stats) holds; return those stats."""
    last = {}

    def ok():
        last["st"] = stats(d)
        return last["st"] if pred(last["st"]) else None
    try:
        return H.wait_for(ok, timeout, what, interval=0.02)
    except H.HarnessError as e:
        raise H.HarnessError("%s; last answer: %s" % (e, json.dumps(last.get("st"))))


def one_exchange(port, data):
    """Connect, send data, read it all back, FIN, wait for the daemon's EOF."""
    with H.connect(port) as s:
        back = H.exchange(s, data, shut_wr=True, expect_eof=True)
    assert H.digest(back) == H.digest(data)


def totals(st):
    """Every total (not the gauges) of a view, flat, for a never-lower check."""
    out = {"reloads_ok": st["reloads_ok"], "respawns": st["respawns"]}
    for l in st["listeners"]:
        for k in ("accepted", "bytes_in", "bytes_out", "proxy_rejected"):
            out["%s.%s" % (l["name"], k)] = l[k]
        for r, n in l["closed"].items():
            out["%s.closed.%s" % (l["name"], r)] = n
    for b in st["backends"]:
        for k in ("total", "connect_failures", "retries"):
            out["%s.%s.%s" % (b["listener"], b["address"], k)] = b[k]
        out["%s.%s.connects" % (b["listener"], b["address"])] = b["connect_seconds"]["count"]
    return out


def never_lower(before, after):
    lower = {k: (v, after.get(k)) for k, v in before.items() if after.get(k, -1) < v}
    assert not lower, "totals went down: %r" % lower


def start(preforkd, backends, **extra):
    b = backends.echo()
    dead = H.free_port()
    listeners = {
        "echo": {},
        "prox": {"mode": "proxy", "backend": "127.0.0.1:%d" % b.port},
        "fail": {"mode": "proxy", "backend": ["127.0.0.1:%d" % dead, "127.0.0.1:%d" % b.port],
                 "balance": "roundrobin", "retries": 1},
        "pp": {"accept_proxy": "on", "proxy_timeout": "5s"},
    }
    listeners.update(extra)
    d = preforkd.new(listeners=listeners)
    d.daemon_keys["control"] = os.path.join(d.dir, "control.sock")
    d.start()
    return d, b, dead


def test_counters_after_known_traffic(preforkd, backends):
    d, b, dead = start(preforkd, backends)
    echo_sizes = [1, 1000, 65536 + 7]
    prox_sizes = [5, 300000]
    for n in echo_sizes:
        one_exchange(d.ports["echo"], H.payload(n))
    for n in prox_sizes:
        one_exchange(d.ports["prox"], H.payload(n))
    # roundrobin from the first: the dead backend, then the retry on the live one
    one_exchange(d.ports["fail"], H.payload(10))
    with H.connect(d.ports["pp"]) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        H.read_until_eof(s)

    st = wait_stats(d, lambda st: listener(st, "pp")["closed"]["bad_proxy_header"] == 1 and
                    listener(st, "echo")["closed_total"] == 3 and
                    listener(st, "prox")["closed_total"] == 2 and
                    listener(st, "fail")["closed_total"] == 1, "every close counted")
    e = listener(st, "echo")
    assert (e["accepted"], e["active"]) == (3, 0)
    assert e["bytes_in"] == e["bytes_out"] == sum(echo_sizes)
    assert e["closed"]["client_eof"] == 3
    p = listener(st, "prox")
    assert (p["accepted"], p["active"]) == (2, 0)
    assert p["bytes_in"] == p["bytes_out"] == sum(prox_sizes)
    assert p["closed"]["client_eof"] == 2
    pb = backend(st, "prox", "127.0.0.1:%d" % b.port)
    assert (pb["total"], pb["active"], pb["connect_failures"], pb["retries"]) == (2, 0, 0, 0)
    assert pb["connect_seconds"]["count"] == 2
    assert pb["connect_seconds"]["buckets"][-1] == {"le": "+Inf", "count": 2}
    fd = backend(st, "fail", "127.0.0.1:%d" % dead)
    assert (fd["total"], fd["connect_failures"], fd["retries"]) == (0, 1, 1)
    fl = backend(st, "fail", "127.0.0.1:%d" % b.port)
    assert (fl["total"], fl["connect_failures"]) == (1, 0)
    assert listener(st, "fail")["closed"]["client_eof"] == 1
    pp = listener(st, "pp")
    assert (pp["accepted"], pp["proxy_rejected"], pp["active"]) == (1, 1, 0)
    assert sum(w["accepts"] for w in st["workers"]) == 3 + 2 + 1 + 1
    assert all(w["connections"] == 0 for w in st["workers"])


def test_active_gauges_follow_open_connections(preforkd, backends):
    d, b, _ = start(preforkd, backends)
    held = [H.connect(d.ports["echo"]) for _ in range(3)] + \
        [H.connect(d.ports["prox"]) for _ in range(2)]
    for s in held:
        H.exchange(s, b"ping")
    st = wait_stats(d, lambda st: listener(st, "prox")["active"] == 2, "2 open proxied")
    assert listener(st, "echo")["active"] == 3
    assert backend(st, "prox", "127.0.0.1:%d" % b.port)["active"] == 2
    assert sum(w["connections"] for w in st["workers"]) == 5
    for s in held:
        s.close()
    st = wait_stats(d, lambda st: listener(st, "echo")["active"] == 0 and
                    listener(st, "prox")["active"] == 0, "every gauge back to 0")
    assert backend(st, "prox", "127.0.0.1:%d" % b.port)["active"] == 0
    assert listener(st, "echo")["closed"]["client_reset"] + \
        listener(st, "echo")["closed"]["client_eof"] == 3


def test_totals_kept_across_reload(preforkd, backends):
    d, b, _ = start(preforkd, backends)
    for n in (100, 2000):
        one_exchange(d.ports["echo"], H.payload(n))
        one_exchange(d.ports["prox"], H.payload(n))
    before = wait_stats(d, lambda st: listener(st, "prox")["closed_total"] == 2, "closes")
    d.reload()
    after = stats(d)
    assert after["generation"] == before["generation"] + 1
    assert after["reloads_ok"] == 1 and after["last_reload"].endswith("ok")
    never_lower(totals(before), totals(after))
    assert totals(after)["echo.bytes_in"] == 2100
    # the old generation has drained: its slots are folded into the totals
    H.wait_for(lambda: len(d.worker_pids()) == 2, 10, "old generation gone")
    st = wait_stats(d, lambda st: all(w["generation"] == after["generation"]
                                      for w in st["workers"]), "only the new workers")
    never_lower(totals(before), totals(st))
    one_exchange(d.ports["echo"], H.payload(5))
    st = wait_stats(d, lambda st: listener(st, "echo")["closed_total"] == 3, "one more")
    assert listener(st, "echo")["bytes_in"] == 2105
    # a failed reload is counted, the totals stay
    d.write_config("[daemon]\nworkers = nonsense\n")
    d.signal(signal.SIGHUP)
    st = wait_stats(d, lambda st: st["reloads_failed"] == 1, "the failed reload counted")
    assert st["last_reload"].startswith("failed: ")
    never_lower(totals(after), totals(st))


def test_totals_kept_across_worker_kill(preforkd, backends):
    d, b, _ = start(preforkd, backends)
    for n in (10, 20, 30, 40):
        one_exchange(d.ports["echo"], H.payload(n))
    held = [H.connect(d.ports["echo"]) for _ in range(4)]
    for s in held:
        H.exchange(s, b"x" * 7)
    before = wait_stats(d, lambda st: listener(st, "echo")["active"] == 4, "4 held")
    victim = next(w for w in before["workers"] if w["connections"] > 0)
    os.kill(victim["pid"], signal.SIGKILL)
    d.wait_workers(2, timeout=10, exclude=[victim["pid"]])
    st = wait_stats(d, lambda st: listener(st, "echo")["active"] == 4 - victim["connections"] and
                    st["respawns"] == 1, "the killed worker's connections gone")
    never_lower(totals(before), totals(st))
    assert listener(st, "echo")["bytes_in"] == 100 + 4 * 7
    # the respawned worker goes on counting in its slot: accepts never lower
    row = next(w for w in st["workers"] if w["slot"] == victim["slot"])
    assert row["pid"] != victim["pid"] and row["accepts"] >= victim["accepts"]
    for s in held:
        s.close()
    wait_stats(d, lambda st: listener(st, "echo")["active"] == 0, "all closed")
