#!/usr/bin/python3
"""scale.py: how many idle echo connections preforkd holds, and what they cost.

    /usr/bin/python3 tests/bench/scale.py               # 100,000 connections (make bench-scale)
    /usr/bin/python3 tests/bench/scale.py --conns 20000

A fresh preforkd in echo mode (--workers processes, max_connections sized from the
open-file limit, backlog 65535 (the kernel caps it at net.core.somaxconn), idle_timeout
off) and pfload hold of --conns connections, spread over --clients client processes and
the source addresses 127.0.0.2 .. 127.0.0.N (--sources N), so that no process, the
daemon's or the client's, needs more descriptors than the per-process limit.  Every
connection is checked by one 1-byte exchange before it counts as held.

It first reads the kernel settings that matter (and changes none of them): a setting
that makes the run impossible stops it with what to raise; one that only slows it down
is reported.  While the connections are held it counts them from the daemon's side
twice: the ESTABLISHED sockets on the port (/proc/net/tcp) owned by each worker
(/proc/PID/fd), and the daemon's own per-worker figures (its sd_notify STATUS= line).

Report: tests/bench/results/SCALE.md (and SCALE.json): connections held, failed
connects, mismatches, time to establish, the daemon's PSS (master and workers, from
/proc/PID/smaps_rollup; the client is not counted) before and after and per connection,
the spread over workers, the kernel settings, the kernel's listen-queue counters and any
kernel or daemon log line of note.  Every process started is stopped by its PID, also on
an error, Ctrl-C or the watchdog (--time-limit).  Exit status 0 when every connection
was held and verified, 1 otherwise.
"""

import argparse
import datetime
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import bench as B
import pfharness as H     # on the path benchlib.py sets: /proc helpers shared with the tests

TCP_ESTABLISHED = 0x01
SLACK_FDS = 64      # descriptors a process needs besides its connections


def sysctl(name):
    """The text of a sysctl, or None where it does not exist."""
    try:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            return f.read().split()
    except OSError:
        return None


def tcpext():
    """The TcpExt counters of /proc/net/netstat (machine-wide)."""
    try:
        with open("/proc/net/netstat") as f:
            rows = [line.split() for line in f if line.startswith("TcpExt:")]
        return {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:])}
    except (OSError, IndexError, ValueError):
        return {}


TCPEXT_KEYS = ("ListenOverflows", "ListenDrops", "SyncookiesSent", "SyncookiesRecv",
               "SyncookiesFailed", "TCPReqQFullDoCookies", "TCPReqQFullDrop", "TCPTimeouts",
               "TCPSynRetrans")


