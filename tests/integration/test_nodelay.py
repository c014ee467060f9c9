"""TCP_NODELAY: on both legs by default (the client's socket, echo and proxy, and
the backend's), off with `tcp_nodelay = off`; a backend that answers in two
writes costs no delayed-ACK wait through the proxy."""

import ctypes
import os
import shutil
import socket
import subprocess
import time

import pytest

import pfharness as H

SYS_PIDFD_OPEN = 434        # the same number on every architecture Linux has
SYS_PIDFD_GETFD = 438
_libc = ctypes.CDLL(None, use_errno=True)

# Linux delays an ACK by 40 ms at least (TCP_DELACK_MIN); a reply held back
# by Nagle's algorithm waits for that ACK.
DELACK_MIN = 0.040


def remote_nodelay(pid, fd):
    """TCP_NODELAY of fd in process pid, read from a duplicate (pidfd_getfd)."""
    pidfd = _libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open(%d)" % pid)
    try:
        dup = _libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if dup < 0:
            err = ctypes.get_errno()
            if err in (1, 38):      # EPERM, ENOSYS
                pytest.skip("pidfd_getfd: %s" % os.strerror(err))
            raise OSError(err, "pidfd_getfd(%d, %d)" % (pid, fd))
    finally:
        os.close(pidfd)
    s = socket.socket(fileno=dup)
    try:
        return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        s.close()


def worker_socket(d, lport, rport):
    """(worker pid, fd) of the worker's TCP socket with local port lport and
    remote port rport (either may be None: any)."""
    owner = {}
    for w in d.worker_pids():
        for ino, fd in H.socket_inodes(w).items():
            owner[ino] = (w, fd)
    for lp, rp, _, ino in H.tcp_table():
        if (lport is None or lp == lport) and (rport is None or rp == rport) and ino in owner:
            return owner[ino]
    raise AssertionError("no worker socket %s -> %s" % (lport, rport))


def legs(d, client, backend=None):
    """TCP_NODELAY of the worker's sockets for client: (client leg, backend leg)."""
    cl = remote_nodelay(*worker_socket(d, client.getpeername()[1], client.getsockname()[1]))
    if backend is None:
        return cl, None
    return cl, remote_nodelay(*worker_socket(d, None, backend.port))


@pytest.mark.parametrize("dispatch", ["notify", "reuseport", "handoff"])
def test_nodelay_on_both_legs_by_default(backends, preforkd, dispatch):
    """Every dispatch method: the accepted socket (echo and proxy) and the backend
    socket have TCP_NODELAY set without any key."""
    b = backends.echo()
    d = preforkd.start(daemon={"workers": 2, "dispatch": dispatch},
                       listeners={"echo": {}, "px": H.proxy_listener([b])})
    with H.connect(d.ports["echo"]) as e, H.connect(d.ports["px"]) as p:
        assert H.exchange(e, b"ping") == b"ping"
        assert H.exchange(p, b"ping") == b"ping"
        assert legs(d, e) == (1, None)
        assert legs(d, p, b) == (1, 1)


def test_nodelay_off_and_reload(backends, preforkd):
    """tcp_nodelay = off leaves both legs to Nagle's algorithm; a reload that turns
    it on applies to the connections accepted after it, on the same listen socket."""
    b = backends.echo()
    d = preforkd.start(daemon={"workers": 1}, listeners={
        "echo": {"tcp_nodelay": "off"},
        "px": H.proxy_listener([b], tcp_nodelay="off")})
    with H.connect(d.ports["echo"]) as e, H.connect(d.ports["px"]) as p:
        assert H.exchange(e, b"ping") == b"ping"
        assert H.exchange(p, b"ping") == b"ping"
        assert legs(d, e) == (0, None)
        assert legs(d, p, b) == (0, 0)
    inode = H.listen_inode(d.ports["px"])
    d.listeners["echo"]["tcp_nodelay"] = "on"
    d.listeners["px"]["tcp_nodelay"] = "on"
    d.write_config()
    d.reload()
    assert H.listen_inode(d.ports["px"]) == inode
    with H.connect(d.ports["echo"]) as e, H.connect(d.ports["px"]) as p:
        assert H.exchange(e, b"ping") == b"ping"
        assert H.exchange(p, b"ping") == b"ping"
        assert legs(d, e) == (1, None)
        assert legs(d, p, b) == (1, 1)


HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n"
BODY = b"b" * 300


def two_write_server(sock, rec):
    """Answer each request line with a head and, 2 ms later, a body: two send()
    calls, as an HTTP server writing headers then a file does (itself with
    TCP_NODELAY, so the head leaves at once)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = sock.makefile("rb")
    while f.readline():
        sock.sendall(HEAD)
        time.sleep(0.002)       # the body comes after the head, as from a file
        sock.sendall(BODY)


def stalled(times):
    """The exchanges (seconds each) that took a delayed ACK's time or more."""
    return [t for t in times if t >= DELACK_MIN]


