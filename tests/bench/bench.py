#!/usr/bin/python3
"""bench.py: preforkd side by side with a bare reference server, HAProxy and nginx.

    /usr/bin/python3 tests/bench/bench.py            # full run (about 13 minutes)
    /usr/bin/python3 tests/bench/bench.py --quick    # short run (under two minutes)

Two groups of servers, every one listening on its own loopback port for the whole run
and given the same number of workers (processes, or threads for HAProxy):

  echo:  preforkd (echo mode) and refecho (build/tools/refecho: one SO_REUSEPORT socket
         and one epoll loop per process, nothing else; the ceiling for echo).
  proxy: preforkd (proxy mode), HAProxy (mode tcp, nbthread = workers), nginx (stream
         module, worker_processes = workers) and "direct" (no proxy at all), all in front
         of one refecho backend.
  redis, iperf3: the same four in front of redis-server and of iperf3 -s, driven by
         redis-benchmark (SET and GET, 50 clients) and iperf3 (2 streams).

Workloads, made by build/tools/pfload (every echoed byte checked): pingpong (C connections,
S-byte messages, messages/s and latency percentiles), connect rate (pfload churn: open, one
64-byte exchange, close), bulk (streaming both ways, MB/s), and memory per idle connection
(a fresh server, PSS before and after pfload hold of --hold connections).  In each round
every workload runs once on every system, the systems in a rotating order, so that the
numbers of one workload are taken side by side under the same machine load.

For each cell: the rate, its ratio to the best peer (echo: the other server; proxy: the
best other proxy, "direct" left out), the CPU seconds of the server under test (all its
processes and threads, from /proc/PID/task/TID/schedstat), efficiency (work done per
CPU-second), and its PSS sampled mid-run.  Each figure is the median over the rounds
(ratios: the median of the per-round ratios).

Output in --out (default tests/bench/results, or tests/bench/results/quick with --quick):
LATEST.md (date, machine, versions, targets, tables), LATEST.json (every measurement),
throughput.png and memory.png (gnuplot).  Every process started here is stopped by its
PID (SIGTERM, then SIGKILL after a deadline), also on Ctrl-C or an error, and the whole
run has a watchdog.

Needs: build/preforkd, build/tools/pfload, build/tools/refecho, and the Debian packages
haproxy, nginx, libnginx-mod-stream, gnuplot-nox, redis-server, redis-tools, iperf3.  A
system whose binary is missing or that fails to start is left out and the report says so.
PREFORKD, PFLOAD and REFECHO in the environment override the three binaries.

Options worth knowing: --only KEYS (a subset of workloads), --pf-daemon/--pf-listener
(extra configuration lines for every preforkd, e.g. --pf-listener 'source = ...'),
--pf-variant NAME:ITEM,... (another preforkd, side by side with the first; each ITEM
daemon.KEY=VALUE, listener.KEY=VALUE or bin=PATH, e.g. reuseport:daemon.dispatch=reuseport),
--keep-tmp (keep logs and configurations).

Base against new in one run: bin=PATH runs another preforkd binary as the variant, so
that two builds are measured side by side under the same machine load rather than in two
runs at different times.  For example, before a change:

    make build/preforkd && cp build/preforkd /tmp/pf-base

and after it:

    make build/preforkd && /usr/bin/python3 tests/bench/bench.py --quick \
        --pf-variant base:bin=/tmp/pf-base
    make bench-quick BENCH_ARGS='--pf-variant base:bin=/tmp/pf-base'

Every variant (preforkd-NAME) gets its rows in the tables as any system does, and a
table "Variants against preforkd" gives, cell by cell, its rate, efficiency and p99
divided by the main preforkd's in the same round (median over the rounds).
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the process, port and signal helpers; dispatch.py, scale.py and source.py reach some
# of them through this module
from benchlib import (  # noqa: F401
    BenchError, cpu_seconds, free_port, HOST, log, port_listening, Proc, pss_kib, stop_all,
    unique, Watchdog, _read, start_waiting, watch, uninterrupted, run_main)

PREFORKD = os.environ.get("PREFORKD", os.path.join(REPO, "build", "preforkd"))
PFLOAD = os.environ.get("PFLOAD", os.path.join(REPO, "build", "tools", "pfload"))
REFECHO = os.environ.get("REFECHO", os.path.join(REPO, "build", "tools", "refecho"))
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_STREAM = "/usr/lib/nginx/modules/ngx_stream_module.so"
GNUPLOT = shutil.which("gnuplot") or "/usr/bin/gnuplot"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_BENCHMARK = shutil.which("redis-benchmark") or "/usr/bin/redis-benchmark"
IPERF3 = shutil.which("iperf3") or "/usr/bin/iperf3"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
AB = shutil.which("ab") or "/usr/bin/ab"

# --------------------------------------------------------------------------------------
# servers

class Server:
    """One system under test (or the backend): its process and its port."""

    def __init__(self, name, family, group, start):
        self.name = name            # shown in the tables
        self.family = family        # preforkd, refecho, haproxy, nginx, direct
        self.group = group          # echo or proxy
        self._start = start         # function(tmp, port) -> Proc
        self.proc = None
        self.port = None
        self.error = None

    def start(self, tmp):
        self.port = free_port()
        self.proc = self._start(tmp, self.port)
        return self

    def pids(self):
        return self.proc.tree() if self.proc else []

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


def start_refecho(tmp, port, workers, name):
    return start_waiting(tmp, unique(name),
                         [REFECHO, "-l", "%s:%d" % (HOST, port), "-w", str(workers)],
                         lambda p: "refecho: ready" in p.log())


def start_preforkd(tmp, port, workers, name, backend=None, daemon_extra=(), listener_extra=(),
                   keep_notify=False, binary=None):
    """Start preforkd (binary, default PREFORKD) and wait for READY=1.  keep_notify: leave
    its NOTIFY_SOCKET open as the Proc's .notify (a bound datagram socket; the caller closes
    it) for the STATUS= lines that follow."""
    name = unique(name)
    conf = os.path.join(tmp, "%s.conf" % name)
    lines = ["[daemon]", "workers = %d" % workers, "log_level = notice",
             "log_target = stderr", "shutdown_timeout = 1s"]
    lines += list(daemon_extra)
    lines += ["", "[listener bench]", "listen = %s:%d" % (HOST, port)]
    if backend is not None:
        lines += ["mode = proxy", "backend = %s:%d" % (HOST, backend)]
    lines += list(listener_extra)
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    sockpath = os.path.join(tmp, "%s.notify" % name)
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(sockpath)
    env = dict(os.environ, NOTIFY_SOCKET=sockpath)
    env.pop("LISTEN_FDS", None)
    env.pop("LISTEN_PID", None)
    p = Proc(name, [binary or PREFORKD, "-c", conf], tmp, env=env)
    try:
        end = time.monotonic() + 15
        ready = False
        while not ready and time.monotonic() < end:
            if not p.alive():
                raise BenchError("%s exited: %s" % (name, p.log().strip()[-300:]))
            r, _, _ = select.select([ns], [], [], 0.1)
            if r and b"READY=1" in ns.recv(4096):
                ready = True
        if not ready:
            raise BenchError("%s: no READY=1 in 15 s: %s" % (name, p.log().strip()[-300:]))
    except BaseException:
        p.stop()
        keep_notify = False
        raise
    finally:
        if keep_notify:
            p.notify = ns
        else:
            ns.close()
            os.unlink(sockpath)
    return p


def start_haproxy(tmp, port, workers, name, backend):
    name = unique(name)
    conf = os.path.join(tmp, "%s.cfg" % name)
    with open(conf, "w") as f:
        # no maxconn: HAProxy sizes it from the open-file limit (one process for all
        # its threads, so about half the limit; see HAPROXY_MAX_HOLD)
        f.write("""global
    nbthread %d

defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m

frontend fe
    bind %s:%d
    default_backend be

backend be
    server s1 %s:%d
""" % (workers, HOST, port, HOST, backend))
    return start_waiting(tmp, name, [HAPROXY, "-db", "-f", conf],
                         lambda p: port_listening(port) and _nthreads(p.pid) >= workers)


def _nofile():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def haproxy_max_hold():
    """Idle proxied connections HAProxy can hold: two fds each, one process."""
    return max(100, min(9000, (_nofile() - 200) // 2))


def _nthreads(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return 0


def _run_nginx(tmp, port, workers, name, body, main=""):
    """nginx with `body` (its stream or http block) listening on port; main: more
    lines for its main context."""
    name = unique(name)
    prefix = os.path.join(tmp, name)
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    errlog = os.path.join(prefix, "error.log")
    with open(conf, "w") as f:
        f.write("""load_module %s;
daemon off;
master_process on;
worker_processes %d;
pid %s/nginx.pid;
error_log %s warn;
%s
events {
    worker_connections %d;
}

%s
""" % (NGINX_STREAM, workers, prefix, errlog, main, _nofile() - 100,
       body.replace("PREFIX", prefix)))
    return start_waiting(tmp, name, [NGINX, "-p", prefix + "/", "-c", conf, "-e", errlog],
                         lambda p: port_listening(port) and len(p.tree()) >= workers + 1,
                         more=lambda: _read(errlog)[-300:])


def start_nginx(tmp, port, workers, name, backend):
    return _run_nginx(tmp, port, workers, name, """stream {
    upstream be {
        server %s:%d;
    }
    server {
        listen %s:%d;
        proxy_pass be;
        proxy_connect_timeout 5s;
        proxy_timeout 5m;
    }
}""" % (HOST, backend, HOST, port))


# The files the HTTP origin serves: (URL path, size).
HTTP_FILES = {"1k": ("/small.html", 1400), "64k": ("/64k.bin", 65536)}


def start_nginx_http(tmp, port, workers, name):
    """nginx as the HTTP origin, serving HTTP_FILES with sendfile on (as Debian's
    nginx.conf has it) and tcp_nopush and tcp_nodelay at nginx's own defaults (off, on):
    the headers and the file leave in two writes, as from most application servers.
    (Debian's nginx.conf also turns tcp_nopush on, which sends a small file with its
    headers in one write.)  Keep-alive lasts a cell."""
    root = os.path.join(tmp, "www")
    os.makedirs(root, exist_ok=True)
    for path, size in HTTP_FILES.values():
        with open(root + path, "wb") as f:
            f.write(random.Random(size).randbytes(size))
    return _run_nginx(tmp, port, workers, name, """http {
    sendfile on;
    tcp_nopush off;
    tcp_nodelay on;
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 5m;
    client_body_temp_path PREFIX/body;
    proxy_temp_path PREFIX/proxy;
    fastcgi_temp_path PREFIX/fastcgi;
    uwsgi_temp_path PREFIX/uwsgi;
    scgi_temp_path PREFIX/scgi;
    server {
        listen %s:%d;
        root %s;
    }
}""" % (HOST, port, root),
        # the files are in our private temp dir: workers keep the user we run as
        main="user root;\n" if os.getuid() == 0 else "")


def start_redis(tmp, port, name):
    return start_waiting(tmp, unique(name),
                         [REDIS_SERVER, "--port", str(port), "--bind", HOST, "--save", "",
                          "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
                          "--dir", tmp], lambda p: port_listening(port))


def start_iperf3(tmp, port, name):
    return start_waiting(tmp, unique(name), [IPERF3, "-s", "-p", str(port), "-B", HOST],
                         lambda p: port_listening(port))


# --------------------------------------------------------------------------------------
# the load client

def run_pfload(tmp, mode, port, args, timeout, sample=None):
    """Run pfload to completion; return (counts, sample_result).

    sample: (delay, function) called once delay seconds after the start, while
    the load runs; its result comes back as sample_result.
    """
    argv = [PFLOAD, mode, "-a", "%s:%d" % (HOST, port)] + [str(a) for a in args]
    delay, fn = sample if sample is not None else (0, None)
    out, sampled = run_tool(tmp, "pfload", argv, timeout, delay, fn, what="pfload " + mode)
    lines = out.strip().splitlines()
    if not lines:
        raise BenchError("pfload %s printed nothing: %s" % (
            mode, _read(os.path.join(tmp, "pfload.log"))[-300:]))
    return json.loads(lines[-1]), sampled


def errors_of(c):
    return sum(c.get(k, 0) for k in ("failed_connects", "resets", "early_eofs",
                                      "timeouts", "mismatches"))


# --------------------------------------------------------------------------------------
# the run

WORKLOADS_FULL = [
    # (key, kind, conns, size, label)
    # 8, 16, 32: a small pool opened at once, spread over the workers or not
    ("pp-8-64", "pingpong", 8, 64, "pingpong 8 conn x 64 B"),
    ("pp-16-64", "pingpong", 16, 64, "pingpong 16 conn x 64 B"),
    ("pp-32-64", "pingpong", 32, 64, "pingpong 32 conn x 64 B"),
    ("pp-64-64", "pingpong", 64, 64, "pingpong 64 conn x 64 B"),
    ("pp-256-64", "pingpong", 256, 64, "pingpong 256 conn x 64 B"),
    ("pp-1000-64", "pingpong", 1000, 64, "pingpong 1000 conn x 64 B"),
    ("pp-64-4k", "pingpong", 64, 4096, "pingpong 64 conn x 4 KiB"),
    ("pp-1000-4k", "pingpong", 1000, 4096, "pingpong 1000 conn x 4 KiB"),
    ("connect", "churn", 64, 64, "connect rate (64 at a time, 64 B each)"),
    ("bulk", "bulk", 8, 65536, "bulk (8 conn, 64 KiB chunks)"),
    ("redis", "redis", 50, 0, "redis-benchmark SET+GET (50 clients)"),
    ("iperf3", "iperf3", 2, 0, "iperf3 (2 streams)"),
    # size: a key of HTTP_FILES
    ("http-1k-4", "wrk", 4, "1k", "HTTP 1.4 KB file, wrk 4 conn keep-alive"),
    ("http-1k-50", "wrk", 50, "1k", "HTTP 1.4 KB file, wrk 50 conn keep-alive"),
    ("http-64k-4", "wrk", 4, "64k", "HTTP 64 KiB file, wrk 4 conn keep-alive"),
    ("http-64k-50", "wrk", 50, "64k", "HTTP 64 KiB file, wrk 50 conn keep-alive"),
    ("http-ab-1k", "ab", 16, "1k", "HTTP 1.4 KB file, ab 16 conn, no keep-alive"),
]
WORKLOADS_QUICK = ["pp-64-64", "pp-1000-64", "pp-64-4k", "connect", "bulk", "redis", "iperf3",
                   "http-1k-4", "http-64k-50", "http-ab-1k"]


def drive_pfload(tmp, a, kind, port, conns, size, sample):
    """pfload pingpong, churn or bulk for a.duration seconds."""
    d = a.duration
    args = ["-c", conns, "-s", size, "-d", d, "-n", a.sources,
            "-P", min(a.clients, conns), "-t", 10000]
    # pingpong and bulk connect first, then run d seconds: sample the memory mid-run
    lead = 0.3 + conns / 5000.0 if kind != "churn" else 0.0
    return run_pfload(tmp, kind, port, args, timeout=d + 40, sample=(lead + d * 0.5, sample))


# Each kind of workload: (its rate's unit, its unit of work for efficiency, the groups it
# runs in, its driver: function(tmp, args, kind, port, conns, size, sample) returning
# (counts, sampled PSS)).  A new kind of workload costs a row here and its run_* function.
ECHO_PROXY = ("echo", "proxy")
KINDS = {
    "pingpong": ("msg/s", "msg", ECHO_PROXY, drive_pfload),
    "churn": ("conn/s", "conn", ECHO_PROXY, drive_pfload),
    "bulk": ("MB/s", "MB", ECHO_PROXY, drive_pfload),
    "redis": ("req/s", "req", ("redis",), lambda tmp, a, kind, port, conns, size, sample:
              run_redis_benchmark(tmp, port, conns, max(5000, int(a.duration * 15000)),
                                  sample)),
    "iperf3": ("MB/s", "MB", ("iperf3",), lambda tmp, a, kind, port, conns, size, sample:
               run_iperf3(tmp, port, conns, a.duration, sample)),
    "wrk": ("req/s", "req", ("http",), lambda tmp, a, kind, port, conns, size, sample:
            run_wrk(tmp, port, conns, HTTP_FILES[size][0], a.duration, sample)),
    "ab": ("req/s", "req", ("http",), lambda tmp, a, kind, port, conns, size, sample:
           run_ab(tmp, port, conns, HTTP_FILES[size][0], a.duration, sample)),
}
UNITS = {k: v[0] for k, v in KINDS.items()}
EFF_UNITS = {k: v[1] for k, v in KINDS.items()}


def wl_groups(kind):
    """The groups a kind of workload runs in."""
    return KINDS[kind][2]


def parse_variant(spec, daemon, listener):
    """One --pf-variant NAME:ITEM[,ITEM...], each ITEM daemon.KEY=VALUE, listener.KEY=VALUE
    or bin=PATH: (NAME, daemon lines, listener lines, binary or None).  The variant's
    configuration lines come after daemon and listener (the --pf-daemon/--pf-listener
    lines every preforkd gets)."""
    vname, _, items = spec.partition(":")
    dx, lx, binary = list(daemon), list(listener), None
    for item in filter(None, items.split(",")):
        if item.startswith("bin="):
            binary = item[len("bin="):]
            if not binary or not os.access(binary, os.X_OK):
                raise SystemExit("bench: --pf-variant %r: %r is not an executable file" %
                                 (spec, binary))
            continue
        sect, _, rest = item.partition(".")
        key, _, val = rest.partition("=")
        if sect not in ("daemon", "listener") or not key or not val or not vname:
            raise SystemExit("bench: bad --pf-variant %r "
                             "(NAME:daemon.KEY=VALUE,listener.KEY=VALUE,bin=PATH)" % spec)
        (dx if sect == "daemon" else lx).append("%s = %s" % (key.strip(), val.strip()))
    if not vname:
        raise SystemExit("bench: bad --pf-variant %r (no NAME before the colon)" % spec)
    return vname, dx, lx, binary


def build_groups(a):
    """[(group name, backend Server or None, [Server, ...])] in report order."""
    w = a.workers
    de, le = a.pf_daemon, a.pf_listener
    variants = [parse_variant(spec, de, le) for spec in a.pf_variant]

    def pf(group, vname, dx, lx, binary, backend):
        name = "preforkd" + ("-" + vname if vname else "")
        return Server(name, "preforkd", group, lambda tmp, port: start_preforkd(
            tmp, port, w, "%s-%s" % (name, group),
            backend=backend.port if backend else None, daemon_extra=dx, listener_extra=lx,
            binary=binary))

    def pfs(group, backend):
        """The preforkd and its variants, in that order."""
        return [pf(group, vn, dx, lx, b, backend)
                for vn, dx, lx, b in [("", de, le, None)] + variants]

    def proxies(group, backend):
        return pfs(group, backend) + [
            Server("haproxy", "haproxy", group, lambda tmp, port: start_haproxy(
                tmp, port, w, "haproxy-" + group, backend.port)),
            Server("nginx", "nginx", group, lambda tmp, port: start_nginx(
                tmp, port, w, "nginx-" + group, backend.port)),
            Server("direct", "direct", group, None)]

    echo = pfs("echo", None) + \
        [Server("refecho", "refecho", "echo",
                lambda tmp, port: start_refecho(tmp, port, w, "refecho-echo"))]
    backend = Server("backend", "refecho", "backend",
                     lambda tmp, port: start_refecho(tmp, port, w, "backend"))
    redis = Server("redis-server", "redis", "backend",
                   lambda tmp, port: start_redis(tmp, port, "redis-server"))
    iperf = Server("iperf3 -s", "iperf3", "backend",
                   lambda tmp, port: start_iperf3(tmp, port, "iperf3-server"))
    origin = Server("nginx (http)", "nginx", "backend",
                    lambda tmp, port: start_nginx_http(tmp, port, w, "nginx-origin"))
    return [("echo", None, echo), ("proxy", backend, proxies("proxy", backend)),
            ("redis", redis, proxies("redis", redis)),
            ("iperf3", iperf, proxies("iperf3", iperf)),
            ("http", origin, proxies("http", origin))]


def preforkd_version(binary):
    """What binary -V prints, or "?"."""
    try:
        return subprocess.run([binary, "-V"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def versions():
    v = {"preforkd": preforkd_version(PREFORKD)}
    given = os.environ.get("PREFORKD")
    if given and os.path.realpath(given) != os.path.realpath(os.path.join(REPO, "build",
                                                                           "preforkd")):
        v["preforkd"] += " (%s)" % given    # not this checkout's build: its revision is unknown
    else:
        try:
            rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, timeout=5).stdout.strip()
            dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src"],
                                   capture_output=True, text=True, timeout=5).stdout.strip()
            if rev:
                v["preforkd"] += " (git %s%s)" % (rev, ", src/ modified" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass
    for name, argv in (("haproxy", [HAPROXY, "-v"]), ("nginx", [NGINX, "-v"]),
                       ("gnuplot", [GNUPLOT, "--version"]),
                       ("redis-benchmark", [REDIS_SERVER, "--version"]),
                       ("iperf3", [IPERF3, "--version"]), ("wrk", [WRK, "--version"]),
                       ("ab", [AB, "-V"])):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=5)
            v[name] = (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            v[name] = "not installed"
    v["kernel"] = platform.release()
    return v


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576)
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": os.cpu_count(), "model": model, "memory": mem,
            "loadavg": _read("/proc/loadavg").split()[:3]}


def run_cell(tmp, a, wl, srv, backend):
    """One workload on one system; returns the cell's figures."""
    key, kind, conns, size, _ = wl
    port = backend.port if srv.family == "direct" else srv.port
    measured = backend if srv.family == "direct" else srv
    d = a.duration
    spids = measured.pids()
    bpids = backend.pids() if srv.family != "direct" and backend else []
    cpu0, bcpu0 = cpu_seconds(spids), cpu_seconds(bpids)
    counts, pss = KINDS[kind][3](tmp, a, kind, port, conns, size,
                                 lambda: pss_kib(measured.pids()))
    # processes may have been replaced (a respawned worker): count the ones there now too
    spids2 = list(dict.fromkeys(spids + measured.pids()))
    cpu = cpu_seconds(spids2) - cpu0
    bcpu = cpu_seconds(bpids) - bcpu0 if bpids else None
    rate = counts["rate"]
    elapsed = counts["elapsed"] or d
    work = rate * elapsed
    cell = {"rate": rate, "cpu": cpu, "eff": work / cpu if cpu > 0 else None,
            "backend_cpu": bcpu, "pss_kib": pss, "errors": errors_of(counts),
            "first_error": counts.get("first_error", ""), "elapsed": elapsed}
    if "latency_us" in counts:
        lat = counts["latency_us"]
        cell.update(p50=lat.get("p50"), p99=lat.get("p99"), p999=lat.get("p999"))
    return cell