def kernel_checks(a, nofile):
    """[(setting, value, what this run needs, verdict)] and whether the run can go on.
    Verdicts: ok; may slow (the run works, but establishing or closing may take longer);
    BLOCKS (the run cannot reach --conns)."""
    rows, blocked = [], False
    n = a.conns
    nsrc = a.sources - 1

    def row(name, value, need, verdict):
        nonlocal blocked
        blocked |= verdict == "BLOCKS"
        rows.append((name, value, need, verdict))

    per_client = math.ceil(n / a.clients) + SLACK_FDS
    per_worker = math.ceil(n / a.workers) + SLACK_FDS
    row("RLIMIT_NOFILE (hard, per process)", str(nofile),
        ">= %d (client processes) and >= %d (workers, even spread)" % (per_client, per_worker),
        "ok" if nofile >= max(per_client, per_worker) else "BLOCKS")
    v = sysctl("fs.nr_open")
    row("fs.nr_open", v[0] if v else "?", "caps RLIMIT_NOFILE; informational", "ok")
    v, used = sysctl("fs.file-max"), sysctl("fs.file-nr")
    if v and used:
        free = int(v[0]) - int(used[0])
        row("fs.file-max (in use now: %s)" % used[0], v[0],
            ">= %d more open files (both ends of every connection)" % (2 * n + 1000),
            "ok" if free >= 2 * n + 1000 else "BLOCKS")
    v = sysctl("net.ipv4.ip_local_port_range")
    if v:
        ports = int(v[1]) - int(v[0]) + 1
        row("net.ipv4.ip_local_port_range", "%s-%s (%d ports)" % (v[0], v[1], ports),
            ">= %d ports per source address (%d addresses)" % (math.ceil(n / nsrc), nsrc),
            "ok" if ports * nsrc >= n * 1.05 else "BLOCKS")
    v = sysctl("net.core.somaxconn")
    if v:
        row("net.core.somaxconn", v[0],
            "caps the accept queue (backlog = 65535 asked); a burst of %d SYNs overflows a "
            "short queue and clients retransmit" % n,
            "ok" if int(v[0]) >= min(n, 65535) else "may slow")
    v = sysctl("net.ipv4.tcp_max_syn_backlog")
    if v:
        row("net.ipv4.tcp_max_syn_backlog", v[0], "SYN queue; beyond it SYN cookies",
            "ok" if int(v[0]) >= min(n, 65535) else "may slow")
    v = sysctl("net.ipv4.tcp_syncookies")
    if v:
        row("net.ipv4.tcp_syncookies", v[0], "1: an overflowing SYN queue still connects",
            "ok" if v[0] != "0" else "may slow")
    v = sysctl("net.ipv4.tcp_max_orphans")
    if v:
        row("net.ipv4.tcp_max_orphans", v[0], ">= %d: every socket closed at once at the end"
            % n, "ok" if int(v[0]) >= n else "may slow")
    v = sysctl("net.ipv4.tcp_max_tw_buckets")
    if v:
        row("net.ipv4.tcp_max_tw_buckets", v[0], ">= %d: TIME_WAIT at the end (beyond it the "
            "kernel logs an overflow; harmless)" % n, "ok" if int(v[0]) >= n else "may slow")
    v = sysctl("net.ipv4.tcp_mem")
    if v:
        row("net.ipv4.tcp_mem (pages)", " ".join(v), "pressure far above idle sockets' "
            "few pages", "ok")
    v, cnt = sysctl("net.netfilter.nf_conntrack_max"), sysctl("net.netfilter.nf_conntrack_count")
    if v:
        c = int(cnt[0]) if cnt else 0
        row("net.netfilter.nf_conntrack_max (in use now: %d)" % c, v[0],
            ">= %d when connection tracking sees loopback" % (c + n),
            "ok" if int(v[0]) >= c + n else "BLOCKS")
    return rows, blocked


def worker_conns(workers, port):
    """{worker pid: its open fds that are ESTABLISHED connections on port}."""
    est = {inode for lport, _, state, inode in H.tcp_table()
           if lport == port and state == TCP_ESTABLISHED}
    return {pid: len(est.intersection(H.socket_inodes(pid))) for pid in workers}


class Status:
    """The daemon's latest STATUS= line, from its NOTIFY_SOCKET."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.setblocking(False)
        self.line = ""

    def poll(self):
        while True:
            try:
                msg = self.sock.recv(65536).decode(errors="replace")
            except (BlockingIOError, InterruptedError):
                return self.line
            for ln in msg.splitlines():
                if ln.startswith("STATUS="):
                    self.line = ln[7:]

    def counts(self):
        """(total, [per worker]) from the line, or (None, [])."""
        m = re.search(r"(\d+) connections \(([\d/]+)\)", self.line)
        if not m:
            return None, []
        return int(m.group(1)), [int(x) for x in m.group(2).split("/")]

    def wait_for(self, total, timeout):
        """Wait until the line says total connections (the daemon reports about once a
        second); return its counts."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.poll()
            if self.counts()[0] == total:
                break
            time.sleep(0.2)
        return self.counts()


def dmesg_lines():
    try:
        r = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10)
        return r.stdout.splitlines() if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def ss_summary():
    try:
        r = subprocess.run(["ss", "-s"], capture_output=True, text=True, timeout=30)
        return next((ln.strip() for ln in r.stdout.splitlines() if ln.startswith("TCP:")), "")
    except (OSError, subprocess.SubprocessError):
        return ""


EXPECTED_WARNINGS = ("running as root",)     # the bench runs as root; no user = set


def log_problems(text):
    """The daemon's log lines at warning level or above, less the expected ones."""
    return [ln for ln in text.splitlines()
            if (re.search(r"\[(warning|error|crit)\]", ln) or "Sanitizer" in ln)
            and not any(w in ln for w in EXPECTED_WARNINGS)]


