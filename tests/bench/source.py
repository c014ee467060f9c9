#!/usr/bin/python3
"""source.py: the proxy's connect rate to one backend with one source address and
with `source = 127.0.0.2-127.0.0.9`.

    /usr/bin/python3 tests/bench/source.py            # make bench-source
    /usr/bin/python3 tests/bench/source.py --rounds 1 --duration 4

Every proxied connection ends with the proxy's side of its backend connection in
TIME_WAIT (the proxy passes the client's FIN on first).  From one source address to one
backend address only the ephemeral port range (net.ipv4.ip_local_port_range) is
available, and a port in TIME_WAIT is taken again only where net.ipv4.tcp_tw_reuse
allows it.  Debian's default (2) allows it on loopback only, so on loopback the limit
never shows: this run sets tcp_tw_reuse to 0 for its duration, as between two hosts,
and puts it back afterwards (needs root; without root it runs with the setting as it
is and says so).

Two preforkd proxies in front of one refecho backend, one with the default source
address and one with eight (IP_BIND_ADDRESS_NO_PORT: the port is chosen at connect(),
per address), measured in turn with pfload churn (each connection: one checked 64-byte
exchange, then close) over --rounds rounds, the order alternating.  Report:
tests/bench/results/SOURCE.md.  Every process started is stopped by its PID.
"""

import argparse
import datetime
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

import bench as B

TW_REUSE = "/proc/sys/net/ipv4/tcp_tw_reuse"
SOURCES = "127.0.0.2-127.0.0.9"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per run (8)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(B.REPO, "tests", "bench", "results"))
    ap.add_argument("--time-limit", type=float, default=600)
    return ap.parse_args()


def churn(tmp, a, port):
    c, _ = B.run_pfload(tmp, "churn", port, ["-c", 32, "-s", 64, "-d", a.duration,
                                             "-n", 64, "-P", 2, "-t", 2000],
                        a.duration + 60)
    return c


def measure(tmp, a, rows):
    bport = B.free_port()
    B.start_refecho(tmp, bport, a.workers, "backend")
    systems = []
    for name, extra in (("one source address", []),
                        ("source = %s" % SOURCES, ["source = %s" % SOURCES])):
        port = B.free_port()
        B.start_preforkd(tmp, port, a.workers, "preforkd", backend=bport, listener_extra=extra)
        systems.append((name, port))
    for rnd in range(a.rounds):
        for name, port in (systems if rnd % 2 == 0 else systems[::-1]):
            c = churn(tmp, a, port)
            B.log("round %d %-30s %8.0f conn/s" % (rnd + 1, name, c["rate"]))
            rows.setdefault(name, []).append(c)


def report(a, rows, tw_note, began, cmd):
    lines = ["# preforkd: connect rate to one backend, by source addresses", "",
             "Made by `%s` (`make bench-source`) on %s." % (
                 cmd, began.strftime("%Y-%m-%d %H:%M UTC")), "",
             "- machine: %(nproc)s CPUs, %(model)s, %(memory)s RAM" % B.machine(),
             "- kernel %s; net.ipv4.ip_local_port_range %s; net.ipv4.tcp_max_tw_buckets %s"
             % (os.uname().release, "-".join(B._read("/proc/sys/net/ipv4/ip_local_port_range").split()),
                B._read("/proc/sys/net/ipv4/tcp_max_tw_buckets").strip()),
             "- %s" % tw_note,
             "- %s, proxy mode, %d workers, backend refecho (%d processes)"
             % (B.versions().get("preforkd", "?"), a.workers, a.workers),
             "- `pfload churn -c 32 -s 64 -d %g -n 64 -P 2`, %d rounds, order alternating; "
             "medians" % (a.duration, a.rounds), "",
             "| backend connections from | conn/s (median) | per round | failed connects "
             "| resets | mismatches |", "|---|---|---|---|---|---|"]
    for name, cs in rows.items():
        lines.append("| %s | %s | %s | %d | %d | %d |" % (
            name, "{:,.0f}".format(statistics.median(c["rate"] for c in cs)),
            " / ".join("{:,.0f}".format(c["rate"]) for c in cs),
            sum(c["failed_connects"] for c in cs), sum(c["resets"] for c in cs),
            sum(c["mismatches"] for c in cs)))
    lines += ["", "From one address the ports fill up with TIME_WAIT and each connect() "
              "searches longer for a free one (the rate falls from round to round); "
              "eight addresses give eight port ranges."]
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "SOURCE.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    a = parse_args()
    cmd = " ".join(["/usr/bin/python3 tests/bench/source.py"] + sys.argv[1:])
    began = datetime.datetime.now(datetime.timezone.utc)
    tmp = tempfile.mkdtemp(prefix="pfsource-")
    old = B._read(TW_REUSE).strip()
    rows = {}

    def watchdog(signo, frame):
        raise B.Watchdog("time limit of %.0f s reached" % a.time_limit)

    signal.signal(signal.SIGALRM, watchdog)
    signal.alarm(int(a.time_limit))
    try:
        try:
            with open(TW_REUSE, "w") as f:
                f.write("0")
            tw_note = "net.ipv4.tcp_tw_reuse set to 0 for the run (it was %s; put back)" % old
        except OSError as e:
            tw_note = "net.ipv4.tcp_tw_reuse left at %s (%s): on loopback, with reuse " \
                      "allowed, one address may not run out" % (old, e.strerror)
        measure(tmp, a, rows)
    finally:
        signal.alarm(0)
        try:
            with open(TW_REUSE, "w") as f:
                f.write(old)
        except OSError:
            pass
        B.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    report(a, rows, tw_note, began, cmd)
    B.log("done: %s" % os.path.join(a.out, "SOURCE.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
