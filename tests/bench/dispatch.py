#!/usr/bin/python3
"""dispatch.py: preforkd's three dispatch methods side by side (dispatch = notify,
reuseport, handoff).

    /usr/bin/python3 tests/bench/dispatch.py            # 3 rounds, 3 s a run (make bench-dispatch)
    /usr/bin/python3 tests/bench/dispatch.py --quick    # 1 round, 1 s per run (smoke test)

One preforkd per method, echo mode, --workers workers each, all on loopback.  In each
round every workload runs once on every method, the methods in an order that rotates
from round to round, so that the three are measured side by side under the same
machine load:

  connect: pfload churn -c 32 -s 64 (open, one checked 64-byte exchange, close):
    connections/s, failed connects, mismatches, and the CPU time (schedstat) of the
    master and of the workers apart: connections per CPU-second and the master's share.
  pingpong: pfload pingpong -c 64 -s 64: messages/s and latency percentiles.
  spread under churn: the connections each worker served during the connect run.  The
    daemon does not publish per-worker accept counts, but in echo mode a worker makes
    one write(2) per 64-byte echo and no other write (the channel uses sendmsg, the log
    says nothing per connection at level notice), so the change in each worker's syscw
    (/proc/PID/io) is its count; the sum is checked against pfload's "completed".
    The per-worker CPU time is reported too.
  spread held: pfload hold -c --hold (default 1000, opened as fast as pfload goes),
    then each worker's ESTABLISHED sockets on the port (/proc, scale.worker_conns),
    checked against the daemon's STATUS= figures.
  bursts: a pool of 8, 16 or 32 connections opened at once (pfload hold, from 1 and
    from 2 client processes) after a quiet spell of QUIET_SECS, counted per worker the
    same way: the busiest worker's count over its fair share (connections / workers;
    1.00 is an even spread, 2.00 with 2 workers is every one on one worker).

After the rounds, each method once more with --spread-workers workers (default 4), a
fresh daemon, for the held spread only (reuseport's hash imbalance grows with the number
of sockets).

Report: tests/bench/results/DISPATCH.md and DISPATCH.json (--quick: in results/quick):
medians over the rounds and, for rates and efficiency, the median of the per-round ratios
to notify.  The binaries are copied to the temp dir first (a rebuild during the run does
not change them).  Every process started is stopped by its PID, also on an error, Ctrl-C
or the watchdog (--time-limit).  Exit status 0 when the run completed with every echo
checked and every count consistent, 1 otherwise.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import time

import bench as B
import scale as S

MODES = ("notify", "reuseport", "handoff")
RESULTS = os.path.join(B.REPO, "tests", "bench", "results")
WORKLOADS = ("connect", "pingpong", "held", "bursts")
BURSTS = (8, 16, 32)        # connections opened at once
BURST_CLIENTS = (1, 2)      # ... by this many client processes
QUIET_SECS = 0.5            # before each burst: notify's rate count (50 ms) falls to nothing


class Daemon:
    """One preforkd with a dispatch method: its Proc, master, workers (slot order) and
    STATUS= reader."""

    def __init__(self, tmp, mode, workers):
        self.mode, self.workers_n = mode, workers
        self.port = B.free_port()
        self.proc = B.start_preforkd(tmp, self.port, workers, "preforkd-%s-w%d" % (mode, workers),
                                     daemon_extra=["dispatch = %s" % mode], keep_notify=True)
        self.status = S.Status(self.proc.notify)
        self.master = self.proc.pid
        self.workers = self._workers()
        if len(self.workers) != workers:
            self.stop()
            raise B.BenchError("%s: %d workers running, %d configured" % (
                mode, len(self.workers), workers))

    def _workers(self):
        return sorted(p for p in self.proc.tree() if p != self.master)

    def same_workers(self):
        return self.proc.alive() and self._workers() == self.workers

    def stop(self):
        try:
            self.proc.stop()
        finally:
            self.proc.notify.close()


def syscw(pid):
    """write(2)-family calls pid made (/proc/PID/io), or None when it is gone."""
    try:
        with open("/proc/%d/io" % pid) as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("syscw:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def snapshot(d):
    return {"master_cpu": B.cpu_seconds([d.master]),
            "worker_cpu": [B.cpu_seconds([w]) for w in d.workers],
            "worker_writes": [syscw(w) for w in d.workers]}


def max_min(xs):
    xs = [x for x in xs or [] if x is not None]
    if not xs or min(xs) <= 0:
        return None
    return max(xs) / min(xs)


def pfload_args(a, conns):
    return ["-c", conns, "-s", 64, "-d", a.duration, "-n", a.sources, "-P", a.clients,
            "-t", 10000]


def run_connect(tmp, a, d):
    s0 = snapshot(d)
    counts, _ = B.run_pfload(tmp, "churn", d.port, pfload_args(a, 32), timeout=a.duration + 40)
    s1 = snapshot(d)
    mcpu = s1["master_cpu"] - s0["master_cpu"]
    wcpu = [y - x for x, y in zip(s0["worker_cpu"], s1["worker_cpu"])]
    served = [y - x if None not in (x, y) else None
              for x, y in zip(s0["worker_writes"], s1["worker_writes"])]
    total = mcpu + sum(wcpu)
    done = counts.get("completed", 0)
    return {"rate": counts["rate"], "completed": done, "connects": counts.get("connects"),
            "failed_connects": counts.get("failed_connects", 0),
            "mismatches": counts.get("mismatches", 0), "errors": B.errors_of(counts),
            "first_error": counts.get("first_error", ""),
            "master_cpu": mcpu, "workers_cpu": sum(wcpu), "per_worker_cpu": wcpu,
            "per_worker_conns": served, "same_workers": d.same_workers(),
            "conns_per_cpu": done / total if total > 0 else None,
            "master_share": mcpu / total if total > 0 else None,
            "spread": max_min(served), "cpu_spread": max_min(wcpu)}


def run_pingpong(tmp, a, d):
    s0 = snapshot(d)
    counts, _ = B.run_pfload(tmp, "pingpong", d.port, pfload_args(a, 64),
                             timeout=a.duration + 40)
    s1 = snapshot(d)
    mcpu = s1["master_cpu"] - s0["master_cpu"]
    total = mcpu + sum(s1["worker_cpu"]) - sum(s0["worker_cpu"])
    lat = counts.get("latency_us", {})
    work = counts["rate"] * (counts.get("elapsed") or a.duration)
    return {"rate": counts["rate"], "p50": lat.get("p50"), "p99": lat.get("p99"),
            "errors": B.errors_of(counts), "first_error": counts.get("first_error", ""),
            "master_cpu": mcpu, "cpu": total, "msgs_per_cpu": work / total if total > 0 else None}


def run_held(tmp, a, d):
    def count(held):
        fds = S.worker_conns(d.workers, d.port)
        total, per = d.status.wait_for(held, 5)
        return {"per_worker": [fds[w] for w in d.workers], "status_total": total,
                "status_per_worker": per}

    h = B.hold_connections(tmp, d.port, a.hold, a.sources, 1, count, settle=60)
    c = h["sampled"]
    c.update(held=h["held"], settle_s=h["settle_s"], spread=max_min(c["per_worker"]),
             errors=B.errors_of(h["counts"]) + h["counts"].get("peer_closed", 0),
             first_error=h["counts"].get("first_error", ""))
    return c


def wait_closed(d, timeout=10.0):
    """Wait until the workers hold no connection on the port (the last burst's)."""
    end = time.monotonic() + timeout
    while sum(S.worker_conns(d.workers, d.port).values()) > 0:
        if time.monotonic() > end:
            raise B.BenchError("the workers still hold connections %.0f s after pfload "
                               "closed them" % timeout)
        time.sleep(0.02)


def run_bursts(tmp, a, d):
    """Each size of BURSTS from each number of BURST_CLIENTS, after a quiet spell:
    {"b8": busiest/fair share (the worse of the client counts), ..., "per_worker":
    ["8x1: 4/4", ...], "errors"}."""
    out = {"per_worker": [], "errors": 0, "first_error": ""}
    for n in BURSTS:
        worst = None
        for clients in BURST_CLIENTS:
            wait_closed(d)
            time.sleep(QUIET_SECS)
            h = B.hold_connections(tmp, d.port, n, a.sources, clients,
                                   lambda held: S.worker_conns(d.workers, d.port), settle=20)
            per = [h["sampled"][w] for w in d.workers]
            if sum(per) != n or h["held"] != n:
                raise B.BenchError("a burst of %d: pfload holds %d, the workers own %s" % (
                    n, h["held"], per))
            out["errors"] += B.errors_of(h["counts"]) + h["counts"].get("peer_closed", 0)
            out["first_error"] = out["first_error"] or h["counts"].get("first_error", "")
            share = max(per) / (n / len(per))
            worst = share if worst is None else max(worst, share)
            out["per_worker"].append("%dx%d: %s" % (n, clients, "/".join(map(str, per))))
        out["b%d" % n] = worst
    return out


RUNNERS = {"connect": run_connect, "pingpong": run_pingpong, "held": run_held,
           "bursts": run_bursts}


def rotated(seq, k):
    k %= len(seq)
    return list(seq[k:]) + list(seq[:k])


def describe(wl, mode, c):
    if wl == "connect":
        return "%9.0f conn/s  master %.2f s workers %.2f s  per worker %s" % (
            c["rate"], c["master_cpu"], c["workers_cpu"],
            "/".join(str(x) for x in c["per_worker_conns"]))
    if wl == "pingpong":
        return "%9.0f msg/s   p99 %.0f us  cpu %.2f s" % (c["rate"], c["p99"] or 0, c["cpu"])
    if wl == "bursts":
        return "bursts, busiest/fair %s: %s" % (
            " ".join("%d: %.2f" % (n, c["b%d" % n]) for n in BURSTS), ", ".join(c["per_worker"]))
    return "held %d: per worker %s (STATUS= %s)" % (
        c["held"], "/".join(str(x) for x in c["per_worker"]),
        "/".join(str(x) for x in c["status_per_worker"]))


def check(wl, mode, rnd, c, notes):
    """Notes on a cell whose counts do not add up."""
    where = "round %s, %s, %s" % (rnd, wl, mode)
    if c.get("errors"):
        notes.append("%s: %d client error(s), first: %s" % (where, c["errors"],
                                                           c.get("first_error")))
    if wl == "connect":
        if not c["same_workers"]:
            notes.append("%s: a worker was replaced during the run" % where)
        elif None in c["per_worker_conns"] or sum(c["per_worker_conns"]) != c["completed"]:
            notes.append("%s: the workers' echo writes (%s) do not add up to the %d "
                         "exchanges pfload completed" % (where, c["per_worker_conns"],
                                                         c["completed"]))
    if wl == "held":
        if sum(c["per_worker"]) != c["held"] or c["status_total"] != c["held"]:
            notes.append("%s: pfload holds %d, the workers own %d (/proc), the daemon "
                         "counts %s (STATUS=)" % (where, c["held"], sum(c["per_worker"]),
                                                  c["status_total"]))


def summarize(cells, rounds):
    """{(workload, mode): {field: median, field_ratio: median of per-round ratios}}."""
    fields = {"connect": ("rate", "failed_connects", "mismatches", "master_cpu",
                          "workers_cpu", "conns_per_cpu", "master_share", "spread",
                          "cpu_spread"),
              "pingpong": ("rate", "p50", "p99", "cpu", "master_cpu", "msgs_per_cpu"),
              "held": ("spread",),
              "bursts": tuple("b%d" % n for n in BURSTS)}
    ratios = {"connect": ("rate", "conns_per_cpu"), "pingpong": ("rate", "p99", "msgs_per_cpu"),
              "held": (), "bursts": ()}
    out = {}
    for wl in WORKLOADS:
        for mode in MODES:
            mine = [cells.get((r, wl, mode)) for r in range(rounds)]
            got = [c for c in mine if c]
            if not got:
                continue
            s = {f: B.median([c.get(f) for c in got]) for f in fields[wl]}
            for f in ("failed_connects", "mismatches", "errors"):
                if any(f in c for c in got):
                    s[f + "_sum"] = sum(c.get(f, 0) for c in got)
            for f in ratios[wl]:
                rs = []
                for r in range(rounds):
                    m, n = cells.get((r, wl, mode)), cells.get((r, wl, "notify"))
                    if m and n and m.get(f) and n.get(f):
                        rs.append(m[f] / n[f])
                s[f + "_ratio"] = B.median(rs)
            out[(wl, mode)] = s
    return out


def fmt(x, nd=0, suffix=""):
    return B.fmt(x, nd, suffix)


def per_round(cells, rounds, wl, mode, key):
    """'a/b; c/d; ...': one figure per worker, one group per round."""
    groups = []
    for r in range(rounds):
        c = cells.get((r, wl, mode))
        groups.append("/".join(fmt(x) for x in c[key]) if c else "—")
    return "; ".join(groups)


def tables(a, cells, summ, spread_extra):
    R = a.rounds

    def row(*xs):
        return "| " + " | ".join(xs) + " |"

    def sm(wl, mode):
        return summ.get((wl, mode), {})

    out = ["## Connect rate", "",
           "`pfload churn -c 32 -s 64 -d %g -n %d -P %d`: each connection opens, makes one "
           "checked 64-byte exchange and closes.  CPU: schedstat of the master and of the "
           "workers during the run; per CPU-second: connections completed / (master + "
           "workers CPU)." % (a.duration, a.sources, a.clients), "",
           row("dispatch", "conn/s", "× notify", "failed connects", "mismatches",
               "master CPU s", "workers CPU s", "conn per CPU-s", "× notify",
               "master share"),
           row(*["---"] * 10)]
    for mode in MODES:
        s = sm("connect", mode)
        out.append(row(mode, fmt(s.get("rate")), fmt(s.get("rate_ratio"), 2),
                       fmt(s.get("failed_connects_sum")), fmt(s.get("mismatches_sum")),
                       fmt(s.get("master_cpu"), 2), fmt(s.get("workers_cpu"), 2),
                       fmt(s.get("conns_per_cpu")), fmt(s.get("conns_per_cpu_ratio"), 2),
                       fmt(s["master_share"] * 100 if s.get("master_share") is not None
                           else None, 1, " %")))
    out += ["", "Failed connects and mismatches: summed over the rounds.", "",
            "## Throughput", "",
            "`pfload pingpong -c 64 -s 64 -d %g -n %d -P %d`: 64 connections, each sends a "
            "64-byte message and waits for its checked echo before the next." % (
                a.duration, a.sources, a.clients), "",
            row("dispatch", "msg/s", "× notify", "p50 µs", "p99 µs", "p99 × notify",
                "daemon CPU s", "master CPU s", "msg per CPU-s", "× notify"),
            row(*["---"] * 10)]
    for mode in MODES:
        s = sm("pingpong", mode)
        out.append(row(mode, fmt(s.get("rate")), fmt(s.get("rate_ratio"), 2),
                       fmt(s.get("p50")), fmt(s.get("p99")), fmt(s.get("p99_ratio"), 2),
                       fmt(s.get("cpu"), 2), fmt(s.get("master_cpu"), 2),
                       fmt(s.get("msgs_per_cpu")), fmt(s.get("msgs_per_cpu_ratio"), 2)))
    out += ["", "## Spread under churn (%d workers)" % a.workers, "",
            "Connections each worker served during the connect run (its echo writes, "
            "/proc/PID/io syscw; they add up to pfload's completed exchanges), and its CPU "
            "time.  max/min: the busiest worker over the idlest, 1.00 is an even spread.", "",
            row("dispatch", "max/min connections", "connections per worker, each round",
                "max/min CPU", "CPU s per worker, each round"),
            row(*["---"] * 5)]
    for mode in MODES:
        s = sm("connect", mode)
        cpu = "; ".join("/".join("%.2f" % x for x in c["per_worker_cpu"]) if c else "—"
                        for c in (cells.get((r, "connect", mode)) for r in range(R)))
        out.append(row(mode, fmt(s.get("spread"), 2),
                       per_round(cells, R, "connect", mode, "per_worker_conns"),
                       fmt(s.get("cpu_spread"), 2), cpu))
    out += ["", "## Spread held (%d workers, %d connections)" % (a.workers, a.hold), "",
            "`pfload hold -c %d -n %d` opens them all as fast as it goes; each worker's "
            "ESTABLISHED sockets on the port, counted from /proc once every one is "
            "settled (the daemon's STATUS= agrees unless a note below says otherwise)." % (
                a.hold, a.sources), "",
            row("dispatch", "max/min", "connections per worker, each round"),
            row(*["---"] * 3)]
    for mode in MODES:
        out.append(row(mode, fmt(sm("held", mode).get("spread"), 2),
                       per_round(cells, R, "held", mode, "per_worker")))
    out += ["", "## Bursts (%d workers)" % a.workers, "",
            "A pool of 8, 16 or 32 connections opened at once by `pfload hold` (from %s client "
            "processes in turn), each after a quiet spell of %g s, counted per worker from /proc: "
            "the busiest worker's count over its fair share (connections / workers), the worse "
            "of the client counts, median over the rounds.  1.00: an even spread; %.2f: every "
            "connection on one worker." % (" and ".join(map(str, BURST_CLIENTS)), QUIET_SECS,
                                            float(a.workers)), "",
            row("dispatch", *["%d at once" % n for n in BURSTS],
                "connections per worker (size x clients), each round"),
            row(*["---"] * (len(BURSTS) + 2))]
    for mode in MODES:
        s = sm("bursts", mode)
        out.append(row(mode, *[fmt(s.get("b%d" % n), 2) for n in BURSTS],
                       "; ".join(", ".join(c["per_worker"]) if c else "—"
                                 for c in (cells.get((r, "bursts", mode)) for r in range(R)))))
    if spread_extra:
        out += ["", "## Spread held (%d workers, %d connections, once, fresh daemons)" % (
            a.spread_workers, a.hold), "",
            row("dispatch", "max/min", "connections per worker"), row(*["---"] * 3)]
        for mode in MODES:
            c = spread_extra.get(mode)
            out.append(row(mode, fmt(c["spread"], 2) if c else "—",
                           "/".join(fmt(x) for x in c["per_worker"]) if c else "—"))
    return out


def write_report(a, info, cells, summ, spread_extra, notes, began, took, cmd):
    m = info["machine"]
    lines = ["# preforkd: dispatch = notify | reuseport | handoff", "",
             "Made by `%s` (`make bench-dispatch`) on %s UTC in %.0f s." % (
                 cmd, began.strftime("%Y-%m-%d %H:%M"), took), "",
             "- machine: %d CPUs, %s, %s RAM, kernel %s; load average %s at the start, %s at "
             "the end (the CPUs are shared with other work, and pfload runs on them too: "
             "compare ratios rather than absolute rates)" % (
                 m["nproc"], m["model"], m["memory"], info["versions"]["kernel"],
                 " ".join(m["loadavg"]), " ".join(m.get("loadavg_end", []))),
             "- preforkd: %s, echo mode, %d workers, defaults otherwise" % (
                 info["versions"]["preforkd"], a.workers),
             "- load client: pfload (tests/tools/pfload.c), %d client processes, source "
             "addresses 127.0.0.2 .. 127.0.0.%d" % (a.clients, a.sources),
             "- %d round(s), %g s per run; each round runs each workload on the three "
             "methods in an order that rotates from round to round.  Figures: medians over "
             "the rounds; × notify: the median of the per-round ratios to notify." % (
                 a.rounds, a.duration), ""]
    lines += tables(a, cells, summ, spread_extra)
    lines += ["", "## Notes", ""]
    lines += ["- " + n for n in notes] if notes else ["- none: every echo checked, every "
                                                      "count consistent"]
    lines.append("")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "DISPATCH.md"), "w") as f:
        f.write("\n".join(lines))
    raw = {"info": info, "args": vars(a), "command": cmd, "took_s": took,
           "cells": [dict(round=k[0] + 1, workload=k[1], mode=k[2], **v)
                     for k, v in sorted(cells.items())],
           "spread_extra": [dict(mode=k, workers=a.spread_workers, **v)
                            for k, v in spread_extra.items()],
           "summary": [dict(workload=k[0], mode=k[1], **v) for k, v in summ.items()],
           "notes": notes}
    with open(os.path.join(a.out, "DISPATCH.json"), "w") as f:
        json.dump(raw, f, indent=1, sort_keys=True)