def run_tool(tmp, name, argv, timeout, sample_after, sample, what=None):
    """Run a client tool to completion, sampling once after sample_after seconds
    (sample None: never); returns (stdout, sampled).  what names it in errors
    (default: name)."""
    what = what or name
    p = Proc(name, argv, tmp, stdout_pipe=True)
    sampled = None
    try:
        if sample is not None:
            end = time.monotonic() + sample_after
            while time.monotonic() < end and p.alive():
                time.sleep(0.02)
            if p.alive():
                sampled = sample()
        try:
            out, _ = p.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError("%s did not finish in %.0f s" % (what, timeout))
        if p.proc.returncode != 0:
            raise BenchError("%s failed (%d): %s" % (what, p.proc.returncode,
                                                     (out.decode(errors="replace") +
                                                      p.log()).strip()[-300:]))
        return out.decode(errors="replace"), sampled
    finally:
        p.stop()


def run_redis_benchmark(tmp, port, clients, n, sample):
    """redis-benchmark SET then GET, n requests each: requests/s over both, latency
    (the mean of the two tests' percentiles)."""
    argv = [REDIS_BENCHMARK, "-h", HOST, "-p", str(port), "-c", str(clients), "-n", str(n),
            "-t", "set,get", "--csv"]
    t0 = time.monotonic()
    out, pss = run_tool(tmp, "redis-benchmark", argv, 120, 0.5, sample)
    rows = {}
    for line in out.splitlines():
        f = [x.strip('"') for x in line.split(",")]
        if len(f) >= 7 and f[0] in ("SET", "GET"):
            rows[f[0]] = [float(x) for x in f[1:7]]
    if set(rows) != {"SET", "GET"} or not all(r[0] > 0 for r in rows.values()):
        raise BenchError("redis-benchmark: no SET and GET rates in %r" % out[-300:])
    busy = sum(n / r[0] for r in rows.values())
    lat = {"p50": statistics.mean(r[3] for r in rows.values()) * 1000,
           "p99": statistics.mean(r[5] for r in rows.values()) * 1000}
    return {"rate": 2 * n / busy, "elapsed": busy, "latency_us": lat,
            "wall": time.monotonic() - t0}, pss


