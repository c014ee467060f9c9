"""Harness for preforkd's integration tests.

Starts the real binary ($PREFORKD) in a temporary directory with a generated
config on free loopback ports, waits for readiness through a test-owned
NOTIFY_SOCKET, and offers the helpers the tests share: the worker list, reload,
stop, memory and CPU figures, the log, and byte-exact echo exchanges.

Environment:
  PREFORKD        the binary (default: build/preforkd of this checkout)
  PFLOAD          the load client (default: build/tools/pfload)
  PREFORKD_ASAN=1 the binary is an ASan build: memory thresholds compare growth
                  over a baseline, CPU ratios may loosen, waits get longer
  PREFORKD_KEEP=1 keep each test's temporary directory (its path is printed)
  PREFORKD_SPLICE auto, on or off: the splice key of every proxy listener that
                  does not set its own (the proxy tests, run with each)

Nothing here sleeps in the hope that something happened: every wait polls a
condition against a deadline and fails with what it saw.
"""

import ctypes
import errno
import fcntl
import hashlib
import json
import os
import random
import re
import resource
import select
import selectors
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFORKD = os.environ.get("PREFORKD", os.path.join(REPO, "build", "preforkd"))
PFLOAD = os.environ.get("PFLOAD", os.path.join(REPO, "build", "tools", "pfload"))
ASAN = os.environ.get("PREFORKD_ASAN", "") == "1"
KEEP = os.environ.get("PREFORKD_KEEP", "") == "1"
SPLICE = os.environ.get("PREFORKD_SPLICE") or None


def src_define(path, name):
    """The number a `#define NAME N` of src/PATH gives (int, or float if it has a
    point), so that a test's bound follows the code it bounds."""
    with open(os.path.join(REPO, "src", path)) as f:
        m = re.search(r"^#define\s+%s\s+([0-9.]+)" % re.escape(name), f.read(), re.M)
    assert m, "no #define %s in src/%s" % (name, path)
    return float(m.group(1)) if "." in m.group(1) else int(m.group(1))


# ASan builds start and run slower: stretch deadlines, not assertions.
SLOW = 3.0 if ASAN else 1.0


def listen_port_range(low=10000):
    """Ports to listen on, from low up: outside the ephemeral range, so that no
    client socket of this box can take one as its source port (a connect to a
    closed port inside the ephemeral range can connect to itself).  The tests
    take them from 10000, the benchmark from 20000."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    if lo - 1 - low >= 2000:
        return low, lo - 1
    if 65535 - hi >= 2000:
        return hi + 1, 65535
    return 10000, 65535         # no room outside it: self-connects are still caught


PORT_LO, PORT_HI = listen_port_range()

BAD_LOG = ("[crit]", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

RE_STARTED = re.compile(r"worker (\d+) gen (\d+) started, pid (\d+)")
RE_GEN_READY = re.compile(r"generation (\d+) ready: (\d+) workers")
RE_RESPAWN = re.compile(r"respawning worker (\d+) in (\d+) ms")


class HarnessError(AssertionError):
    pass


def timed_teardown(teardown):
    """teardown() under its own time limit (60 s, times SLOW), whatever the test left
    of its own; returns what it returns (its problems)."""
    signal.alarm(int(60 * SLOW))
    try:
        return teardown()
    finally:
        signal.alarm(0)


def read_line(sock, timeout=5.0, limit=256, what="line"):
    """Bytes from sock up to and including a newline, one recv at a time (nothing
    after the line is taken).  HarnessError after timeout seconds, at EOF, or past
    limit bytes; what names the line in those errors."""
    end = deadline(timeout)
    got = b""
    sock.settimeout(0.2)
    while not got.endswith(b"\n"):
        if time.monotonic() >= end:
            raise HarnessError("no %s in time (have %r)" % (what, got))
        try:
            ch = sock.recv(1)
        except socket.timeout:
            continue
        if not ch:
            raise HarnessError("EOF before the %s (have %r)" % (what, got))
        got += ch
        if len(got) > limit:
            raise HarnessError("%s too long: %r" % (what, got))
    return got


def deadline(seconds):
    """A monotonic deadline `seconds` (stretched for ASan) from now."""
    return time.monotonic() + seconds * SLOW


def wait_for(cond, timeout, what, interval=0.005):
    """Poll cond() until it returns a true value (returned) or fail after timeout."""
    end = deadline(timeout)
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() >= end:
            raise HarnessError("timed out after %.1fs waiting for %s" % (timeout * SLOW, what))
        time.sleep(interval)


# --------------------------------------------------------------------------
# /proc helpers

def proc_stat(pid):
    """Fields of /proc/PID/stat after the command name, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return s[s.rindex(")") + 2:].split()