def measure(tmp, a, cells, spread_extra, notes, logs):
    daemons = {}
    try:
        for mode in MODES:
            daemons[mode] = Daemon(tmp, mode, a.workers)
            B.log("%s: pid %d, workers %s, port %d" % (mode, daemons[mode].master,
                                                       daemons[mode].workers,
                                                       daemons[mode].port))
        for rnd in range(a.rounds):
            for wi, wl in enumerate(WORKLOADS):
                for mode in rotated(MODES, rnd + wi):
                    d = daemons[mode]
                    if not d.same_workers():
                        notes.append("%s lost a process; restarted before round %d, %s" % (
                            mode, rnd + 1, wl))
                        logs.append((mode, d.proc.log()))
                        d.stop()
                        d = daemons[mode] = Daemon(tmp, mode, a.workers)
                    try:
                        c = RUNNERS[wl](tmp, a, d)
                    except B.BenchError as e:
                        notes.append("round %d, %s, %s: %s" % (rnd + 1, wl, mode, e))
                        B.log("round %d %s %s: %s" % (rnd + 1, wl, mode, e))
                        continue
                    cells[(rnd, wl, mode)] = c
                    check(wl, mode, rnd + 1, c, notes)
                    B.log("round %d %-8s %-9s %s" % (rnd + 1, wl, mode, describe(wl, mode, c)))
    finally:
        for d in daemons.values():
            logs.append((d.mode, d.proc.log()))
            d.stop()
    if a.spread_workers <= 0:
        return
    for mode in rotated(MODES, a.rounds):
        d = None
        try:
            d = Daemon(tmp, mode, a.spread_workers)
            c = run_held(tmp, a, d)
            spread_extra[mode] = c
            check("held", mode, "extra", c, notes)
            B.log("%d workers %-9s %s" % (a.spread_workers, mode, describe("held", mode, c)))
        except B.BenchError as e:
            notes.append("%d workers, held, %s: %s" % (a.spread_workers, mode, e))
        finally:
            if d is not None:
                logs.append((mode, d.proc.log()))
                d.stop()


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 round, 1 s per run")
    ap.add_argument("--workers", type=int, default=2, help="workers per daemon (2)")
    ap.add_argument("--spread-workers", type=int, default=4,
                    help="workers for the extra held-spread run, 0: none (4)")
    ap.add_argument("--rounds", type=int, help="rounds (3; --quick 1)")
    ap.add_argument("--duration", type=float, help="seconds per churn/pingpong run "
                    "(3; --quick 1)")
    ap.add_argument("--hold", type=int, default=1000, help="connections held (1000)")
    ap.add_argument("--clients", type=int, default=2, help="pfload -P: client processes (2)")
    ap.add_argument("--sources", type=int, default=64,
                    help="pfload -n: source addresses 127.0.0.2 .. 127.0.0.N (64)")
    ap.add_argument("--out", help="output folder (tests/bench/results; "
                    "--quick: tests/bench/results/quick)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, configs)")
    ap.add_argument("--time-limit", type=float,
                    help="watchdog: abort after this many seconds (900; --quick 240)")
    a = ap.parse_args()
    # (default, --quick default) of the options left out
    for key, pair in (("rounds", (3, 1)), ("duration", (3.0, 1.0)), ("time_limit", (900, 240)),
                      ("out", (RESULTS, os.path.join(RESULTS, "quick")))):
        if getattr(a, key) is None:
            setattr(a, key, pair[a.quick])
    if not (1 <= a.workers <= 64 and 0 <= a.spread_workers <= 64 and a.rounds >= 1
            and a.duration > 0 and 1 <= a.hold <= 100000 and 1 <= a.clients <= 32
            and 2 <= a.sources <= 254):
        ap.error("a value is out of range")
    return a