def run_timed(tmp, name, argv, d, sample):
    """run_tool for a client that runs d seconds, sampled in the middle."""
    return run_tool(tmp, name, argv, d + 40, 0.3 + d * 0.5, sample)


def http_url(port, path):
    return "http://%s:%d%s" % (HOST, port, path)


_WRK_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def run_wrk(tmp, port, conns, path, d, sample):
    """wrk (keep-alive, HTTP/1.1) for d seconds on one file: requests/s, latency
    percentiles, and every socket error or non-2xx reply as an error."""
    argv = [WRK, "-t", str(min(2, conns)), "-c", str(conns), "-d", "%ds" % max(1, round(d)),
            "--latency", "--timeout", "5s", http_url(port, path)]
    out, pss = run_timed(tmp, "wrk", argv, d, sample)
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    n = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s),", out)
    if not m or not n or float(m.group(1)) <= 0:
        raise BenchError("wrk: no request rate in %r" % out[-300:])
    lat = {}
    for pct, v, unit in re.findall(r"^\s*(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out,
                                   re.M):
        lat["p" + pct] = float(v) * _WRK_UNITS[unit]
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    counts = {"rate": float(m.group(1)),
              "elapsed": float(n.group(2)) * _WRK_UNITS[n.group(3)] / 1e6,
              "latency_us": lat,
              "failed_connects": int(sock.group(1)) if sock else 0,
              "resets": sum(int(x) for x in sock.groups()[1:3]) if sock else 0,
              "timeouts": int(sock.group(4)) if sock else 0,
              "mismatches": int(bad.group(1)) if bad else 0}
    if sock or bad:
        counts["first_error"] = (sock.group(0) if sock else bad.group(0))
    return counts, pss


def run_ab(tmp, port, conns, path, d, sample):
    """ab (HTTP/1.0, a connection per request) for d seconds on one file: requests/s,
    latency percentiles from its CSV, failed and non-2xx requests as errors."""
    csv_path = os.path.join(tmp, unique("ab") + ".csv")
    # -t implies -n 50000; the -n after it lifts that, so the time decides
    argv = [AB, "-q", "-r", "-s", "5", "-c", str(conns), "-t", str(max(1, round(d))),
            "-n", "10000000", "-e", csv_path, http_url(port, path)]
    out, pss = run_timed(tmp, "ab", argv, d, sample)
    m = re.search(r"Requests per second:\s*([\d.]+)", out)
    t = re.search(r"Time taken for tests:\s*([\d.]+)", out)
    if not m or not t or float(m.group(1)) <= 0:
        raise BenchError("ab: no request rate in %r" % out[-300:])
    lat = {}
    try:
        with open(csv_path) as f:
            for line in f:
                pct, _, ms = line.strip().partition(",")
                if pct in ("50", "99"):
                    lat["p" + pct] = float(ms) * 1000
    except (OSError, ValueError):
        pass
    failed = re.search(r"Failed requests:\s*(\d+)", out)
    bad = re.search(r"Non-2xx responses:\s*(\d+)", out)
    counts = {"rate": float(m.group(1)), "elapsed": float(t.group(1)), "latency_us": lat,
              "early_eofs": int(failed.group(1)) if failed else 0,
              "mismatches": int(bad.group(1)) if bad else 0}
    if counts["early_eofs"] or counts["mismatches"]:
        counts["first_error"] = re.sub(r"\s+", " ", (failed.group(0) if counts["early_eofs"]
                                                     else bad.group(0)))
    return counts, pss


def run_iperf3(tmp, port, streams, d, sample):
    """iperf3 client for d seconds: MB/s received (10^6 bytes)."""
    argv = [IPERF3, "-c", HOST, "-p", str(port), "-t", str(max(1, int(round(d)))),
            "-P", str(streams), "-J", "--connect-timeout", "5000"]
    out, pss = run_timed(tmp, "iperf3", argv, d, sample)
    try:
        res = json.loads(out)
        if res.get("error"):
            raise BenchError("iperf3: %s" % res["error"])
        end = res["end"]["sum_received"]
        return {"rate": end["bits_per_second"] / 8e6, "elapsed": end["seconds"]}, pss
    except (ValueError, KeyError, TypeError) as e:
        raise BenchError("iperf3: unreadable JSON (%s): %r" % (e, out[-300:]))


def warm_pss(tmp, port, sources, pids):
    """Warm a fresh server up (first allocations, pages of code and libraries touched
    once: 100 connections held briefly), then return its PSS in KiB."""
    run_pfload(tmp, "hold", port, ["-c", 100, "-d", 0.3, "-n", sources, "-t", 10000],
               timeout=30)
    time.sleep(0.3)
    return pss_kib(pids())


def hold_connections(tmp, port, count, sources, clients, while_held, settle=45.0,
                     conn_timeout=20.0, tick=None):
    """pfload hold of count connections (each checked by a one-byte exchange), spread
    over clients processes and sources - 1 source addresses.  Once pfload says every
    connection is settled, call while_held(held) and stop pfload.

    settle: seconds allowed to settle; conn_timeout: pfload -t, per connection.
    tick: called about every 2 s while waiting to settle (progress), if given.
    Returns {"held", "settle_s", "counts" (pfload's JSON), "sampled" (while_held's)}.
    """
    argv = [PFLOAD, "hold", "-a", "%s:%d" % (HOST, port), "-c", str(count),
            "-d", "%g" % (settle + 60), "-n", str(sources), "-P", str(clients),
            "-t", str(int(conn_timeout * 1000)), "-s", "1"]
    t0 = time.monotonic()
    p = Proc("pfload-hold", argv, tmp, stdout_pipe=True, stderr_pipe=True)
    try:
        err = b""
        end = t0 + settle
        next_tick = t0 + 2
        m = None
        while time.monotonic() < end and m is None:
            r, _, _ = select.select([p.proc.stderr], [], [], 0.2)
            if r:
                chunk = os.read(p.proc.stderr.fileno(), 4096)
                if not chunk:
                    break
                err += chunk
                m = re.search(rb"holding (\d+) connections", err)
            if tick is not None and time.monotonic() >= next_tick:
                next_tick += 2
                tick()
        if m is None:
            raise BenchError("pfload hold did not settle in %.0f s: %r" % (settle, err[-300:]))
        settled = time.monotonic() - t0
        held = int(m.group(1))
        sampled = while_held(held)
        os.kill(p.pid, signal.SIGTERM)
        out, _ = p.proc.communicate(timeout=30 + conn_timeout)
        counts = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        p.stop(timeout=5 + count / 10000)   # closing many takes the client a while
    return {"held": held, "settle_s": settled, "counts": counts, "sampled": sampled}