def run(a, tmp, res):
    """The measured part; fills res as it goes (what it got is reported even on error)."""
    nofile = B._nofile()
    res["kernel"], blocked = kernel_checks(a, nofile)
    for name, value, need, verdict in res["kernel"]:
        B.log("%-44s %-24s %s (%s)" % (name, value, verdict, need))
    if blocked:
        raise B.BenchError("a kernel setting or limit makes the run impossible (BLOCKS above); "
                           "raise it and run again: this script changes none of them")
    cap = min(1000000, nofile - SLACK_FDS)
    res["config"] = {"workers": a.workers, "max_connections": cap, "backlog": 65535,
                     "idle_timeout": "0 (off)", "mode": "echo"}
    port = B.free_port()
    d0, x0 = dmesg_lines(), tcpext()
    pf = B.start_preforkd(tmp, port, a.workers, "preforkd-scale",
                          daemon_extra=["max_connections = %d" % cap],
                          listener_extra=["backlog = 65535", "idle_timeout = 0"],
                          keep_notify=True)
    res["proc"] = pf
    status = Status(pf.notify)
    master = pf.pid
    workers = sorted(p for p in pf.tree() if p != master)     # slot order, as in STATUS=
    if len(workers) != a.workers:
        raise B.BenchError("%d workers running, %d configured" % (len(workers), a.workers))
    res["pss_before_kib"] = B.warm_pss(tmp, port, a.sources, pf.tree)
    B.log("preforkd pid %d, %d workers (max_connections %d each), port %d; PSS %d KiB" % (
        master, len(workers), cap, port, res["pss_before_kib"]))

    def progress():
        status.poll()
        B.log("daemon: %s" % (status.line.split(", draining")[0] or "(no STATUS yet)"))

    def measure(held):
        B.log("pfload holds %d; counting from the daemon's side" % held)
        time.sleep(1.0)
        m = {"pss_after_kib": B.pss_kib(pf.tree()), "tree": len(pf.tree())}
        t = time.monotonic()
        m["per_worker_fds"] = worker_conns(workers, port)
        m["fd_count_s"] = time.monotonic() - t
        m["status_total"], m["status_per_worker"] = status.wait_for(held, 5)
        m["status_line"] = status.line
        m["ss"] = ss_summary()
        m["pss_after2_kib"] = B.pss_kib(pf.tree())
        return m

    B.log("holding %d connections: %d client processes, %d source addresses" % (
        a.conns, a.clients, a.sources - 1))
    h = B.hold_connections(tmp, port, a.conns, a.sources, a.clients, measure,
                           settle=a.establish + 30, conn_timeout=a.establish, tick=progress)
    res.update(h["sampled"])
    res["held"], res["settle_s"], res["counts"] = h["held"], h["settle_s"], h["counts"]
    # the connections are closed: the daemon should see them go
    end = time.monotonic() + 30
    while time.monotonic() < end:
        status.poll()
        if status.counts()[0] in (0, None):
            break
        time.sleep(0.5)
    res["status_after_close"] = status.line
    res["alive_after"] = pf.alive() and len(pf.tree()) == a.workers + 1
    x1, d1 = tcpext(), dmesg_lines()
    res["tcpext"] = {k: x1.get(k, 0) - x0.get(k, 0) for k in TCPEXT_KEYS if k in x1}
    if d0 is not None and d1 is not None:
        new = d1[len(d0):] if d1[:len(d0)] == d0 else d1[-50:]
        res["dmesg"] = new
    else:
        res["dmesg"] = None


def verdict(a, res):
    """[problems]; empty when every connection was held, verified and seen by the daemon."""
    out = []
    c = res.get("counts") or {}
    if res.get("held") != a.conns:
        out.append("pfload held %s of %d" % (res.get("held"), a.conns))
    for k in ("failed_connects", "mismatches", "resets", "early_eofs", "timeouts",
              "peer_closed"):
        if c.get(k):
            out.append("%s: %d" % (k, c[k]))
    if c and c.get("completed") != a.conns:
        out.append("exchanges verified: %s of %d" % (c.get("completed"), a.conns))
    fds = res.get("per_worker_fds")
    if fds is not None and sum(fds.values()) != a.conns:
        out.append("the workers own %d connections (/proc), not %d" % (sum(fds.values()),
                                                                       a.conns))
    if res.get("status_total") is not None and res["status_total"] != a.conns:
        out.append("the daemon counts %d connections, not %d" % (res["status_total"], a.conns))
    if not res.get("alive_after", False):
        out.append("the daemon lost a process during the run")
    if res.get("log_problems"):
        out.append("the daemon logged %d warning/error line(s)" % len(res["log_problems"]))
    return out


def fmt(x):
    return B.fmt(x) if x is not None else "—"