def proc_alive(pid):
    """True when PID exists and is not a zombie."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def proc_starttime(pid):
    st = proc_stat(pid)
    return None if st is None else int(st[19])


def cpu_time(pid):
    """CPU seconds PID has run (0.0 when it is gone).

    From /proc/PID/schedstat, which the scheduler keeps in nanoseconds:
    utime/stime in /proc/PID/stat are sampled at clock ticks and charge a
    process that wakes often but briefly (the master) wildly wrong.
    """
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0]) / 1e9
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return 0.0


def vm_rss(pid):
    """VmRSS of PID in bytes (0 when gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def fd_links(pid):
    """(fd, what it names: "socket:[INODE]", a path, ...) for each descriptor PID
    has open; none once it is gone."""
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return
    for fd in fds:
        try:
            yield int(fd), os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:     # closed meanwhile (listdir's own fd, too)
            continue


def socket_inodes(pid):
    """Inodes of the sockets PID has open: {inode: fd}."""
    return {int(link[8:-1]): fd for fd, link in fd_links(pid) if link.startswith("socket:[")}


def pidfile_lock_holder(path):
    """The pid holding a write lock on file `path` (fcntl F_GETLK, as `preforkd -s` asks),
    None when no process locks it.  Takes no lock itself."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        fl = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)   # struct flock
        kind, _, _, _, pid = struct.unpack("hhqqi4x", fcntl.fcntl(fd, fcntl.F_GETLK, fl))
    finally:
        os.close(fd)
    return None if kind == fcntl.F_UNLCK else pid


def open_on(pid, path):
    """The descriptors of process pid open on file `path`."""
    return [fd for fd, link in fd_links(pid) if link == path]


def tcp_table():
    """Rows of /proc/net/tcp and tcp6: (local_port, remote_port, state, inode)."""
    rows = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    p = line.split()
                    lport = int(p[1].rsplit(":", 1)[1], 16)
                    rport = int(p[2].rsplit(":", 1)[1], 16)
                    rows.append((lport, rport, int(p[3], 16), int(p[9])))
        except FileNotFoundError:
            pass
    return rows


TCP_LISTEN = 0x0A


def listen_inode(port):
    """Inode of the listening socket on `port`, or None."""
    for lport, _, state, inode in tcp_table():
        if lport == port and state == TCP_LISTEN:
            return inode
    return None


_subreaper_set = False


def become_subreaper():
    """Workers orphaned by a killed master reparent to us, so teardown can reap them."""
    global _subreaper_set
    if _subreaper_set:
        return
    PR_SET_CHILD_SUBREAPER = 36
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    _subreaper_set = True


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


# --------------------------------------------------------------------------
# ports

_ports_given = set()


def port_is_free(port):
    for fam, host in ((socket.AF_INET, "127.0.0.1"),):
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
            s.listen(1)
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port():
    """A loopback port nobody uses now, below the ephemeral range, not handed out before."""
    rnd = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(500):
        port = rnd.randrange(PORT_LO, PORT_HI)
        if port in _ports_given:
            continue
        if port_is_free(port):
            _ports_given.add(port)
            return port
    raise HarnessError("no free port found")


# --------------------------------------------------------------------------
# client side

def connect(port, host="127.0.0.1", timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout * SLOW)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if s.getsockname() == s.getpeername():
        s.close()
        raise ConnectionRefusedError(errno.ECONNREFUSED, "self-connect: nobody listens")
    return s


def digest(data):
    return (len(data), hashlib.sha256(data).hexdigest())


def have_ipv6_loopback():
    """Whether ::1 can be bound here."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def payload(n, seed=None):
    """n bytes, different for each call (random), cheap for large n."""
    if n <= 1 << 20:
        return os.urandom(n)
    block = os.urandom(1 << 20)
    rnd = random.Random(seed)
    parts = []
    left = n
    while left > 0:
        off = rnd.randrange(0, 1 << 19)
        piece = block[off:off + min(left, (1 << 20) - off)]
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)


def exchange(sock, data, timeout=10.0, shut_wr=False, expect_eof=False):
    """Send data while reading the echo; return the bytes read.

    Reads until len(data) bytes came back (and, with expect_eof, until EOF,
    which must follow the last byte).  Raises on a timeout, on an early EOF
    or on more bytes than sent.
    """
    end = deadline(timeout)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if data else 0))
    sent = 0
    got = []
    ngot = 0
    eof = False
    view = memoryview(data)
    if not data and shut_wr:
        sock.shutdown(socket.SHUT_WR)
    try:
        while ngot < len(data) or (expect_eof and not eof):
            left = end - time.monotonic()
            if left <= 0:
                raise HarnessError("exchange timed out: sent %d/%d, received %d, eof=%s"
                                   % (sent, len(data), ngot, eof))
            for key, ev in sel.select(min(left, 0.5)):
                if ev & selectors.EVENT_WRITE and sent < len(data):
                    try:
                        sent += sock.send(view[sent:sent + (1 << 20)])
                    except BlockingIOError:
                        pass
                    if sent == len(data):
                        if shut_wr:
                            sock.shutdown(socket.SHUT_WR)
                        sel.modify(sock, selectors.EVENT_READ)
                if ev & selectors.EVENT_READ:
                    try:
                        chunk = sock.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        if ngot < len(data):
                            raise HarnessError("EOF after %d of %d bytes" % (ngot, len(data)))
                        eof = True
                        sel.unregister(sock)
                        break
                    got.append(chunk)
                    ngot += len(chunk)
                    if ngot > sent:
                        raise HarnessError("received %d bytes, only %d sent" % (ngot, sent))
    finally:
        sel.close()
        sock.setblocking(True)
        sock.settimeout(timeout * SLOW)
    return b"".join(got)


def echo_ok(port, data, timeout=10.0, host="127.0.0.1"):
    """One connection, one byte-exact exchange of data; asserts on any difference."""
    with connect(port, host=host, timeout=timeout) as s:
        back = exchange(s, data, timeout=timeout)
    assert digest(back) == digest(data), "echo differs"
    return True


def read_until_eof(sock, timeout=10.0, limit=64 << 20):
    """Read from sock until EOF; return the bytes.  Raises on timeout or past limit."""
    end = deadline(timeout)
    got = []
    n = 0
    sock.settimeout(0.2)
    try:
        while True:
            if time.monotonic() >= end:
                raise HarnessError("no EOF within %.1fs (%d bytes read)" % (timeout * SLOW, n))
            try:
                chunk = sock.recv(1 << 20)
            except socket.timeout:
                continue
            if not chunk:
                return b"".join(got)
            got.append(chunk)
            n += len(chunk)
            if n > limit:
                raise HarnessError("more than %d bytes before EOF" % limit)
    finally:
        sock.settimeout(timeout * SLOW)


def signal_pending(pid, sig):
    """True while signal sig is pending (not yet delivered) for process pid."""
    mask = 0
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("SigPnd:", "ShdPnd:")):
                    mask |= int(line.split()[1], 16)
    except (FileNotFoundError, ProcessLookupError):
        return False
    return bool(mask & (1 << (int(sig) - 1)))


def wait_closed_by_peer(sock, timeout):
    """Wait until the peer closes sock (EOF or reset); return the seconds it took.

    Any data received is an error.
    """
    t0 = time.monotonic()
    end = deadline(timeout)
    sock.settimeout(0.1)
    while True:
        try:
            d = sock.recv(4096)
            if d:
                raise HarnessError("unexpected %d bytes" % len(d))
            return time.monotonic() - t0
        except socket.timeout:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
        if time.monotonic() >= end:
            raise HarnessError("peer did not close within %.1fs" % (timeout * SLOW))