def run_memory(tmp, a, srv):
    """Per idle connection: a fresh instance, PSS before and after holding a.hold."""
    fresh = Server(srv.name, srv.family, srv.group, srv._start).start(tmp)
    try:
        before = warm_pss(tmp, fresh.port, a.sources, fresh.pids)
        count = a.hold
        if srv.family == "haproxy":
            count = min(count, haproxy_max_hold())

        def after(held):
            time.sleep(0.5)
            return pss_kib(fresh.pids())

        h = hold_connections(tmp, fresh.port, count, a.sources, a.clients, after)
        held, after, counts = h["held"], h["sampled"], h["counts"]
        return {"before_kib": before, "after_kib": after, "held": held,
                "bytes_per_conn": (after - before) * 1024.0 / held if held else None,
                "errors": errors_of(counts) + counts.get("peer_closed", 0),
                "first_error": counts.get("first_error", "")}
    finally:
        fresh.stop()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def peers_of(srv, systems):
    """The systems srv is compared with: another family, never "direct"."""
    return [s for s in systems if s.family not in (srv.family, "direct")
            and not (srv.family == "direct")]


def is_variant(srv):
    """Whether srv is a --pf-variant (a preforkd other than the main one)."""
    return srv.family == "preforkd" and srv.name != "preforkd"


# A variant's figures against the main preforkd: (summary field, cell field), the median
# of the per-round ratios.
VARIANT_RATIOS = (("vs_pf", "rate"), ("eff_vs_pf", "eff"), ("p99_vs_pf", "p99"))


def variant_ratios(results, rounds, cell, name):
    """The VARIANT_RATIOS of variant name in cell (group, workload key)."""
    out = {}
    for field, f in VARIANT_RATIOS:
        rs = []
        for r in range(rounds):
            mine = results.get((r, *cell, name))
            main = results.get((r, *cell, "preforkd"))
            if mine and main and mine.get(f) and main.get(f):
                rs.append(mine[f] / main[f])
        out[field] = median(rs)
    return out


def summarize(results, groups, workloads, rounds):
    """Medians of the figures and of the per-round ratios."""
    summary = {}
    for gname, systems in groups:
        for wl in workloads:
            key = wl[0]
            for srv in systems:
                cells = [results.get((r, gname, key, srv.name)) for r in range(rounds)]
                cells = [c for c in cells if c]
                if not cells:
                    continue
                s = {}
                for f in ("rate", "cpu", "eff", "backend_cpu", "pss_kib", "p50", "p99",
                          "p999"):
                    s[f] = median([c.get(f) for c in cells])
                s["errors"] = sum(c.get("errors", 0) for c in cells)
                s["first_error"] = next((c["first_error"] for c in cells
                                         if c.get("first_error")), "")
                ratios, eratios, p99r = [], [], []
                for r in range(rounds):
                    mine = results.get((r, gname, key, srv.name))
                    others = [results.get((r, gname, key, p.name))
                              for p in peers_of(srv, systems)]
                    others = [o for o in others if o]
                    if not mine or not others:
                        continue
                    best = max(o["rate"] for o in others)
                    if best > 0:
                        ratios.append(mine["rate"] / best)
                    effs = [o["eff"] for o in others if o.get("eff")]
                    if effs and mine.get("eff"):
                        eratios.append(mine["eff"] / max(effs))
                    p99s = [o["p99"] for o in others if o.get("p99")]
                    if p99s and mine.get("p99"):
                        p99r.append(mine["p99"] / min(p99s))
                s["ratio"] = median(ratios)
                s["eff_ratio"] = median(eratios)
                s["p99_ratio"] = median(p99r)
                if is_variant(srv):
                    s.update(variant_ratios(results, rounds, (gname, key), srv.name))
                summary[(gname, key, srv.name)] = s
    return summary


# --------------------------------------------------------------------------------------
# report

def fmt(x, nd=0, unit=""):
    if x is None:
        return "—"
    if nd == 0:
        return "{:,.0f}{}".format(x, unit)
    return "{:,.{}f}{}".format(x, nd, unit)


def fmt_rate(x, kind):
    return fmt(x, 1 if UNITS[kind] == "MB/s" else 0)


def table(gname, systems, workloads, summary):
    proxy = gname != "echo"
    head = ["workload", "system", "rate", "ratio", "p50 µs", "p99 µs", "p99.9 µs",
            "CPU s", "efficiency (per CPU-s)", "eff. ratio", "PSS KiB"]
    if proxy:
        head.insert(8, "backend CPU s")
    head.append("errors")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for wl in workloads:
        key, kind, _, _, label = wl
        for srv in systems:
            s = summary.get((gname, key, srv.name))
            if s is None:
                continue
            ratio = "ceiling" if srv.family == "direct" else fmt(s["ratio"], 2, "x")
            eratio = "—" if srv.family == "direct" else fmt(s["eff_ratio"], 2, "x")
            row = [label, srv.name, "%s %s" % (fmt_rate(s["rate"], kind), UNITS[kind]), ratio,
                   fmt(s["p50"], 0), fmt(s["p99"], 0), fmt(s["p999"], 0),
                   fmt(s["cpu"], 2), "%s %s" % (fmt_rate(s["eff"], kind),
                                                EFF_UNITS[kind]) if s["eff"] else "—",
                   eratio, fmt(s["pss_kib"], 0)]
            if proxy:
                row.insert(8, "—" if srv.family == "direct" else fmt(s["backend_cpu"], 2))
            row.append(str(s["errors"]) + (" (%s)" % s["first_error"]
                                           if s["errors"] and s["first_error"] else ""))
            out.append("| " + " | ".join(row) + " |")
    return "\n".join(out)


def variant_table(groups, workloads, summary):
    """Each --pf-variant against the main preforkd, cell by cell (None: no variant)."""
    out = ["| group | workload | system | rate | preforkd rate | rate ratio | eff. ratio "
           "| p99 ratio |", "|---|---|---|---|---|---|---|---|"]
    for gname, systems in groups:
        for key, kind, _, _, label in workloads:
            main = summary.get((gname, key, "preforkd"))
            for srv in filter(is_variant, systems):
                s = summary.get((gname, key, srv.name))
                if s is None or main is None:
                    continue
                out.append("| %s | %s | %s | %s %s | %s %s | %s | %s | %s |" % (
                    gname, label, srv.name, fmt_rate(s["rate"], kind), UNITS[kind],
                    fmt_rate(main["rate"], kind), UNITS[kind], fmt(s["vs_pf"], 3, "x"),
                    fmt(s["eff_vs_pf"], 3, "x"), fmt(s["p99_vs_pf"], 3, "x")))
    return "\n".join(out) if len(out) > 2 else None


