#!/usr/bin/python3
"""soak.py: preforkd's soak, a bounded regression run of reloads and kills under load.

    make soak [SOAK_SECONDS=60]        or   tests/soak/soak.py [--seconds N]

One daemon with an echo listener and a proxy listener (relaying to refecho,
build/tools/refecho, a process of its own) serves, for the whole run:

  churn   pfload churn on each listener: connect, send, check the echo byte
          for byte, close, 8 at a time;
  held    16 long-lived connections on each listener, each exchanging a
          random message (1..4096 bytes, checked) every 0.5 s and living 5 s,
          then closed and replaced by a new one.

while the soak, in turn:

  1. reloads: SIGHUP every second, every third one changing workers (2, 3);
     every connection must go on (held ones drain with their generation:
     drain_timeout 60 s, max_draining 16 > lifetime / reload interval);
  2. kills a worker with SIGKILL: the master must respawn it; connections on
     that worker are lost by nature (held ones are counted apart, churn ones
     show as resets or early EOFs, no more than were in flight); every other
     connection must go on, and a churn after the respawn must lose nothing;
  3. stops the daemon with SIGTERM while held connections are open: they are
     still served during the graceful stop; exit status 0, no process left;
  4. starts a second daemon, holds connections, and kills its master with
     SIGKILL: the workers must exit on their channel's EOF (no process left).

It prints one line per phase and a summary, and exits 1 on any unexpected
failure (a failed connect, a reset, a mismatch or a timeout where none is
expected, a failed reload, a worker not respawned, a process left, a bad log
line), 0 otherwise.  Everything runs on loopback and is bounded in time.
Environment: PREFORKD, PFLOAD, REFECHO (binaries), PREFORKD_KEEP=1 keeps the
temporary directory.
"""

import argparse
import errno
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import pfharness as H  # noqa: E402

REFECHO = os.environ.get("REFECHO", os.path.join(REPO, "build", "tools", "refecho"))

HELD = 16               # held connections per listener
HELD_LIFE = 5.0         # seconds a held connection lives
HELD_EVERY = 0.5        # seconds between its exchanges
CHURN_CONC = 8          # pfload churn connections at a time, per listener


class Failures:
    def __init__(self):
        self.unexpected = []

    def check(self, ok, what):
        if not ok:
            self.unexpected.append(what)
            print("soak: UNEXPECTED: %s" % what, flush=True)
        return ok


