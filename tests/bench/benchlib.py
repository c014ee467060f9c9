#!/usr/bin/python3
"""benchlib.py: what every benchmark script here needs, and nothing about a benchmark.

Processes started in their own session with their output to a log file, and stopped by
PID (the whole tree, SIGTERM then SIGKILL); their CPU time and PSS from /proc; free
loopback ports and whether one listens; waiting on a condition with a deadline; logging
to stderr.  bench.py (the side-by-side benchmark) imports these, and dispatch.py,
scale.py and source.py use them through it.  This file may not start a server or name a
workload: that is bench.py's.
"""

import os
import random
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tests", "integration"))
import pfharness as H     # noqa: E402  (helpers shared with the tests)

HOST = "127.0.0.1"


class BenchError(Exception):
    pass


class Watchdog(BaseException):
    """The run went past its time limit."""


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


# --------------------------------------------------------------------------------------
# processes

def _starttime(pid):
    """The start time of pid (clock ticks since boot), or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return int(data[data.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _children(pid):
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out.extend(int(x) for x in f.read().split())
        except (OSError, ValueError):
            pass
    return out


def process_tree(pid):
    """pid and all its descendants that are alive now."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen or _starttime(p) is None:
            continue
        seen.append(p)
        todo.extend(_children(p))
    return seen


def cpu_seconds(pids):
    """CPU time of every thread of pids, in seconds (scheduler nanoseconds)."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total / 1e9


def pss_kib(pids):
    """Total PSS of pids in KiB (from /proc/PID/smaps_rollup)."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except (OSError, ValueError, IndexError):
            pass
    return total


class Proc:
    """A process started by the bench, in its own session, output to a log file."""

    started = []        # every Proc, for the final clean-up

    def __init__(self, name, argv, tmp, env=None, stdout_pipe=False, stderr_pipe=False):
        self.name = name
        self.logpath = os.path.join(tmp, "%s.log" % name)
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else self.logf,
            stderr=subprocess.PIPE if stderr_pipe else self.logf,
            env=env, start_new_session=True, close_fds=True)
        self.pid = self.proc.pid
        self.known = {self.pid: _starttime(self.pid)}
        Proc.started.append(self)

    def alive(self):
        return self.proc.poll() is None

    def tree(self):
        pids = process_tree(self.pid) if self.alive() else []
        for p in pids:
            self.known.setdefault(p, _starttime(p))
        return pids

    def log(self):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout=5.0):
        """SIGTERM to the root, then SIGKILL to whatever of its tree is left."""
        self.tree()     # remember the current descendants by pid and start time
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.alive() and not self._leftovers():
                break
            time.sleep(0.02)
        for pid in self._leftovers() + ([self.pid] if self.alive() else []):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        end = time.monotonic() + 5
        while self._leftovers() and time.monotonic() < end:
            time.sleep(0.02)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        self.logf.close()

    def _leftovers(self):
        """Known descendants that still run (the same process: same start time)."""
        return [p for p, st in self.known.items()
                if p != self.pid and st is not None and _starttime(p) == st
                and not _is_zombie(p)]


def _is_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return data[data.rindex(")") + 2] == "Z"
    except (OSError, ValueError, IndexError):
        return True


def stop_all():
    for p in reversed(Proc.started):
        if p.alive() or p._leftovers():
            try:
                p.stop(timeout=3.0)
            except Exception as e:      # keep stopping the others
                log("stopping %s (pid %d): %s" % (p.name, p.pid, e))


_used_ports = set()


def free_port():
    lo, hi = H.listen_port_range(20000)
    for _ in range(200):
        port = random.randint(lo, hi)
        if port in _used_ports:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((HOST, port))
        except OSError:
            continue
        finally:
            s.close()
        _used_ports.add(port)
        return port
    raise BenchError("no free port")


def port_listening(port):
    """Whether something listens on HOST:port (from /proc/net/tcp, without connecting:
    a probe would reach the backend behind a proxy)."""
    want = "%08X:%04X" % (_hexaddr(HOST), port)
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1] == want and fields[3] == "0A":
                    return True
    except (OSError, IndexError, StopIteration):
        pass
    return False


def _hexaddr(host):
    """/proc/net/tcp's spelling of an IPv4 address: the 32-bit value in host order."""
    return int.from_bytes(socket.inet_aton(host), sys.byteorder)


def wait_until(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise BenchError("%s: not ready after %.0f s" % (what, timeout))


_seq = [0]


def unique(name):
    """name-N: every start gets its own log, configuration and folder."""
    _seq[0] += 1
    return "%s-%d" % (name, _seq[0])


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def start_waiting(tmp, name, argv, ready, more=None, timeout=10):
    """Proc(name, argv, tmp), then wait up to timeout seconds until ready(p) or its exit.
    An exit raises BenchError with the end of its log (and more(), when given); on any
    error the process is stopped.  Returns the Proc."""
    p = Proc(name, argv, tmp)
    try:
        wait_until(lambda: not p.alive() or ready(p), timeout, name)
        if not p.alive():
            raise BenchError("%s exited: %s" % (name, p.log().strip()[-300:] +
                                                ((" " + more()) if more else "")))
    except BaseException:
        p.stop()
        raise
    return p


def watch(time_limit):
    """SIGTERM, SIGHUP and SIGINT (even where the shell left it ignored) raise
    KeyboardInterrupt; after time_limit seconds, SIGALRM raises Watchdog."""
    def on_term(signo, frame):
        raise KeyboardInterrupt("signal %d" % signo)

    def on_alarm(signo, frame):
        raise Watchdog("time limit of %.0f s reached" % time_limit)

    for signo in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signo, on_term)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(time_limit))


def uninterrupted(fn):
    """fn() with SIGTERM and SIGINT ignored, so that a second Ctrl-C does not cut the
    clean-up short; the default handlers afterwards."""
    for signo in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signo, signal.SIG_IGN)
    try:
        fn()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_main(main):
    """A script's entry: exit with main()'s status, 130 on Ctrl-C."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