def memory_table(mem, rounds):
    out = ["| group | system | PSS before KiB | PSS after KiB | held "
           "| bytes per idle connection | errors |",
           "|---|---|---|---|---|---|---|"]
    for (gname, name), rows in mem.items():
        rows = [r for r in rows if r]
        if not rows:
            continue
        out.append("| %s | %s | %s | %s | %s | %s | %d |" % (
            gname, name, fmt(median([r["before_kib"] for r in rows])),
            fmt(median([r["after_kib"] for r in rows])),
            fmt(median([r["held"] for r in rows])),
            fmt(median([r["bytes_per_conn"] for r in rows])),
            sum(r["errors"] for r in rows)))
    return "\n".join(out)


def targets(summary, mem, workloads):
    """preforkd against the targets of issue 5, where this run measured them."""
    rows = []
    keys = {w[0]: w for w in workloads}

    def check(what, value, goal, ok, unit="x"):
        if value is None:
            rows.append((what, "—", goal, "not measured"))
        else:
            rows.append((what, fmt(value, 2, unit) if unit == "x" else fmt(value, 0, unit),
                         goal, "met" if ok(value) else "MISSED"))

    for key in ("pp-64-64", "pp-1000-64", "pp-64-4k", "pp-1000-4k"):
        if key not in keys:
            continue
        s = summary.get(("echo", key, "preforkd"), {})
        check("echo %s: msg/s vs refecho" % keys[key][4], s.get("ratio"), ">= 0.9x",
              lambda v: v >= 0.9)
        check("echo %s: efficiency vs refecho" % keys[key][4], s.get("eff_ratio"), ">= 0.9x",
              lambda v: v >= 0.9)
    if "connect" in keys:
        s = summary.get(("echo", "connect", "preforkd"), {})
        check("echo connect rate vs refecho", s.get("ratio"), ">= 0.8x", lambda v: v >= 0.8)
    for key in ("pp-64-64", "pp-1000-64", "pp-64-4k", "pp-1000-4k"):
        if key not in keys:
            continue
        s = summary.get(("proxy", key, "preforkd"), {})
        lab = keys[key][4]
        check("proxy %s: efficiency vs best of HAProxy/nginx" % lab, s.get("eff_ratio"),
              ">= 1.3x", lambda v: v >= 1.3)
        check("proxy %s: msg/s vs best of HAProxy/nginx" % lab, s.get("ratio"), ">= 1.2x",
              lambda v: v >= 1.2)
        check("proxy %s: p99 vs the lower of HAProxy/nginx" % lab, s.get("p99_ratio"),
              "<= 1.0x", lambda v: v <= 1.0)
    if "connect" in keys:
        s = summary.get(("proxy", "connect", "preforkd"), {})
        check("proxy connect rate vs best of HAProxy/nginx", s.get("ratio"), ">= 1.2x",
              lambda v: v >= 1.2)
    if "bulk" in keys:
        s = summary.get(("proxy", "bulk", "preforkd"), {})
        check("proxy bulk MB/s vs best of HAProxy/nginx", s.get("ratio"), ">= 1.5x",
              lambda v: v >= 1.5)
    for key, wl in keys.items():
        if wl[1] not in ("wrk", "ab"):
            continue
        s = summary.get(("http", key, "preforkd"), {})
        check("%s: requests/s vs best of HAProxy/nginx" % wl[4], s.get("ratio"), ">= 1.0x",
              lambda v: v >= 1.0)
    for gname, limit in (("echo", 256), ("proxy", 512)):
        rows_ = [r for r in mem.get((gname, "preforkd"), []) if r]
        v = median([r["bytes_per_conn"] for r in rows_])
        check("%s memory per idle connection" % gname, v, "<= %d B" % limit,
              lambda x, lim=limit: x <= lim, unit=" B")
    out = ["| target | measured | goal | |", "|---|---|---|---|"]
    out += ["| %s | %s | %s | %s |" % r for r in rows]
    return "\n".join(out)