class Held:
    """Long-lived connections on some ports, exchanging checked messages in a thread."""

    def __init__(self, ports):
        self.ports = ports
        self.conns = []         # [sock, port, born, next_at]
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.doomed = set()     # sockets on a killed worker
        self.rng = random.Random()
        self.counts = {"opened": 0, "exchanges": 0, "closed": 0, "connect_failed": 0,
                       "resets": 0, "eofs": 0, "mismatches": 0, "timeouts": 0,
                       "lost_on_killed": 0}
        self.errors = []
        self.thread = None

    def _open(self, port):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError as e:
            self.counts["connect_failed"] += 1
            self.errors.append("connect to %d: %s" % (port, e))
            return
        now = time.monotonic()
        # spread their ends so that they are not replaced all at once
        self.conns.append([s, port, now, now + self.rng.uniform(0, HELD_EVERY)])
        self.counts["opened"] += 1

    def _exchange(self, s, data, timeout=5.0):
        """'ok', or the kind of failure."""
        end = time.monotonic() + timeout
        s.settimeout(timeout)
        try:
            s.sendall(data)
            got = bytearray()
            while len(got) < len(data):
                left = end - time.monotonic()
                if left <= 0:
                    return "timeouts"
                s.settimeout(left)
                chunk = s.recv(len(data) - len(got))
                if not chunk:
                    return "eofs"
                got += chunk
        except socket.timeout:
            return "timeouts"
        except OSError as e:
            if e.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
                return "resets"
            raise
        return "ok" if bytes(got) == data else "mismatches"

    def start(self):
        with self.lock:
            for port in self.ports:
                for _ in range(HELD):
                    self._open(port)
        self.thread = threading.Thread(target=self._run, name="held", daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_ev.is_set():
            with self.lock:
                self._round()
            self.stop_ev.wait(0.02)

    def _round(self, replace=True):
        now = time.monotonic()
        for c in list(self.conns):
            s, port, born, next_at = c
            if now < next_at:
                continue
            data = os.urandom(self.rng.randint(1, 4096))
            r = self._exchange(s, data)
            if r == "ok":
                self.counts["exchanges"] += 1
                c[3] = time.monotonic() + HELD_EVERY
                if not replace or now - born < HELD_LIFE:
                    continue
                self.counts["closed"] += 1
            elif s in self.doomed:
                self.counts["lost_on_killed"] += 1
            else:
                self.counts[r] += 1
                self.errors.append("held connection to %d: %s after %.1f s"
                                   % (port, r, now - born))
            self.conns.remove(c)
            self.doomed.discard(s)
            s.close()
            if replace:
                self._open(port)

    def pause(self):
        self.lock.acquire()

    def resume(self):
        self.lock.release()

    def mark_doomed(self, d, victim):
        """With the lock held: mark the connections the worker victim serves; their
        number."""
        n = 0
        for port in self.ports:
            socks = [c[0] for c in self.conns if c[1] == port]
            owner = H.worker_of_connections(d, port, [s.getsockname()[1] for s in socks])
            for s in socks:
                if owner.get(s.getsockname()[1]) == victim:
                    self.doomed.add(s)
                    n += 1
        return n

    def stop_thread(self):
        self.stop_ev.set()
        if self.thread is not None:
            self.thread.join(30)

    def exchange_all(self):
        """One exchange on every connection, none replaced (used while the daemon
        stops); the number that answered."""
        for c in self.conns:
            c[3] = 0
        before = self.counts["exchanges"]
        self._round(replace=False)
        return self.counts["exchanges"] - before

    def close(self):
        for c in self.conns:
            c[0].close()
        self.conns = []


def churn(port, seconds):
    return H.Pfload("churn", port, "-c", CHURN_CONC, "-s", 1500, "-d", "%.1f" % seconds,
                    "-t", 10000)


def brief(c):
    """pfload's counts, the ones the soak reports."""
    return "%d connects, %d failed, %d resets, %d early EOFs, %d timeouts, %d mismatches" % (
        c["connects"], c["failed_connects"], c["resets"], c["early_eofs"], c["timeouts"],
        c["mismatches"])


def churn_bad(c):
    return {k: c.get(k, 0) for k in ("failed_connects", "resets", "mismatches", "timeouts",
                                      "early_eofs") if c.get(k, 0)}


def start_refecho(tmp):
    port = H.free_port()
    log = open(os.path.join(tmp, "refecho.log"), "w+")
    p = subprocess.Popen([REFECHO, "-l", "127.0.0.1:%d" % port, "-w", "1"],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def ready():
        if p.poll() is not None:
            raise H.HarnessError("refecho exited (%s)" % p.returncode)
        log.seek(0)
        return "ready" in log.read()
    H.wait_for(ready, 10, "refecho to listen", interval=0.02)
    return p, port


def stop_refecho(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def new_daemon(tmp, name, backend_port, workers):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    return H.Daemon(d, daemon={"workers": workers, "log_level": "notice",
                               "drain_timeout": "60s", "max_draining": 16,
                               "shutdown_timeout": "10s"},
                    listeners={"echo": {},
                               "proxy": H.proxy_listener([backend_port])})


def all_pids(d):
    """Every process d ever had: its master and each worker its log names."""
    return [d.pid] + sorted(set(d.started_workers()) | set(d.worker_pids()))


def alive(pids):
    return [p for p in pids if H.proc_alive(p)]


def gone(pids, timeout=10):
    """Wait until none of pids runs (they are our children or grandchildren, reaped
    by us as the subreaper); whether they are all gone."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for p in pids:
            H.reap(p)
        if not alive(pids):
            return True
        time.sleep(0.02)
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60,
                    help="length of the run, 20..3600 (default 60)")
    args = ap.parse_args()
    if not 20 <= args.seconds <= 3600:
        ap.error("--seconds must be 20..3600, not %g" % args.seconds)
    for path in (H.PREFORKD, H.PFLOAD, REFECHO):
        if not os.access(path, os.X_OK):
            ap.error("%s is missing: make build/preforkd build/tools/pfload "
                     "build/tools/refecho" % path)

    H.become_subreaper()
    tmp = tempfile.mkdtemp(prefix="preforkd-soak-")
    f = Failures()
    procs = []
    refecho = None
    daemons = []
    try:
        refecho, bport = start_refecho(tmp)
        run(args.seconds, tmp, bport, f, daemons, procs)
    except Exception as e:     # noqa: BLE001  reported, then the clean-up below
        f.check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        for p in procs:
            p.kill()
        for d in daemons:
            if d.proc is not None and d.proc.poll() is None:
                d.stop(signal.SIGTERM, timeout=15)
            d.kill_leftovers()
            bad = d.bad_log_lines()
            f.check(not bad, "log %s has: %s" % (d.logpath, bad[:5]))
            d.close()
        if refecho is not None:
            stop_refecho(refecho)
        if H.KEEP:
            print("soak: kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if f.unexpected:
        print("soak: FAILED, %d unexpected: %s" % (len(f.unexpected), "; ".join(f.unexpected)))
        return 1
    print("soak: ok")
    return 0


def run(seconds, tmp, bport, f, daemons, procs):
    t0 = time.monotonic()
    storm = seconds * 0.6
    kill_phase = max(6.0, seconds * 0.2)
    after = max(3.0, seconds * 0.1)

    d = new_daemon(tmp, "d1", bport, 2)
    daemons.append(d)
    d.start()
    d.wait_workers(2)
    ports = [d.ports["echo"], d.ports["proxy"]]
    held = Held(ports)
    held.start()

    # 1. reload storm under churn
    loads = [churn(p, storm) for p in ports]
    procs.extend(l.proc for l in loads)
    reloads = failed_reloads = 0
    workers = 2
    end = time.monotonic() + storm
    while time.monotonic() < end:
        reloads += 1
        if reloads % 3 == 0:
            workers = 5 - workers
            d.daemon_keys["workers"] = workers
            d.write_config()
        status = d.reload()
        if status is None or "reload failed" in status:
            failed_reloads += 1
        time.sleep(max(0.0, min(1.0, end - time.monotonic())))
    counts = [l.wait(60) for l in loads]
    d.wait_workers(workers, timeout=15)
    print("soak: reloads: %d SIGHUPs (%d failed), workers now %d; churn echo %s; "
          "churn proxy %s" % (reloads, failed_reloads, workers, brief(counts[0]),
                            brief(counts[1])),
          flush=True)
    f.check(failed_reloads == 0, "%d reloads failed" % failed_reloads)
    for name, c in zip(("echo", "proxy"), counts):
        f.check(not churn_bad(c) and c["completed"] > 0,
                "churn %s across the reloads: %r" % (name, churn_bad(c) or c))
    connects = sum(c["connects"] for c in counts)
    failures = [sum(c.get(k, 0) for c in counts) for k in ("failed_connects", "resets",
                                                            "mismatches")]

    # 2. kill a worker under churn
    loads = [churn(p, kill_phase) for p in ports]
    procs.extend(l.proc for l in loads)
    time.sleep(kill_phase / 3)      # a measurement phase, not a wait for a condition
    current = d.wait_workers(workers)
    victim = current[0]
    held.pause()
    try:
        doomed = held.mark_doomed(d, victim)
        os.kill(victim, signal.SIGKILL)
    finally:
        held.resume()
    respawned = d.wait_workers(workers, timeout=15, exclude=[victim])
    counts = [l.wait(60) for l in loads]
    print("soak: worker kill: pid %d (%d held connections on it), workers now %r; "
          "churn echo %s; churn proxy %s" % (victim, doomed, respawned, brief(counts[0]),
                                             brief(counts[1])),
          flush=True)
    for name, c in zip(("echo", "proxy"), counts):
        bad = churn_bad(c)
        lost = bad.pop("resets", 0) + bad.pop("early_eofs", 0)
        # in flight on the killed worker: CHURN_CONC at most per listener
        f.check(not bad and lost <= CHURN_CONC,
                "churn %s across the worker kill: %r" % (name, c))
    connects += sum(c["connects"] for c in counts)
    killed_churn = sum(c.get("resets", 0) + c.get("early_eofs", 0) for c in counts)
    failures[0] += sum(c.get("failed_connects", 0) for c in counts)
    failures[2] += sum(c.get("mismatches", 0) for c in counts)

    # after the respawn, nothing is lost
    loads = [churn(p, after) for p in ports]
    procs.extend(l.proc for l in loads)
    counts = [l.wait(60) for l in loads]
    print("soak: after the respawn: churn echo %s; churn proxy %s"
          % (brief(counts[0]), brief(counts[1])), flush=True)
    for name, c in zip(("echo", "proxy"), counts):
        f.check(not churn_bad(c) and c["completed"] > 0,
                "churn %s after the respawn: %r" % (name, churn_bad(c) or c))
    connects += sum(c["connects"] for c in counts)
    for i, k in enumerate(("failed_connects", "resets", "mismatches")):
        failures[i] += sum(c.get(k, 0) for c in counts)

    # 3. graceful stop with held connections open
    held.stop_thread()
    pids = all_pids(d)
    d.signal(signal.SIGTERM)
    served = held.exchange_all()
    nheld = len(held.conns)
    held.close()
    rc = d.wait_exit(20)
    gone(pids)
    left = alive(pids)
    print("soak: SIGTERM: exit status %r, %d of %d held connections served during the stop, "
          "%d processes left" % (rc, served, nheld, len(left)), flush=True)
    f.check(rc == 0, "SIGTERM: exit status %r" % rc)
    f.check(served == nheld, "SIGTERM: %d of %d held connections served" % (served, nheld))
    f.check(not left, "SIGTERM: processes left: %r" % left)

    hc = held.counts
    print("soak: held: %r" % hc, flush=True)
    f.check(hc["connect_failed"] == hc["resets"] == hc["eofs"] == hc["mismatches"]
            == hc["timeouts"] == 0, "held connections: %s" % held.errors[:5])
    f.check(hc["lost_on_killed"] <= doomed,
            "held connections lost: %d, on the killed worker: %d" % (hc["lost_on_killed"],
                                                                      doomed))

    # 4. master SIGKILL: the workers exit on their channel's EOF
    d2 = new_daemon(tmp, "d2", bport, 2)
    daemons.append(d2)
    d2.start()
    workers2 = d2.wait_workers(2)
    socks = [H.connect(p) for p in (d2.ports["echo"], d2.ports["proxy"]) for _ in range(4)]
    for s in socks:
        f.check(H.exchange(s, b"before the kill") == b"before the kill", "echo on d2")
    pids2 = all_pids(d2)
    os.kill(d2.pid, signal.SIGKILL)
    d2.wait_exit(10)
    gone(pids2)
    left2 = alive(pids2)
    for s in socks:
        s.close()
    print("soak: master SIGKILL: workers %r; %d processes left" % (workers2, len(left2)),
          flush=True)
    f.check(not left2, "master SIGKILL: processes left: %r" % left2)

    print("soak: summary: %.0f s, %d reloads, %d churn connects, %d failed connects, "
          "%d resets, %d mismatches; %d churn connections cut by the worker kill; "
          "%d held connections (%d exchanges), %d lost on the killed worker; "
          "%d preforkd processes left"
          % (time.monotonic() - t0, reloads, connects, failures[0], failures[1], failures[2],
             killed_churn, hc["opened"], hc["exchanges"], hc["lost_on_killed"],
             len(left) + len(left2)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