def assert_no_stalls(times):
    """Fewer than a quarter of the exchanges took DELACK_MIN or more: held back by
    Nagle's algorithm, half or more of them do (every one, when the server writes
    its two pieces apart), while a busy machine's scheduling delays a few at most."""
    assert len(stalled(times)) < len(times) / 4, "%d of %d exchanges took >= %d ms: %s" % (
        len(stalled(times)), len(times), DELACK_MIN * 1000,
        " ".join("%.1f" % (t * 1000) for t in times))


def round_trips(port, n):
    """Seconds each of n sequential request/response exchanges took."""
    times = []
    with H.connect(port) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        want = len(HEAD) + len(BODY)
        for i in range(n):
            t0 = time.monotonic()
            c.sendall(b"GET /%d\n" % i)
            got = b""
            while len(got) < want:
                chunk = c.recv(want - len(got))
                assert chunk, "EOF after %d bytes of reply %d" % (len(got), i)
                got += chunk
            times.append(time.monotonic() - t0)
            assert got == HEAD + BODY
    return times


@pytest.mark.parametrize("splice", ["off", "on"])
def test_two_write_replies_pay_no_delayed_ack(backends, preforkd, splice):
    """A reply written in two pieces crosses the proxy without waiting for the
    client's delayed ACK: with Nagle on the client leg the second piece is held
    until the first is acknowledged, 40 ms or more per exchange.  The exchanges
    are compared with that kernel constant, not with a speed."""
    b = backends.thread(two_write_server)
    d = preforkd.start(daemon={"workers": 1}, listeners={
        "px": H.proxy_listener([b], splice=splice)})
    assert_no_stalls(round_trips(d.port, 40))
    b.check_errors()


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CURL = shutil.which("curl")


def start_nginx_origin(backends, size):
    """nginx serving one file of `size` bytes with sendfile on (as Debian's nginx.conf
    has it) and tcp_nopush off (nginx's own default): the headers and the file leave
    in two writes.  Its port."""
    port = H.free_port()
    prefix = os.path.join(backends.dir, "nginx")
    os.makedirs(os.path.join(prefix, "www"))
    with open(os.path.join(prefix, "www", "f.bin"), "wb") as f:
        f.write(os.urandom(size))
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""daemon off;
master_process off;
pid %(p)s/nginx.pid;
error_log stderr warn;
%(user)s
events { worker_connections 64; }
http {
    sendfile on;
    tcp_nopush off;
    access_log off;
    client_body_temp_path %(p)s/tmp;
    proxy_temp_path %(p)s/tmp;
    fastcgi_temp_path %(p)s/tmp;
    uwsgi_temp_path %(p)s/tmp;
    scgi_temp_path %(p)s/tmp;
    server { listen 127.0.0.1:%(port)d; root %(p)s/www; }
}
""" % {"p": prefix, "port": port,
       "user": "user root;" if os.geteuid() == 0 else ""})
    p = backends.spawn([NGINX, "-p", prefix + "/", "-c", conf, "-e", "stderr"], "nginx")
    H.wait_for(lambda: p.poll() is not None or not H.port_is_free(port), 10,
               "nginx listening on %d" % port)
    assert p.poll() is None, "nginx exited: %s" % backends.proc_log(p)
    return port


@pytest.mark.skipif(not os.access(NGINX, os.X_OK) or CURL is None,
                    reason="needs nginx and curl (make deps-test installs them)")
def test_curl_keepalive_through_proxy_to_nginx(backends, preforkd):
    """The real pair: curl fetching a file 40 times over one kept-alive connection,
    through the proxy, from nginx writing headers and file apart.  Every transfer
    is whole, and none waits for a delayed ACK (before TCP_NODELAY, half did)."""
    size = 1400
    port = start_nginx_origin(backends, size)
    d = preforkd.start(daemon={"workers": 1}, listeners={
        "px": H.proxy_listener(["127.0.0.1:%d" % port])})
    url = "http://127.0.0.1:%d/f.bin" % d.port
    r = subprocess.run([CURL, "-sS", "--fail",
                        "-w", "%{size_download} %{num_connects} %{time_total}\\n"] +
                       ["-o", "/dev/null", url] * 40,
                       capture_output=True, text=True, timeout=60 * H.SLOW)
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines()]
    assert len(rows) == 40, r.stdout
    assert all(int(n) == size for n, _, _ in rows), r.stdout
    assert sum(int(c) for _, c, _ in rows) == 1, "curl reconnected: %s" % r.stdout
    assert_no_stalls([float(t) for _, _, t in rows])