def charts(outdir, tmp, groups, workloads, summary, mem, notes):
    """throughput.png (rate and efficiency vs connections, 64 B pingpong) and memory.png."""
    if not os.access(GNUPLOT, os.X_OK):
        notes.append("gnuplot is not installed: no charts")
        return []
    pp = sorted({w[2] for w in workloads if w[1] == "pingpong" and w[3] == 64})
    made = []
    plots = []
    for gname, systems in groups:
        if gname not in ("echo", "proxy"):
            continue
        for metric in ("rate", "eff"):
            lines = []
            for srv in systems:
                path = os.path.join(tmp, "tp-%s-%s-%s.dat" % (gname, metric, srv.name))
                pts = []
                for c in pp:
                    key = next(w[0] for w in workloads if w[1] == "pingpong" and w[2] == c
                               and w[3] == 64)
                    s = summary.get((gname, key, srv.name))
                    if s and s.get(metric):
                        pts.append("%d %f" % (c, s[metric]))
                if not pts:
                    continue
                with open(path, "w") as f:
                    f.write("\n".join(pts) + "\n")
                lines.append("'%s' using 1:2 with linespoints lw 2 pt 7 title '%s'" % (
                    path, srv.name))
            plots.append((gname, metric, lines))
    script = ["set terminal pngcairo size 1200,900 font ',10'",
              "set output '%s'" % os.path.join(outdir, "throughput.png"),
              "set multiplot layout 2,2 title 'pingpong, 64-byte messages (medians)'",
              "set logscale x 2", "set grid", "set key left bottom", "set xlabel 'connections'",
              "set yrange [0:*]", "set xrange [%g:%g]" % (min(pp) / 1.5, max(pp) * 1.5)
              if pp else ""]
    for metric in ("rate", "eff"):
        for gname in ("echo", "proxy"):
            lines = next((p[2] for p in plots if p[0] == gname and p[1] == metric), [])
            script.append("set title '%s: %s'" % (
                gname, "messages/s" if metric == "rate" else "messages per server CPU-second"))
            script.append("set ylabel '%s'" % ("msg/s" if metric == "rate" else "msg / CPU-s"))
            if lines:
                script.append("plot " + ", ".join(lines))
            else:
                script.append("set label 1 'no data' at graph 0.5,0.5 center")
                script.append("plot NaN notitle")
                script.append("unset label 1")
    script.append("unset multiplot")
    if not pp:
        script = []     # no 64-byte pingpong in this run: no throughput chart
    # memory per idle connection
    mdat = os.path.join(tmp, "mem.dat")
    rows, top = [], 0
    for (gname, name), rs in mem.items():
        v = median([r["bytes_per_conn"] for r in rs if r])
        if v is not None:
            rows.append('"%s\\n(%s)" %f' % (name, gname, v))
            top = max(top, v)
    if rows:
        with open(mdat, "w") as f:
            f.write("\n".join(rows) + "\n")
        script += ["set terminal pngcairo size 900,500 font ',10'",
                   "set output '%s'" % os.path.join(outdir, "memory.png"),
                   "unset logscale", "set autoscale", "set yrange [0:%g]" % (top * 1.12 or 1),
                   "set xrange [-0.6:%g]" % (len(rows) - 0.4),
                   "set title 'memory per idle connection (PSS growth / connections held, median)'",
                   "set ylabel 'bytes'", "unset xlabel", "set style fill solid 0.6",
                   "set boxwidth 0.6", "set key off", "set grid ytics", "set bmargin 4",
                   "plot '%s' using 0:2:xtic(1) with boxes, '' using 0:2:(sprintf('%%.0f', $2)) "
                   "with labels offset 0,0.7" % mdat]
    gp = os.path.join(tmp, "charts.gp")
    with open(gp, "w") as f:
        f.write("\n".join(script) + "\n")
    r = subprocess.run([GNUPLOT, gp], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        notes.append("gnuplot failed: %s" % r.stderr.strip()[-300:])
    for name in ("throughput.png", "memory.png"):
        if os.path.exists(os.path.join(outdir, name)):
            made.append(name)
    return made


def scale_note(outdir):
    """A line on the scale run (tests/bench/scale.py) whose SCALE.md is in outdir, or None."""
    try:
        with open(os.path.join(outdir, "SCALE.json")) as f:
            r = json.load(f)
    except (OSError, ValueError):
        return None
    ok = not r.get("problems") and not r.get("error")
    return ("At scale (`make bench-scale`, [SCALE.md](SCALE.md), %s): %s idle echo connections "
            "%s over %s workers, %s B of PSS each." % (
                r.get("info", {}).get("versions", {}).get("preforkd", "?"),
                fmt(r.get("args", {}).get("conns")),
                "held and verified" if ok else "asked, NOT all held (see there)",
                r.get("args", {}).get("workers", "?"), fmt(r.get("pss_per_conn_bytes"))))


def write_report(a, outdir, info, groups, workloads, summary, mem, notes, made, raw, began,
                 took):
    lines = ["# preforkd benchmark%s" % (" (quick run)" if a.quick else ""), "",
             "Made by `%s` on %s UTC in %.0f s." % (
                 " ".join(["tests/bench/bench.py"] + sys.argv[1:]),
                 began.strftime("%Y-%m-%d %H:%M"), took), "",
             "## Machine and versions", "",
             "- machine: %d CPUs (`nproc`), %s, %s RAM, kernel %s; "
             "load average %s at the start, %s at the end" % (
                 info["machine"]["nproc"], info["machine"]["model"], info["machine"]["memory"],
                 info["versions"]["kernel"], " ".join(info["machine"]["loadavg"]),
                 " ".join(info["machine"].get("loadavg_end", []))),
             "- preforkd: %s" % info["versions"]["preforkd"],
             ] + ["- preforkd-%s: %s (%s)" % (n, v["version"], v["binary"])
                  for n, v in sorted(info.get("variants", {}).items())] + [
             "- HAProxy: %s" % info["versions"]["haproxy"],
             "- nginx: %s (stream module)" % info["versions"]["nginx"],
             "- redis-benchmark / redis-server: %s; iperf3: %s; %s; %s" % (
                 info["versions"]["redis-benchmark"], info["versions"]["iperf3"],
                 info["versions"]["wrk"], info["versions"]["ab"]),
             "- reference server: refecho (tests/tools/refecho.c); load client: pfload "
             "(tests/tools/pfload.c)",
             "- settings: %d workers/threads per server; %d client processes; %d source "
             "addresses; %g s per cell; %d round(s), medians; %d idle connections held "
             "for the memory figure" % (a.workers, a.clients, a.sources - 1, a.duration,
                                        a.rounds, a.hold),
             "", "Client and servers share the same %d CPUs, so compare ratios and efficiency "
             "(work per CPU-second of the server under test) rather than absolute rates." %
             info["machine"]["nproc"], ""]
    lines += ["## Targets (issue 5)", "", targets(summary, mem, workloads), ""]
    for gname, systems in groups:
        title = {"echo": "Echo: preforkd against the reference server",
                 "proxy": "Proxy (backend: refecho): preforkd, HAProxy, nginx, no proxy",
                 "redis": "redis-benchmark through each proxy (backend: redis-server)",
                 "iperf3": "iperf3 through each proxy (backend: iperf3 -s)",
                 "http": "HTTP through each proxy (backend: nginx, sendfile on, headers and file "
                 "in two writes): wrk and ab"
                 }[gname]
        lines += ["## " + title, "", table(gname, systems, workloads, summary), ""]
    vt = variant_table(groups, workloads, summary)
    if vt:
        lines += ["## Variants against preforkd", "", vt, "",
                  "rate ratio, eff. ratio, p99 ratio: the variant's figure divided by the "
                  "main preforkd's in the same round, median over the rounds; 1.000x is the "
                  "same.", ""]
    if any(r for rs in mem.values() for r in rs):
        lines += ["## Memory per idle connection", "", memory_table(mem, a.rounds), "",
                  "PSS of all the server's processes (kernel socket buffers are not in PSS); "
                  "a fresh instance, warmed up with 100 connections, then %d held." % a.hold,
                  ""]
    scale = scale_note(outdir)
    if scale:
        lines += [scale, ""]
    if made:
        lines += ["## Charts", ""]
        lines += ["![%s](%s)" % (m[:-4], m) for m in made]
        lines.append("")
    lines += ["## How to read it", "",
              "- ratio: rate divided by the best peer's rate in the same round (echo: the other "
              "server; proxy: the best other proxy), median over the rounds. eff. ratio: the "
              "same for efficiency.",
              "- rate: messages/s (pingpong, every echo checked), connections/s (connect, one "
              "64-byte exchange each), MB/s of echoed bytes (bulk), requests/s over the SET and "
              "GET tests (redis-benchmark; its latency columns are the mean of the two tests' "
              "p50 and p99), MB/s received (iperf3), requests/s of HTTP/1.1 with keep-alive "
              "(wrk: its p50 and p99; socket errors and non-2xx replies counted as errors) "
              "and of HTTP/1.0 with a connection per request (ab: p50 and p99 from its "
              "percentile CSV; failed and non-2xx requests counted as errors).",
              "- CPU s: CPU time of the server under test during the cell, every process and "
              "thread (for \"direct\", the backend). efficiency: work done per CPU-second.",
              "- PSS KiB: the server's PSS sampled in the middle of the cell.",
              "- errors: failed connects, resets, early EOFs, timeouts and mismatches, summed "
              "over the rounds.", ""]
    if notes:
        lines += ["## Notes", ""] + ["- " + n for n in notes] + [""]
    with open(os.path.join(outdir, "LATEST.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(outdir, "LATEST.json"), "w") as f:
        json.dump(raw, f, indent=1, sort_keys=True)


# --------------------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="fewer cells, 1 round, short durations (under two minutes)")
    ap.add_argument("--workers", type=int, default=2, help="workers/threads per server (2)")
    ap.add_argument("--rounds", type=int, help="rounds (3; --quick 1)")
    ap.add_argument("--duration", type=float, help="seconds per cell (4; --quick 1.5)")
    ap.add_argument("--clients", type=int, default=2, help="pfload client processes (2)")
    ap.add_argument("--sources", type=int, default=64,
                    help="pfload -n: source addresses 127.0.0.2 .. 127.0.0.N (64)")
    ap.add_argument("--hold", type=int, default=10000,
                    help="idle connections held for the memory figure (10000)")
    ap.add_argument("--only", help="comma-separated workload keys (%s)" %
                    ",".join(w[0] for w in WORKLOADS_FULL))
    ap.add_argument("--no-memory", action="store_true", help="skip the memory figure")
    ap.add_argument("--out", help="output folder (tests/bench/results, "
                    "--quick: tests/bench/results/quick)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, configs)")
    ap.add_argument("--pf-daemon", action="append", default=[], metavar="'KEY = VALUE'",
                    help="extra [daemon] line for every preforkd (repeatable)")
    ap.add_argument("--pf-listener", action="append", default=[], metavar="'KEY = VALUE'",
                    help="extra [listener] line for every preforkd (repeatable)")
    ap.add_argument("--pf-variant", action="append", default=[],
                    metavar="NAME:ITEM[,...]",
                    help="add a preforkd variant to every group; ITEM: daemon.KEY=VALUE, "
                    "listener.KEY=VALUE or bin=PATH (another binary), e.g. "
                    "reuseport:daemon.dispatch=reuseport or base:bin=/tmp/pf-base "
                    "(repeatable)")
    ap.add_argument("--time-limit", type=float,
                    help="watchdog: abort after this many seconds (3600; --quick 300)")
    a = ap.parse_args()
    if a.rounds is None:
        a.rounds = 1 if a.quick else 3
    if a.duration is None:
        a.duration = 1.5 if a.quick else 4.0
    if a.time_limit is None:
        a.time_limit = 300 if a.quick else 3600
    if a.out is None:
        a.out = os.path.join(REPO, "tests", "bench", "results", *(["quick"] if a.quick else []))
    if not (1 <= a.workers <= 64 and 1 <= a.clients <= 64 and 2 <= a.sources <= 254
            and a.rounds >= 1 and a.duration > 0 and a.hold >= 1):
        ap.error("a value is out of range")
    return a


def wind_down(notes):
    """Note anything alarming in the servers' logs, then stop every process started."""
    for p in Proc.started:
        if p.name.startswith("pfload"):
            continue
        text = p.log()
        for bad in ("[crit]", "[alert]", "[emerg]", "ERROR: AddressSanitizer",
                    "runtime error:"):
            if bad in text:
                notes.append("%s's log holds %r" % (p.name, bad))
    stop_all()


def main():
    a = parse_args()
    if a.only:
        keys = a.only.split(",")
        workloads = [w for w in WORKLOADS_FULL if w[0] in keys]
    elif a.quick:
        workloads = [w for w in WORKLOADS_FULL if w[0] in WORKLOADS_QUICK]
    else:
        workloads = list(WORKLOADS_FULL)
    if not workloads:
        raise SystemExit("bench: no workload selected")
    for path in (PREFORKD, PFLOAD, REFECHO):
        if not os.access(path, os.X_OK):
            raise SystemExit("bench: %s is missing (make build/preforkd build/tools/pfload "
                             "build/tools/refecho)" % path)

    began = datetime.datetime.now(datetime.timezone.utc)
    t_start = time.monotonic()
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="pfbench-")
    notes = []
    info = {"versions": versions(), "machine": machine()}
    binaries = {vn: b for vn, _, _, b in (parse_variant(v, (), ()) for v in a.pf_variant) if b}
    if binaries:
        info["variants"] = {vn: {"binary": b, "version": preforkd_version(b)}
                            for vn, b in binaries.items()}

    watch(a.time_limit)
    all_groups = build_groups(a)
    active = {g for w in workloads for g in wl_groups(w[1])}
    results = {}
    mem = {}
    groups = []         # [(group, [Server, ...])]: the systems that started
    backends = {}
    ok = False
    try:
        log("temp dir %s; %d workload(s), %d round(s), %g s per cell" % (
            tmp, len(workloads), a.rounds, a.duration))
        for gname, backend, systems in all_groups:
            if gname not in active:
                continue
            missing = [t for t, g in ((REDIS_BENCHMARK, "redis"), (REDIS_SERVER, "redis"),
                                      (IPERF3, "iperf3"), (WRK, "http"), (AB, "http"))
                       if g == gname and
                       not os.access(t, os.X_OK)]
            if missing:
                notes.append("group %s left out: %s not installed" % (gname, ", ".join(missing)))
                continue
            if backend is not None:
                try:
                    backend.start(tmp)
                except (BenchError, OSError) as e:
                    notes.append("group %s left out: its backend did not start: %s" % (gname, e))
                    log("group %s left out: %s" % (gname, e))
                    continue
            up = []
            for srv in systems:
                if srv.family == "direct":
                    up.append(srv)
                    continue
                try:
                    srv.start(tmp)
                    up.append(srv)
                except (BenchError, OSError) as e:
                    srv.error = str(e)
                    notes.append("%s (%s) left out: %s" % (srv.name, gname, e))
                    log("%s (%s) left out: %s" % (srv.name, gname, e))
            groups.append((gname, up))
            backends[gname] = backend

        for rnd in range(a.rounds):
            for wi, wl in enumerate(workloads):
                for gname, systems in groups:
                    if gname not in wl_groups(wl[1]):
                        continue
                    backend = backends[gname]
                    k = (rnd + wi) % len(systems)
                    for srv in systems[k:] + systems[:k]:
                        for s_ in ([srv] if srv.family != "direct" else []) + \
                                ([backend] if backend else []):
                            if not s_.proc.alive():
                                notes.append("%s (%s) died; restarted before %s round %d" % (
                                    s_.name, gname, wl[0], rnd + 1))
                                s_.proc.stop()
                                s_.start(tmp)
                        try:
                            cell = run_cell(tmp, a, wl, srv, backend)
                        except BenchError as e:
                            notes.append("round %d, %s, %s/%s: %s" % (rnd + 1, wl[0], gname,
                                                                      srv.name, e))
                            log("%s %s/%s: %s" % (wl[0], gname, srv.name, e))
                            continue
                        results[(rnd, gname, wl[0], srv.name)] = cell
                        log("round %d %-10s %-6s %-16s %12.1f %-6s cpu %5.2f s%s" % (
                            rnd + 1, wl[0], gname, srv.name, cell["rate"], UNITS[wl[1]],
                            cell["cpu"], "  errors %d" % cell["errors"]
                            if cell["errors"] else ""))
            if not a.no_memory:
                for gname, systems in groups:
                    if gname not in ("echo", "proxy"):
                        continue
                    order = [s_ for s_ in systems if s_.family != "direct"]
                    k = rnd % max(1, len(order))
                    for srv in order[k:] + order[:k]:
                        try:
                            m = run_memory(tmp, a, srv)
                        except (BenchError, OSError, ValueError) as e:
                            notes.append("round %d, memory %s/%s: %s" % (rnd + 1, gname,
                                                                         srv.name, e))
                            log("memory %s/%s: %s" % (gname, srv.name, e))
                            m = None
                        mem.setdefault((gname, srv.name), []).append(m)
                        if m:
                            log("round %d memory %-6s %-16s %8.0f B/conn (%d held)%s" % (
                                rnd + 1, gname, srv.name, m["bytes_per_conn"] or 0, m["held"],
                                "  errors %d" % m["errors"] if m["errors"] else ""))
        if not a.no_memory and any(s_.family == "haproxy" for g, ss in groups
                                   if g == "proxy" for s_ in ss) \
                and haproxy_max_hold() < a.hold:
            notes.append("HAProxy runs its threads in one process, which the open-file limit "
                         "(%d) caps at about half as many proxied connections: its memory "
                         "figure holds %d connections, not %d" % (
                             _nofile(), haproxy_max_hold(), a.hold))
        ok = True
    except KeyboardInterrupt:
        log("interrupted; stopping every process started")
        raise
    except Watchdog as e:
        log("%s; stopping every process started" % e)
        notes.append(str(e) + ": the run is incomplete")
    finally:
        signal.alarm(0)
        uninterrupted(lambda: wind_down(notes))
        if not a.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        elif ok:
            log("kept %s" % tmp)

    took = time.monotonic() - t_start
    info["machine"]["loadavg_end"] = _read("/proc/loadavg").split()[:3]
    summary = summarize(results, groups, workloads, a.rounds)
    ctmp = tempfile.mkdtemp(prefix="pfbench-plot-")
    try:
        made = charts(a.out, ctmp, groups, workloads, summary, mem, notes)
    finally:
        shutil.rmtree(ctmp, ignore_errors=True)
    raw = {"info": info, "args": vars(a), "took_s": took,
           "cells": [dict(round=k[0] + 1, group=k[1], workload=k[2], system=k[3], **v)
                     for k, v in sorted(results.items())],
           "memory": [dict(group=k[0], system=k[1], round=i + 1, **(v or {}))
                      for k, vs in mem.items() for i, v in enumerate(vs)],
           "summary": [dict(group=k[0], workload=k[1], system=k[2], **v)
                       for k, v in sorted(summary.items())],
           "notes": notes}
    write_report(a, a.out, info, groups, workloads, summary, mem, notes, made, raw, began, took)
    log("done in %.0f s: %s" % (took, os.path.join(a.out, "LATEST.md")))
    return 0 if ok else 1


if __name__ == "__main__":
    run_main(main)