def write_report(a, res, info, began, took, problems, error):
    held = res.get("held")
    before, after = res.get("pss_before_kib"), res.get("pss_after_kib")
    per_conn = (after - before) * 1024.0 / held if held and before and after else None
    fds = res.get("per_worker_fds") or {}
    spread = sorted(fds.values())
    c = res.get("counts") or {}
    cmd = " ".join(["tests/bench/scale.py"] + sys.argv[1:])
    m = info["machine"]
    lines = ["# preforkd: %s idle echo connections" % fmt(a.conns), "",
             "Made by `%s` (`make bench-scale`) on %s UTC in %.0f s." % (
                 cmd, began.strftime("%Y-%m-%d %H:%M"), took), "",
             "**%s**" % ("every connection held and verified" if not problems and not error
                         else "NOT MET: " + "; ".join(([error] if error else []) + problems)),
             "", "## Result", "",
             "| | |", "|---|---|",
             "| connections asked | %s |" % fmt(a.conns),
             "| held by pfload, each checked by a 1-byte exchange | %s |" % fmt(held),
             "| exchanges verified / mismatches | %s / %s |" % (
                 fmt(c.get("completed")), fmt(c.get("mismatches"))),
             "| failed connects / resets / timeouts / closed by the server | %s / %s / %s / %s |"
             % (fmt(c.get("failed_connects")), fmt(c.get("resets")), fmt(c.get("timeouts")),
                fmt(c.get("peer_closed"))),
             "| held, the daemon's side: ESTABLISHED sockets owned by the workers (/proc) | %s |"
             % fmt(sum(fds.values()) if fds else None),
             "| held, the daemon's own count (STATUS=) | %s |" % fmt(res.get("status_total")),
             "| time to establish (pfload start to every connection settled) | %s |" % (
                 "%.1f s" % res["settle_s"] if res.get("settle_s") else "—"),
             "| daemon PSS before (master + %d workers, after a 100-connection warm-up) | %s KiB |"
             % (a.workers, fmt(before)),
             "| daemon PSS while held | %s KiB |" % fmt(after),
             "| PSS per connection | %s B |" % fmt(per_conn),
             "| per-worker spread, min / max connections | %s |" % (
                 "%s / %s (max/min %.2f)" % (fmt(spread[0]), fmt(spread[-1]),
                                             spread[-1] / spread[0])
                 if spread and spread[0] else "—"),
             "| per worker (/proc) | %s |" % (" / ".join(str(v) for v in fds.values()) or "—"),
             "| per worker (STATUS=) | %s |" % (
                 " / ".join(str(v) for v in res.get("status_per_worker") or []) or "—"),
             "| `ss -s` while held | %s |" % (res.get("ss") or "—"),
             "", "PSS counts the daemon's user memory (and its share of libraries), not the "
             "kernel's socket buffers; the client's memory is not counted.  A second reading "
             "after counting the sockets: %s KiB." % fmt(res.get("pss_after2_kib")), "",
             "## Set-up", "",
             "- machine: %d CPUs, %s, %s RAM, kernel %s; load average %s at the start "
             "(the CPUs are shared with other work)" % (
                 m["nproc"], m["model"], m["memory"], info["versions"]["kernel"],
                 " ".join(m["loadavg"])),
             "- preforkd: %s" % info["versions"]["preforkd"],
             "- preforkd configuration: echo mode, %s" % ", ".join(
                 "%s = %s" % kv for kv in (res.get("config") or {}).items() if kv[0] != "mode"),
             "- load client: pfload hold (tests/tools/pfload.c), %d client process(es), source "
             "addresses 127.0.0.2 .. 127.0.0.%d, one 1-byte exchange per connection, "
             "connect timeout %g s" % (a.clients, a.sources, a.establish),
             "", "## Kernel settings (read, not changed)", "",
             "| setting | value | this run needs | verdict |", "|---|---|---|---|"]
    lines += ["| %s | %s | %s | %s |" % r for r in res.get("kernel", [])]
    lines += ["", "\"may slow\": the run works, but establishing (or closing) may take "
              "longer: a SYN dropped on a full queue is retransmitted by the client, a full "
              "SYN queue answers with cookies (the counters below say whether it happened); "
              "\"BLOCKS\": the run cannot reach the target until it is raised.", "",
              "## Kernel counters during the run (TcpExt, machine-wide)", ""]
    tx = res.get("tcpext")
    if tx:
        lines += ["| counter | change |", "|---|---|"]
        lines += ["| %s | %s |" % kv for kv in tx.items()]
    else:
        lines.append("(not read)")
    lines += ["", "## Logs", ""]
    dm = res.get("dmesg")
    if dm is None:
        lines.append("- kernel (dmesg, machine-wide): not readable")
    else:
        lines.append("- kernel (dmesg, machine-wide): %d new line(s)%s" % (
            len(dm), ":" if dm else ""))
        lines += ["  - `%s`" % ln.strip() for ln in dm[:10]]
    lp = res.get("log_problems") or []
    lines.append("- preforkd (log_level notice): %d warning/error line(s)%s" % (
        len(lp), ":" if lp else " (not counting the expected \"running as root\")"))
    lines += ["  - `%s`" % ln.strip() for ln in lp[:10]]
    lines.append("- preforkd STATUS= once pfload closed: %s" % (
        res.get("status_after_close") or "—"))
    lines.append("")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "SCALE.md"), "w") as f:
        f.write("\n".join(lines))
    raw = {k: v for k, v in res.items() if k != "proc"}
    raw["per_worker_fds"] = list(fds.values())
    raw.update(info=info, args=vars(a), took_s=took, problems=problems, error=error,
               pss_per_conn_bytes=per_conn)
    with open(os.path.join(a.out, "SCALE.json"), "w") as f:
        json.dump(raw, f, indent=1, sort_keys=True, default=str)


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--conns", type=int, default=100000,
                    help="connections to hold (100000; pfload takes at most 100000)")
    ap.add_argument("--workers", type=int, default=8, help="preforkd workers (8)")
    ap.add_argument("--clients", type=int, help="pfload client processes (enough to keep "
                    "each well under the open-file limit: 8 for 100000)")
    ap.add_argument("--sources", type=int, default=64,
                    help="pfload -n: source addresses 127.0.0.2 .. 127.0.0.N (64)")
    ap.add_argument("--establish", type=float, default=120,
                    help="seconds a connection may take to connect and echo (pfload -t; 120)")
    ap.add_argument("--out", default=os.path.join(B.REPO, "tests", "bench", "results"),
                    help="output folder (tests/bench/results)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, config)")
    ap.add_argument("--time-limit", type=float, default=900,
                    help="watchdog: abort after this many seconds (900)")
    a = ap.parse_args()
    if a.clients is None:
        a.clients = max(1, math.ceil(a.conns / 12500))
    if not (1 <= a.conns <= 100000 and 1 <= a.workers <= 64 and 1 <= a.clients <= 64
            and 2 <= a.sources <= 254 and a.establish > 0):
        ap.error("a value is out of range")
    return a