def port_refuses(port, host="127.0.0.1"):
    """True when a connect to port is refused."""
    try:
        s = connect(port, host=host, timeout=1.0)
    except (ConnectionRefusedError, socket.timeout, OSError):
        return True
    s.close()
    return False


def run_pfload(mode, port, *args, timeout=120):
    """Run pfload to completion; return its counts."""
    cmd = [PFLOAD, mode, "-a", "127.0.0.1:%d" % port] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "pfload failed (%d): %s" % (r.returncode, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


class Pfload:
    """pfload in the background: start(), then stop() or wait() for its counts."""

    def __init__(self, mode, port, *args):
        self.cmd = [PFLOAD, mode, "-a", "127.0.0.1:%d" % port] + [str(a) for a in args]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def running(self):
        return self.proc.poll() is None

    def wait_stderr(self, pattern, timeout=10.0):
        """Wait for a line of pfload's stderr matching regex pattern; return the match."""
        rx = re.compile(pattern)
        if not hasattr(self, "_err"):
            self._err = ""
            os.set_blocking(self.proc.stderr.fileno(), False)
        end = deadline(timeout)
        while True:
            m = rx.search(self._err)
            if m:
                return m
            left = end - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and not self._read_err(0)):
                raise HarnessError("pfload said no /%s/ (stderr: %r)" % (pattern, self._err))
            self._read_err(min(left, 0.2))

    def _read_err(self, timeout):
        r, _, _ = select.select([self.proc.stderr], [], [], timeout)
        if not r:
            return False
        chunk = os.read(self.proc.stderr.fileno(), 65536)
        self._err += chunk.decode(errors="replace")
        return bool(chunk)

    def wait(self, timeout=60):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise HarnessError("pfload did not finish in %ss" % timeout)
        err = getattr(self, "_err", "") + (err or "")
        assert self.proc.returncode == 0, "pfload failed (%d): %s" % (self.proc.returncode, err)
        self.stderr = err
        return json.loads(out.strip().splitlines()[-1])

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


# --------------------------------------------------------------------------
# config

def render_config(daemon=None, listeners=None):
    """INI text: [daemon] keys from `daemon`, one [listener NAME] per entry of `listeners`."""
    lines = []
    if daemon:
        lines.append("[daemon]")
        for k, v in daemon.items():
            lines.append("%s = %s" % (k, v))
        lines.append("")
    for name, keys in (listeners or {}).items():
        lines.append("[listener %s]" % name)
        for k, v in keys.items():
            # a list is a repeatable key (backend): one line per value, in order
            for one in (v if isinstance(v, (list, tuple)) else [v]):
                lines.append("%s = %s" % (k, one))
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# the daemon