def main():
    a = parse_args()
    cmd = " ".join(["PREFORKD=%s" % os.environ["PREFORKD"]] * ("PREFORKD" in os.environ) +
                   ["/usr/bin/python3 tests/bench/dispatch.py"] + sys.argv[1:])
    for path in (B.PREFORKD, B.PFLOAD):
        if not os.access(path, os.X_OK):
            raise SystemExit("dispatch: %s is missing (make build/preforkd build/tools/pfload)"
                             % path)
    began = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="pfdispatch-")
    # private copies: a rebuild of build/ during the run does not touch them
    B.PREFORKD = shutil.copy2(B.PREFORKD, os.path.join(tmp, "preforkd"))
    B.PFLOAD = shutil.copy2(B.PFLOAD, os.path.join(tmp, "pfload"))
    info = {"versions": B.versions(), "machine": B.machine()}
    cells, spread_extra, notes, logs = {}, {}, [], []
    complete = False

    B.watch(a.time_limit)
    try:
        B.log("temp dir %s; %d round(s), %g s per run, %d workers" % (
            tmp, a.rounds, a.duration, a.workers))
        measure(tmp, a, cells, spread_extra, notes, logs)
        complete = True
    except (B.BenchError, OSError) as e:
        notes.append("error: %s: the run is incomplete" % e)
        B.log("error: %s" % e)
    except B.Watchdog as e:
        notes.append("%s: the run is incomplete" % e)
        B.log(str(e))
    except KeyboardInterrupt:
        B.log("interrupted; stopping every process started")
        raise
    finally:
        signal.alarm(0)
        B.uninterrupted(B.stop_all)
        if not a.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if a.keep_tmp:
        B.log("kept %s" % tmp)
    for mode, text in logs:
        for ln in S.log_problems(text):
            notes.append("%s logged: `%s`" % (mode, ln.strip()))
    took = time.monotonic() - t0
    info["machine"]["loadavg_end"] = B._read("/proc/loadavg").split()[:3]
    summ = summarize(cells, a.rounds)
    write_report(a, info, cells, summ, spread_extra, notes, began, took, cmd)
    B.log("done in %.0f s: %s" % (took, os.path.join(a.out, "DISPATCH.md")))
    return 0 if complete and not notes else 1


if __name__ == "__main__":
    B.run_main(main)