def wind_down(res):
    """Stop every process started; note what the daemon logged and close its
    NOTIFY_SOCKET."""
    B.stop_all()
    pf = res.get("proc")
    if pf is not None:
        res["log_problems"] = log_problems(pf.log())
        if getattr(pf, "notify", None) is not None:
            pf.notify.close()


def main():
    a = parse_args()
    for path in (B.PREFORKD, B.PFLOAD):
        if not os.access(path, os.X_OK):
            raise SystemExit("scale: %s is missing (make build/preforkd build/tools/pfload)"
                             % path)
    # the clients inherit it: as many descriptors as the hard limit allows
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    began = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    info = {"versions": B.versions(), "machine": B.machine()}
    tmp = tempfile.mkdtemp(prefix="pfscale-")
    res, error = {}, None

    B.watch(a.time_limit)
    try:
        B.log("temp dir %s; %d connections, %d workers, %d client processes" % (
            tmp, a.conns, a.workers, a.clients))
        run(a, tmp, res)
    except (B.BenchError, OSError, ValueError) as e:
        error = str(e)
        B.log("error: %s" % e)
    except B.Watchdog as e:
        error = "%s: the run is incomplete" % e
        B.log(error)
    except KeyboardInterrupt:
        B.log("interrupted; stopping every process started")
        raise
    finally:
        signal.alarm(0)
        B.uninterrupted(lambda: wind_down(res))
        if a.keep_tmp:
            B.log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    took = time.monotonic() - t0
    problems = verdict(a, res) if error is None else []
    write_report(a, res, info, began, took, problems, error)
    for p in problems:
        B.log("problem: %s" % p)
    B.log("done in %.0f s: %s" % (took, os.path.join(a.out, "SCALE.md")))
    return 0 if not problems and error is None else 1


if __name__ == "__main__":
    B.run_main(main)