class Daemon:
    """One preforkd master (and its workers) under test.

    listeners: {name: {key: value}}; a listener without "listen" gets
    127.0.0.1:<free port>.  self.ports maps each name to its port.
    """

    DEFAULT_DAEMON = {
        "workers": 2,
        "log_level": "info",
        "shutdown_timeout": "10s",
        "drain_timeout": "10s",
    }

    def __init__(self, tmpdir, daemon=None, listeners=None, args=(), preexec_fn=None,
                 env=None, use_config=True, wrap=None, notify_abstract=False):
        self.dir = tmpdir
        self.conf = os.path.join(tmpdir, "preforkd.conf")
        self.logpath = os.path.join(tmpdir, "preforkd.log")
        self.notify_path = os.path.join(tmpdir, "notify.sock")
        self.daemon_keys = dict(self.DEFAULT_DAEMON)
        self.daemon_keys.update(daemon or {})
        self.listeners = {}
        self.ports = {}
        for name, keys in (listeners if listeners is not None else {"echo": {}}).items():
            self.set_listener(name, **keys)
        self.args = list(args)
        self.preexec_fn = preexec_fn
        self.extra_env = env or {}
        self.use_config = use_config
        # wrap(daemon) -> argv prefix run in front of preforkd (it must exec it,
        # so that the pid stays the master's): sh -c 'exec ...', systemd-socket-activate
        self.wrap = wrap
        # NOTIFY_SOCKET=@name (abstract namespace): no file, no permission
        # checks, so a master that dropped privileges can still reach it
        self.notify_abstract = notify_abstract
        self.notify_name = None
        self.proc = None
        self.pid = None
        self.notify = None
        self.notes = []          # every sd_notify datagram received, in order
        self.note_times = []     # time.monotonic() when each of them was read
        self.note_pids = []      # the sender's pid of each (SCM_CREDENTIALS), None if unknown
        self.tracked = {}        # pid -> starttime of every process of ours seen
        self.exit_code = None

    # ---- config

    def set_listener(self, name, **keys):
        keys = {k: v for k, v in keys.items() if v is not None}
        if "listen" not in keys:
            port = self.ports.get(name) or free_port()
            keys["listen"] = "127.0.0.1:%d" % port
        if "mode" not in keys:
            keys["mode"] = "echo"
        self.listeners[name] = keys
        m = re.search(r":(\d+)$", keys["listen"])
        if m:
            self.ports[name] = int(m.group(1))

    def remove_listener(self, name):
        del self.listeners[name]
        self.ports.pop(name, None)

    @property
    def port(self):
        return self.ports[next(iter(self.listeners))]

    def config_text(self):
        return render_config(self.daemon_keys, self.listeners)

    def write_config(self, text=None):
        """Write the config (the generated one, or `text`) atomically."""
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.config_text() if text is None else text)
        os.rename(tmp, self.conf)

    # ---- start

    def command(self):
        cmd = [PREFORKD]
        if self.use_config:
            cmd += ["-c", self.conf]
        cmd += self.args
        if self.wrap is not None:
            cmd = list(self.wrap(self)) + cmd
        return cmd

    def start(self, ready_timeout=10.0):
        """Start and wait for READY=1.  Retries with new ports when one is taken."""
        for attempt in range(3):
            self._spawn()
            try:
                self.wait_ready(ready_timeout)
                return self
            except HarnessError:
                if self.proc.poll() is not None and "Address already in use" in self.log() \
                        and attempt < 2:
                    self._rotate_log("addrinuse-%d" % attempt)
                    for name, keys in list(self.listeners.items()):
                        if keys["listen"].startswith("127.0.0.1:"):
                            self.ports.pop(name, None)
                            keys.pop("listen")
                            self.set_listener(name, **keys)
                    continue
                raise
        raise HarnessError("could not start")

    def _rotate_log(self, suffix):
        if os.path.exists(self.logpath):
            os.rename(self.logpath, self.logpath + "." + suffix)

    def _spawn(self):
        become_subreaper()
        if self.use_config:
            self.write_config()
        if self.notify is None:
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            if self.notify_abstract:
                self.notify_name = "preforkd-test-%d-%s" % (os.getpid(), os.urandom(6).hex())
                self.notify.bind("\0" + self.notify_name)
            else:
                self.notify.bind(self.notify_path)
            self.notify.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            # the kernel then tells us who sent each datagram (systemd's NotifyAccess=main
            # drops what does not come from the main pid)
            self.notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        env.pop("LISTEN_FDS", None)
        env.pop("LISTEN_PID", None)
        env["NOTIFY_SOCKET"] = ("@" + self.notify_name) if self.notify_abstract \
            else self.notify_path
        env.update(self.extra_env)
        self.notes = []
        self.note_times = []
        self.note_pids = []
        self.exit_code = None
        with open(self.logpath, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, env=env, cwd=self.dir,
                                         preexec_fn=self.preexec_fn)
        self.pid = self.proc.pid
        self._track(self.pid)

    def _track(self, pid):
        if pid not in self.tracked:
            st = proc_starttime(pid)
            if st is not None:
                self.tracked[pid] = st

    # ---- sd_notify

    def _recv_one(self):
        d, anc, _, _ = self.notify.recvmsg(65536, socket.CMSG_SPACE(12))
        pid = None
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(data) >= 12:
                pid = struct.unpack("i", data[:4])[0]       # struct ucred: pid, uid, gid
        self.notes.append(d.decode(errors="replace"))
        self.note_times.append(time.monotonic())
        self.note_pids.append(pid)

    def _recv_notes(self, timeout):
        """Receive datagrams for up to `timeout` s (returns early on the first)."""
        self.notify.settimeout(max(timeout, 0.001))
        try:
            self._recv_one()
        except socket.timeout:
            return False
        self._recv_queued()
        return True

    def _keep_reading(self):
        """Read the queued notes (no wait) during long waits for something else:
        the socket queues only net.unix.max_dgram_qlen datagrams (see wait_exit)."""
        if self.notify is not None:
            self._recv_queued()

    def _recv_queued(self):
        """Receive the datagrams already queued, without waiting."""
        self.notify.settimeout(0)
        while True:
            try:
                self._recv_one()
            except (BlockingIOError, socket.timeout):
                return

    def drain_notes(self):
        """Read every datagram already queued; return how many notes are known."""
        self._recv_notes(0.001)
        return len(self.notes)

    def notes_for(self, seconds):
        """Receive every note for `seconds` (not stretched: for counting notes over a
        time window); return the index of the first one received in the window."""
        first = self.drain_notes()
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return first
            self._recv_notes(left)

    def state_notes(self, start=0):
        """[(index, state, fields)] of the notes from index start on that change the
        service state (READY=1, RELOADING=1, STOPPING=1), in order."""
        out = []
        for i in range(start, len(self.notes)):
            f = parse_note(self.notes[i])
            for k in ("READY", "RELOADING", "STOPPING"):
                if f.get(k) == "1":
                    out.append((i, k, f))
        return out

    def wait_note(self, pred, timeout, what, start=0, check_alive=True):
        """Wait for a note (from index `start` on) satisfying pred; return (index, fields)."""
        end = deadline(timeout)
        i = start
        while True:
            while i < len(self.notes):
                fields = parse_note(self.notes[i])
                if pred(fields):
                    return i, fields
                i += 1
            if check_alive and self.proc.poll() is not None:
                raise HarnessError("preforkd exited (%s) while waiting for %s; log tail:\n%s"
                                   % (self.proc.returncode, what, self.log_tail()))
            left = end - time.monotonic()
            if left <= 0:
                raise HarnessError("timed out waiting for %s; notes: %r; log tail:\n%s"
                                   % (what, self.notes[start:], self.log_tail()))
            self._recv_notes(min(left, 0.2))

    def wait_ready(self, timeout=10.0):
        _, f = self.wait_note(lambda f: f.get("READY") == "1", timeout, "READY=1")
        return f

    def status(self):
        """The latest STATUS= the master sent."""
        self.drain_notes()
        for n in reversed(self.notes):
            f = parse_note(n)
            if "STATUS" in f:
                return f["STATUS"]
        return None

    # ---- processes

    def worker_pids(self):
        pids = children(self.pid)
        for p in pids:
            self._track(p)
        return pids

    def wait_workers(self, n, timeout=10.0, exclude=()):
        """Wait until the master has exactly n children (none of them in exclude)."""
        excl = set(exclude)

        def ok():
            self._keep_reading()
            p = self.worker_pids()
            return p if len(p) == n and not (set(p) & excl) else None
        try:
            return wait_for(ok, timeout, "%d workers" % n)
        except HarnessError as e:
            raise HarnessError("%s (have %r); log tail:\n%s" % (e, self.worker_pids(),
                                                                 self.log_tail()))

    def wait_worker_ready(self, pid, timeout=10.0, start=0):
        """Wait until the master logs that worker pid said hello: from then on
        it is offered connections (needs log_level info or debug)."""
        self.wait_log(r"worker \d+ gen \d+ ready, pid %d\b" % pid, timeout, start)

    def started_workers(self):
        """{pid: (slot, gen)} of every worker the log says was started."""
        out = {}
        for m in RE_STARTED.finditer(self.log()):
            out[int(m.group(3))] = (int(m.group(1)), int(m.group(2)))
        return out

    def current_generation(self):
        gens = [int(m.group(1)) for m in RE_GEN_READY.finditer(self.log())]
        return gens[-1] if gens else None

    def rss_total(self):
        return vm_rss(self.pid) + sum(vm_rss(p) for p in self.worker_pids())

    # ---- signals

    def signal(self, sig):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)

    def reload(self, timeout=10.0):
        """SIGHUP, wait for RELOADING=1 then READY=1; return the READY's STATUS."""
        start = self.drain_notes()
        self.signal(signal.SIGHUP)
        i, _ = self.wait_note(lambda f: f.get("RELOADING") == "1", timeout, "RELOADING=1",
                              start=start)
        _, f = self.wait_note(lambda f: f.get("READY") == "1", timeout, "READY=1 after reload",
                              start=i + 1)
        if "STATUS" in f:
            return f["STATUS"]
        # STATUS may come in its own datagram right after
        self._recv_notes(0.2)
        return self.status()

    def wait_exit(self, timeout):
        """Wait for the master to exit; return its status (None after the deadline).

        Reads the notes meanwhile: a unix datagram socket queues only
        net.unix.max_dgram_qlen datagrams (10 on a box without systemd's sysctl
        defaults), and a master blocked sending the next one could not exit."""
        end = deadline(timeout)
        while True:
            rc = self.proc.poll()
            if rc is not None:
                if self.notify is not None:
                    self.drain_notes()
                return rc
            left = end - time.monotonic()
            if left <= 0:
                return None
            if self.notify is not None:
                self._recv_notes(min(left, 0.02))
            else:
                time.sleep(min(left, 0.02))

    def stop(self, sig=None, timeout=15.0):
        """Signal the master (SIGTERM), wait for it (SIGKILL after the deadline); return its status."""
        if sig is None:
            sig = signal.SIGTERM
        if self.proc is None:
            return None
        self.worker_pids()
        if self.proc.poll() is None:
            os.kill(self.pid, sig)
            rc = self.wait_exit(timeout)
            if rc is None:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                self.exit_code = "killed (no exit within %.1fs of %s)" % (
                    timeout * SLOW, signal.Signals(sig).name)
                return self.exit_code
        self.exit_code = self.proc.returncode
        return self.exit_code

    def kill_leftovers(self, timeout=5.0):
        """SIGKILL every process of ours still alive (by PID, start time checked); return them."""
        self.track_logged()
        left = []
        for pid, st in self.tracked.items():
            if pid == self.pid:
                continue
            if proc_starttime(pid) == st and proc_alive(pid):
                left.append(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        end = time.monotonic() + timeout
        for pid in left:
            while time.monotonic() < end:
                reap(pid)
                if not proc_alive(pid):
                    break
                time.sleep(0.01)
            reap(pid)
        return left

    def track_logged(self):
        """Track the workers the log names that still run our binary."""
        exe = os.path.realpath(PREFORKD)
        for pid in self.started_workers():
            if pid in self.tracked:
                continue
            try:
                if os.path.realpath("/proc/%d/exe" % pid) != exe:
                    continue
            except OSError:
                continue
            self._track(pid)

    def leftover_workers(self, timeout=5.0):
        """Tracked workers still alive after `timeout` s (waits for them to exit)."""
        self.track_logged()
        pids = [p for p in self.tracked if p != self.pid]

        def gone():
            for p in pids:
                reap(p)
            alive = [p for p in pids if proc_starttime(p) == self.tracked[p] and proc_alive(p)]
            return alive
        end = deadline(timeout)
        while True:
            alive = gone()
            if not alive or time.monotonic() >= end:
                return alive
            time.sleep(0.01)

    # ---- log

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def wait_log(self, pattern, timeout=10.0, start=0):
        """Wait until the log (from byte offset start) matches regex pattern; return the match."""
        rx = re.compile(pattern)

        def ok():
            self._keep_reading()
            return rx.search(self.log()[start:])
        try:
            return wait_for(ok, timeout, "log line /%s/" % pattern, interval=0.02)
        except HarnessError as e:
            raise HarnessError("%s; log tail:\n%s" % (e, self.log_tail()))

    def log_size(self):
        return len(self.log())

    def bad_log_lines(self):
        text = self.log()
        return [l for l in text.splitlines() if any(b in l for b in BAD_LOG)]

    def close(self):
        if self.notify is not None:
            self.notify.close()
            self.notify = None


def proc_creds(pid):
    """{"Uid": [real, effective, saved, fs], "Gid": [...], "Groups": [...]} of PID."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                out[k] = [int(x) for x in v.split()]
    return out


def low_free_port(lo=700, hi=999):
    """A free loopback port below 1024 (binding it needs root or CAP_NET_BIND_SERVICE)."""
    ports = list(range(lo, hi + 1))
    random.Random(os.getpid() ^ time.monotonic_ns()).shuffle(ports)
    for port in ports:
        if port not in _ports_given and port_is_free(port):
            _ports_given.add(port)
            return port
    raise HarnessError("no free port in %d..%d" % (lo, hi))


def parse_note(text):
    out = {}
    for line in text.split("\n"):
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


# --------------------------------------------------------------------------
# socket activation

SOCKET_ACTIVATE = "/usr/bin/systemd-socket-activate"

# what systemd-socket-activate passes on (it hands its child a near-empty environment)
PASS_ENV = ("NOTIFY_SOCKET", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")


class ActivatedDaemon(Daemon):
    """preforkd socket-activated by systemd-socket-activate(1).

    passed: [fdname, ...]: systemd-socket-activate binds one socket per name, on
    the port of the listener of that name (a free port for a name with no
    listener, in self.ports too, or the one passed_ports names) and passes them
    as fds 3, 4, ... with
    LISTEN_FDNAMES; it execs preforkd (LISTEN_PID is then preforkd's pid) on the
    first connection to any of them, which launch() makes (self.trigger).
    """

    def __init__(self, tmpdir, passed, passed_ports=None, **kw):
        super().__init__(tmpdir, **kw)
        self.passed = list(passed)
        self.trigger = None
        self.ports.update(passed_ports or {})     # {fdname: port} chosen by the test
        for name in self.passed:
            if name not in self.ports:
                self.ports[name] = free_port()
        self.wrap = self._activate_argv

    def _activate_argv(self, _):
        argv = [SOCKET_ACTIVATE]
        for name in self.passed:
            argv += ["-l", "127.0.0.1:%d" % self.ports[name]]
        argv.append("--fdname=" + ":".join(self.passed))
        for k in PASS_ENV + tuple(self.extra_env):
            if k == "NOTIFY_SOCKET" or k in os.environ or k in self.extra_env:
                argv += ["-E", k]
        return argv

    def passed_inodes(self):
        """{fdname: inode of the listening socket on its port} (None if nobody listens)."""
        return {name: listen_inode(self.ports[name]) for name in self.passed}

    def launch(self, timeout=10.0, may_exit=False):
        """Start systemd-socket-activate, wait until it listens on every port (its own
        sockets, by inode), then connect to the first one so that it execs preforkd.
        Returns the connection (also self.trigger), which preforkd serves once up.

        may_exit: preforkd is expected to exit at start.  It execs only once the
        trigger connection is established, and its exit closes the passed socket,
        resetting the trigger; whether the reset reaches the socket before connect()
        returns is a race with this process (lost on a busy machine).  So a reset
        trigger is an outcome here, not an error: self.trigger is then None."""
        if not os.access(SOCKET_ACTIVATE, os.X_OK):
            raise HarnessError("%s is missing (Debian package systemd)" % SOCKET_ACTIVATE)
        self._spawn()

        def listening():
            if self.proc.poll() is not None:
                raise HarnessError("systemd-socket-activate exited (%s); log:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            mine = socket_inodes(self.pid)
            inodes = self.passed_inodes()
            return all(ino is not None and ino in mine for ino in inodes.values())
        wait_for(listening, timeout, "systemd-socket-activate to listen on %r" % self.ports,
                 interval=0.01)
        try:
            self.trigger = connect(self.ports[self.passed[0]])
        except OSError as e:
            if not may_exit or e.errno not in (errno.ECONNRESET, errno.ENOTCONN,
                                               errno.ECONNABORTED, errno.EPIPE):
                raise
            self.trigger = None
        return self.trigger

    def start(self, ready_timeout=10.0):
        self.launch()
        self.wait_ready(ready_timeout)
        return self

    def close(self):
        if self.trigger is not None:
            self.trigger.close()
            self.trigger = None
        super().close()


class Session:
    """The daemons of one test, cleaned up (and their logs checked) at teardown."""

    def __init__(self, request):
        self.request = request
        self.daemons = []
        self.tmp = tempfile.mkdtemp(prefix="preforkd-%s-" % request.node.name[:40])
        self.n = 0

    def new(self, cls=None, **kw):
        self.n += 1
        d = os.path.join(self.tmp, "d%d" % self.n)
        os.makedirs(d)
        dm = (cls or Daemon)(d, **kw)
        self.daemons.append(dm)
        return dm

    def start(self, **kw):
        return self.new(**kw).start()

    def teardown(self):
        problems = []
        for d in self.daemons:
            if d.proc is None:
                d.close()
                continue
            d.worker_pids()
            d.track_logged()
            if d.proc.poll() is None:
                rc = d.stop(signal.SIGTERM, timeout=15)
                if rc != 0:
                    problems.append("master %d: SIGTERM at teardown gave %r" % (d.pid, rc))
            left = d.leftover_workers(timeout=5)
            if left:
                problems.append("workers still alive 5 s after the master exited: %r" % left)
                d.kill_leftovers()
            bad = d.bad_log_lines()
            if bad:
                problems.append("log %s has:\n  %s" % (d.logpath, "\n  ".join(bad[:20])))
            d.close()
        if KEEP:
            print("\npreforkd: kept %s" % self.tmp)
        else:
            import shutil
            shutil.rmtree(self.tmp, ignore_errors=True)
        return problems


class _Conn:
    __slots__ = ("sock", "data", "sent", "rcvd", "hash", "done", "connected")


def multi_echo(port, payloads, timeout=60.0, host="127.0.0.1"):
    """Echo each payload on its own connection, all at once, in one thread.

    Returns a list of problems (empty when every echo came back byte-exact:
    same length, same SHA-256).
    """
    sel = selectors.DefaultSelector()
    conns = []
    problems = []
    for data in payloads:
        c = _Conn()
        c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.sock.setblocking(False)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.data = memoryview(data)
        c.sent = c.rcvd = 0
        c.hash = hashlib.sha256()
        c.done = False
        c.connected = False
        rc = c.sock.connect_ex((host, port))
        if rc not in (0, errno.EINPROGRESS):
            problems.append("connect: %s" % os.strerror(rc))
            c.sock.close()
            continue
        sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        conns.append(c)
    left = len(conns)
    end = deadline(timeout)
    try:
        while left:
            t = end - time.monotonic()
            if t <= 0:
                pend = [c for c in conns if not c.done]
                problems.append("timed out with %d connections unfinished (e.g. sent %d/%d, "
                                "received %d)" % (len(pend), pend[0].sent, len(pend[0].data),
                                                   pend[0].rcvd))
                break
            for key, ev in sel.select(min(t, 0.5)):
                c = key.data
                if c.done:
                    continue
                fail = None
                if not c.connected:
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail = "connect: %s" % os.strerror(err)
                    else:
                        c.connected = True
                if fail is None and ev & selectors.EVENT_WRITE and c.sent < len(c.data):
                    try:
                        c.sent += c.sock.send(c.data[c.sent:c.sent + (1 << 18)])
                    except BlockingIOError:
                        pass
                    except OSError as e:
                        fail = "send: %s" % e
                    if fail is None and c.sent == len(c.data):
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                if fail is None and ev & selectors.EVENT_READ:
                    try:
                        chunk = c.sock.recv(1 << 18)
                        if not chunk:
                            fail = "EOF after %d of %d bytes" % (c.rcvd, len(c.data))
                        else:
                            c.hash.update(chunk)
                            c.rcvd += len(chunk)
                            if c.rcvd > c.sent:
                                fail = "received %d bytes, sent %d" % (c.rcvd, c.sent)
                    except BlockingIOError:
                        pass
                    except OSError as e:
                        fail = "recv: %s" % e
                if fail is None and c.rcvd == len(c.data) and c.sent == len(c.data):
                    if c.hash.hexdigest() != hashlib.sha256(c.data).hexdigest():
                        fail = "payload of %d bytes came back different" % len(c.data)
                    else:
                        c.done = True
                        left -= 1
                        sel.unregister(c.sock)
                        c.sock.close()
                if fail is not None:
                    problems.append("%d-byte echo: %s" % (len(c.data), fail))
                    c.done = True
                    left -= 1
                    sel.unregister(c.sock)
                    c.sock.close()
    finally:
        for c in conns:
            if not c.done:
                c.sock.close()
        sel.close()
    return problems


def worker_of_connections(d, port, client_ports):
    """Map each client port (connected to `port`) to the worker PID holding it.

    Matches the server side of each connection in /proc/net/tcp (local port
    `port`, remote port the client's) by inode against /proc/WPID/fd.
    """
    inode_owner = {}
    for w in d.worker_pids():
        for ino in socket_inodes(w):
            inode_owner.setdefault(ino, set()).add(w)
    want = set(client_ports)
    out = {}
    for lport, rport, state, inode in tcp_table():
        if lport == port and rport in want and inode:
            owners = inode_owner.get(inode)
            if owners and len(owners) == 1:
                out[rport] = next(iter(owners))
    return out


# --------------------------------------------------------------------------
# proxy mode: listener keys, connection summaries, backends run by the tests

def backend_spec(b):
    """The `backend =` value for b: a port (127.0.0.1:port), a string as is, or a
    backend object of ours (its .spec)."""
    if isinstance(b, int):
        return "127.0.0.1:%d" % b
    if isinstance(b, str):
        return b
    return b.spec


def proxy_listener(backends, **keys):
    """Keys of a mode = proxy listener relaying to `backends` (see backend_spec;
    a string may carry " weight=N" / " backup"); splice is $PREFORKD_SPLICE's unless
    given."""
    out = {"mode": "proxy", "backend": [backend_spec(b) for b in backends]}
    if SPLICE:
        out["splice"] = SPLICE
    out.update({k: v for k, v in keys.items() if v is not None})
    return out


RE_CLOSE = re.compile(r"^.*?\[info\] worker (\d+) gen (\d+): close (listener=.*)$", re.M)


def close_lines(d):
    """The connection summaries of d's log, oldest first: a dict of each line's
    key=value fields (listener, client, backend, connect, in, out, duration,
    reason), plus the slot and gen (ints) of the worker that logged it."""
    out = []
    for m in RE_CLOSE.finditer(d.log()):
        f = dict(kv.split("=", 1) for kv in m.group(3).split() if "=" in kv)
        f["slot"] = int(m.group(1))
        f["gen"] = int(m.group(2))
        out.append(f)
    return out


def wait_close_line(d, client, timeout=10.0):
    """Wait for the summary of the connection whose client= is `client` ("ADDR:PORT",
    or a port meaning 127.0.0.1:port); return its fields."""
    if isinstance(client, int):
        client = "127.0.0.1:%d" % client

    def find():
        for f in close_lines(d):
            if f.get("client") == client:
                return f
        return None
    try:
        return wait_for(find, timeout, "summary of client=%s" % client, interval=0.02)
    except HarnessError as e:
        raise HarnessError("%s; log tail:\n%s" % (e, d.log_tail()))


class BackendConn:
    """One connection an EchoBackend accepted."""
    __slots__ = ("sock", "peer", "t_accept", "t_close", "nin", "nout", "eof", "closed", "out")

    def __init__(self, sock, peer):
        self.sock = sock
        self.peer = peer
        self.t_accept = time.monotonic()
        self.t_close = None
        self.nin = self.nout = 0
        self.eof = False
        self.closed = False
        self.out = bytearray()


class _Server:
    """What the threaded test backends share: a listening socket on a fixed
    port (kept across stop() and start()), a wake-up socketpair and one
    thread that serves until stop() wakes it."""

    def __init__(self, host, port):
        self.host = host
        self.port = port or free_port()
        self._thread = None
        self._stop = False

    @property
    def spec(self):
        return "%s:%d" % (self.host, self.port)

    def _start_thread(self, target, backlog, name):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self.port))
        ls.listen(backlog)
        self._lsock = ls
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = False
        self._thread = threading.Thread(target=target, daemon=True, name=name)
        self._thread.start()
        return self

    def _wake_and_join(self, timeout):
        """Tell the serving thread to stop and wait for it; True if it ended."""
        self._stop = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._thread.join(timeout * SLOW)
        return not self._thread.is_alive()


class EchoBackend(_Server):
    """An echo server in a thread of the test process (selectors, non-blocking).

    ident: bytes sent first on every connection (e.g. b"B1\\n"), so a client
    learns which backend it reached.  Every connection is recorded in
    self.conns (peer, accept time, bytes in/out, open or closed).  After the
    peer's EOF the pending bytes are sent, then the connection is closed.
    stop() closes the listening socket and every connection (the port then
    refuses connections); start() listens again on the same port.
    """

    def __init__(self, ident=None, host="127.0.0.1", port=None, max_pending=1 << 20):
        super().__init__(host, port)
        self.ident = ident
        self.max_pending = max_pending
        self.conns = []

    @property
    def accepted(self):
        return len(self.conns)

    def open_conns(self):
        return [c for c in self.conns if not c.closed]

    def running(self):
        return self._thread is not None

    def start(self):
        self._start_thread(self._run, 1024, "echo-backend-%d" % self.port)
        self._lsock.setblocking(False)
        return self

    def stop(self, timeout=5.0):
        """Close the listening socket and every connection; returns when done."""
        if self._thread is None:
            return
        if not self._wake_and_join(timeout):
            raise HarnessError("echo backend on port %d did not stop" % self.port)
        self._thread = None
        self._wake_w.close()

    def _run(self):
        sel = selectors.DefaultSelector()
        sel.register(self._lsock, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        live = set()
        try:
            while not self._stop:
                for key, ev in sel.select(0.5):
                    if key.data == "listen":
                        self._accept(sel, live)
                    elif key.data != "wake":
                        self._serve(sel, key.data, ev, live)
        finally:
            for c in list(live):
                self._close(sel, c, live)
            sel.close()
            self._lsock.close()
            self._wake_r.close()

    def _accept(self, sel, live):
        for _ in range(64):
            try:
                s, peer = self._lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c = BackendConn(s, peer)
            if self.ident:
                c.out += self.ident
            live.add(c)
            self.conns.append(c)
            sel.register(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0), c)

    def _close(self, sel, c, live):
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        c.closed = True
        c.t_close = time.monotonic()
        live.discard(c)

    def _serve(self, sel, c, ev, live):
        try:
            if ev & selectors.EVENT_READ and not c.eof:
                try:
                    data = c.sock.recv(256 * 1024)
                    if data:
                        c.nin += len(data)
                        c.out += data
                    else:
                        c.eof = True
                except (BlockingIOError, InterruptedError):
                    pass
            if c.out:
                try:
                    n = c.sock.send(c.out)
                    c.nout += n
                    del c.out[:n]
                except (BlockingIOError, InterruptedError):
                    pass
        except OSError:             # reset by the peer
            self._close(sel, c, live)
            return
        if c.eof and not c.out:
            self._close(sel, c, live)
            return
        want = ((selectors.EVENT_READ if not c.eof and len(c.out) < self.max_pending else 0)
                | (selectors.EVENT_WRITE if c.out else 0))
        sel.modify(c.sock, want, c)


class ThreadBackend(_Server):
    """A server that runs handler(sock, rec) in a thread per connection.

    rec is a dict (peer, t_accept, and whatever the handler records), also
    appended to self.records.  Connection sockets get a timeout (30 s,
    stretched for ASan) so that no handler blocks for ever; stop() shuts them
    down, which wakes any handler blocked on one.
    """

    def __init__(self, handler, host="127.0.0.1", port=None, backlog=128):
        super().__init__(host, port)
        self.handler = handler
        self.backlog = backlog
        self.records = []
        self.errors = []
        self._socks = []
        self._threads = []

    def start(self):
        return self._start_thread(self._accept_loop, self.backlog, "backend-%d" % self.port)

    def _accept_loop(self):
        try:
            while not self._stop:
                r, _, _ = select.select([self._lsock, self._wake_r], [], [], 0.5)
                if self._lsock not in r or self._stop:
                    continue
                try:
                    s, peer = self._lsock.accept()
                except OSError:
                    continue
                s.settimeout(30 * SLOW)
                rec = {"peer": peer, "t_accept": time.monotonic()}
                self.records.append(rec)
                self._socks.append(s)
                t = threading.Thread(target=self._serve, args=(s, rec), daemon=True,
                                     name="backend-%d-conn" % self.port)
                self._threads.append(t)
                t.start()
        finally:
            self._lsock.close()
            self._wake_r.close()

    def _serve(self, s, rec):
        try:
            self.handler(s, rec)
        except Exception as e:          # reported by check_errors(), not lost in a thread
            if not self._stop:
                rec["error"] = repr(e)
                self.errors.append("%r: %r" % (rec["peer"], e))
        finally:
            rec["t_done"] = time.monotonic()

    def check_errors(self):
        assert not self.errors, "backend on port %d: %s" % (self.port, "; ".join(self.errors[:5]))

    def stop(self, timeout=5.0):
        if self._thread is None:
            return
        self._wake_and_join(timeout)    # then the handlers, which may be blocked
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        end = deadline(timeout)
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))
        stuck = [t for t in self._threads if t.is_alive()]
        for s in self._socks:
            s.close()
        self._thread = None
        self._wake_w.close()
        if stuck:
            raise HarnessError("%d handler threads of the backend on port %d did not stop"
                               % (len(stuck), self.port))


class BackendPool:
    """The backends of one test: servers in threads (echo, thread) and external
    programs (spawn: redis-server, iperf3), all stopped at close(), the
    programs by PID (SIGTERM, then SIGKILL after a deadline)."""

    def __init__(self):
        self.servers = []
        self.procs = []
        self.dir = tempfile.mkdtemp(prefix="preforkd-backends-")

    def echo(self, ident=None, **kw):
        b = EchoBackend(ident=ident, **kw).start()
        self.servers.append(b)
        return b

    def thread(self, handler, **kw):
        b = ThreadBackend(handler, **kw).start()
        self.servers.append(b)
        return b

    def spawn(self, argv, name):
        """Start an external server (own session, output in NAME.log); returns the Popen."""
        log = os.path.join(self.dir, name + ".log")
        with open(log, "ab") as f:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                 start_new_session=True)
        p.logpath = log
        self.procs.append(p)
        return p

    @staticmethod
    def proc_log(p):
        try:
            with open(p.logpath, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    @staticmethod
    def end_proc(p, timeout=5.0):
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
            except ProcessLookupError:
                pass
        return p.returncode

    def close(self):
        problems = []
        for p in self.procs:
            self.end_proc(p)
        for b in self.servers:
            try:
                b.stop()
            except HarnessError as e:
                problems.append(str(e))
        if KEEP:
            print("\npreforkd: kept %s" % self.dir)
        else:
            import shutil
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems


# --------------------------------------------------------------------------
# workers that cannot start

def alloc_limited():
    """Daemon keyword arguments under which no process of the daemon can allocate
    16 MiB at once, while the master and 16k buffers fit: with buffer_size = 16m a
    worker then fails at start (its scratch buffer), a real start-up failure for
    the supervision tests.  RLIMIT_DATA, or under ASan (whose shadow memory a data
    limit would refuse) its allocator's own limit."""
    if ASAN:
        opts = os.environ.get("ASAN_OPTIONS", "")
        return {"env": {"ASAN_OPTIONS": (opts + ":" if opts else "") +
                        "allocator_may_return_null=1:max_allocation_size_mb=8"}}

    def limit():
        resource.setrlimit(resource.RLIMIT_DATA, (8 << 20, 8 << 20))
    return {"preexec_fn": limit}


def end_daemon(d):
    """Clean up a Daemon run outside the session (one whose log may hold [crit]):
    SIGKILL the master if it still runs, then its workers by PID; return the
    sanitizer reports its log holds."""
    try:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(timeout=10)
        d.kill_leftovers()
    finally:
        d.close()
    return [l for l in d.log().splitlines() if any(b in l for b in BAD_LOG[1:])]
