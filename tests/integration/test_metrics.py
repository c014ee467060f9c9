"""The Prometheus endpoint ([daemon] metrics): GET /metrics from the master.

What an operator's tools see: curl gets the text format with its content
type, promtool finds it clean, and a real Prometheus server started here
(its own config, storage and port) scrapes it and answers a counter through
its HTTP API after known traffic.  The errors: 404, 405, a bad request line,
an unsupported version, an oversized request line or header section, a
ninth scraper while eight are open (503), a silent or slow scraper cut off
after the timeout (408) while another scrape is served.  Across reloads the
socket is kept when the address is unchanged, moved when it changes, closed
when metrics goes off, and a reload that cannot open a new address fails
as a whole; the workers never hold the socket.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

import pfharness as H

CURL = shutil.which("curl")
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_SCRAPES = H.src_define("metrics.h", "METRICS_MAX_SCRAPES")
REQ_MAX = H.src_define("metrics.h", "METRICS_REQ_MAX")
TIMEOUT = float(H.src_define("metrics.h", "METRICS_TIMEOUT"))


def start(preforkd, listeners=None, **daemon):
    port = H.free_port()
    keys = {"metrics": "127.0.0.1:%d" % port}
    keys.update(daemon)
    d = preforkd.start(daemon=keys, listeners=listeners)
    d.metrics_port = port
    return d


def http(port, raw, timeout=10.0):
    """Send raw bytes, read until EOF; (status or None, head text, body bytes)."""
    s = H.connect(port, timeout=timeout)
    try:
        s.sendall(raw)
        data = H.read_until_eof(s, timeout=timeout)
    finally:
        s.close()
    return split_answer(data)


def split_answer(data):
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    return (int(m.group(1)) if m else None), head.decode("latin-1"), body


def get(port, path="/metrics"):
    return http(port, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % (path, port)).encode())


def curl(port, *args):
    """curl's answer: -D - writes the head before the body; -I writes only the head."""
    head = [] if "-I" in args else ["-D", "-"]
    r = subprocess.run([CURL, "-sS", "--max-time", "10"] + head + list(args) +
                       ["http://127.0.0.1:%d/metrics" % port],
                       capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r
    return split_answer(r.stdout)


def sample(body, name, **labels):
    """The value of the series name{labels} in a text exposition, or None."""
    want = name + ("{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}"
                   if labels else "")
    for line in body.decode().splitlines():
        if line.startswith(want + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def refuse_reasons():
    """The refusal reasons' words, in order, from the table of src/reason.c."""
    with open(os.path.join(H.REPO, "src", "reason.c")) as f:
        m = re.search(r"refusals\[\] = \{(.*?)\};", f.read(), re.S)
    assert m, "no refusals[] table in src/reason.c"
    return re.findall(r'\[REFUSE_\w+\] = "(\w+)"', m.group(1))


def wait_sample(port, name, value, timeout=10.0, **labels):
    """Scrape until name{labels} == value; the last body."""
    last = [None]

    def ok():
        st, _, body = get(port)
        assert st == 200
        last[0] = body
        return sample(body, name, **labels) == value
    try:
        H.wait_for(ok, timeout, "%s%r = %s" % (name, labels, value), interval=0.05)
    except H.HarnessError as e:
        raise H.HarnessError("%s; last value %r" % (e, last[0] and sample(last[0], name, **labels)))
    return last[0]


@pytest.mark.skipif(CURL is None, reason="curl missing (Debian package curl)")
def test_curl_get_and_head(preforkd):
    """curl GET: 200, the exposition format's content type, a Content-Length that
    is the body's, Connection: close; the counters of known echo traffic (5
    connections, 1000 bytes each way).  HEAD: the same head, no body.  A bare
    HTTP/1.0 request without Host is served too."""
    d = start(preforkd)
    for i in range(5):
        assert H.echo_ok(d.port, H.payload(200, seed=i))
    body = wait_sample(d.metrics_port, "preforkd_connections_total", 5, listener="echo")
    wait_sample(d.metrics_port, "preforkd_bytes_received_total", 1000, listener="echo")
    wait_sample(d.metrics_port, "preforkd_bytes_sent_total", 1000, listener="echo")
    assert sample(body, "preforkd_workers") == 2
    assert sample(body, "preforkd_generation") == 1

    st, head, body = curl(d.metrics_port)
    assert st == 200, head
    assert re.search(r"(?mi)^Content-Type: %s\r?$" % re.escape(CONTENT_TYPE), head), head
    n = int(re.search(r"(?mi)^Content-Length: (\d+)\r?$", head).group(1))
    assert n == len(body) > 0
    assert re.search(r"(?mi)^Connection: close\r?$", head), head
    assert b"# TYPE preforkd_connections_total counter\n" in body

    st, head2, body2 = curl(d.metrics_port, "-I")
    assert st == 200 and body2 == b"", (head2, body2)
    assert re.search(r"(?mi)^Content-Length: \d+\r?$", head2), head2

    st, head, body = http(d.metrics_port, b"GET /metrics HTTP/1.0\r\n\r\n")
    assert st == 200 and sample(body, "preforkd_connections_total", listener="echo") == 5


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (Debian package prometheus)")
@pytest.mark.skipif(CURL is None, reason="curl missing (Debian package curl)")
def test_promtool_check_metrics(preforkd, backends):
    """promtool check metrics finds nothing to say about the whole text, with an
    echo and a proxy listener after traffic through both (backend rows, the
    connect-time histogram), a backend that is down and a failed connect.  The
    refusals are there from the start: every listener with every reason, at 0,
    and the untracked admissions, as counters."""
    b = backends.echo()
    dead = H.free_port()        # nobody listens: connects fail
    d = start(preforkd, listeners={
        "echo": {},
        "proxy": {"mode": "proxy", "balance": "roundrobin", "retries": 1, "max_fails": 0,
                  "backend": ["127.0.0.1:%d" % b.port, "127.0.0.1:%d" % dead]},
    })
    for i in range(6):
        assert H.echo_ok(d.ports["echo"], H.payload(100, seed=i))
        assert H.echo_ok(d.ports["proxy"], H.payload(100, seed=i))
    body = wait_sample(d.metrics_port, "preforkd_backend_connections_total", 6,
                       listener="proxy", backend="127.0.0.1:%d" % b.port)
    assert sample(body, "preforkd_backend_connect_failures_total", listener="proxy",
                  backend="127.0.0.1:%d" % dead) >= 1
    assert sample(body, "preforkd_backend_connect_seconds_count", listener="proxy",
                  backend="127.0.0.1:%d" % b.port) == 6
    assert sample(body, "preforkd_backend_connect_seconds_bucket", listener="proxy",
                  backend="127.0.0.1:%d" % b.port, le="+Inf") == 6

    st, _, body = curl(d.metrics_port)
    assert st == 200
    assert b"# TYPE preforkd_connections_refused_total counter\n" in body
    assert b"# TYPE preforkd_clients_untracked_total counter\n" in body
    reasons = refuse_reasons()
    assert reasons == ["deny", "not_allowed", "untrusted_proxy", "client_limit",
                       "client_rate", "listener_full"], reasons
    for name in ("echo", "proxy"):
        for reason in reasons:
            assert sample(body, "preforkd_connections_refused_total", listener=name,
                          reason=reason) == 0, (name, reason)
        assert sample(body, "preforkd_clients_untracked_total", listener=name) == 0, name
        assert sample(body, "preforkd_connection_closes_total", listener=name,
                      reason="refused") == 0, name
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                       timeout=30)
    assert r.returncode == 0 and r.stdout == b"" and r.stderr == b"", r


@pytest.mark.timeout_s(120)
@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus missing (Debian package prometheus)")
def test_prometheus_scrapes(preforkd, backends, tmp_dir):
    """A real Prometheus server (its own config, storage under a temp dir, its web
    port a free one here, scrape_interval 1s) scrapes the endpoint; after 7
    known echo connections its HTTP API answers preforkd_connections_total = 7
    and up = 1 for the target."""
    d = start(preforkd)
    for i in range(7):
        assert H.echo_ok(d.port, H.payload(64, seed=i))
    wait_sample(d.metrics_port, "preforkd_connections_total", 7, listener="echo")

    web = H.free_port()
    conf = os.path.join(tmp_dir, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: preforkd\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % d.metrics_port)
    p = backends.spawn([PROMETHEUS, "--config.file=" + conf,
                        "--storage.tsdb.path=" + os.path.join(tmp_dir, "data"),
                        "--web.listen-address=127.0.0.1:%d" % web], "prometheus")

    def query(q):
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (web, urllib.parse.urlencode({"query": q}))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.load(r)
        except OSError:
            assert p.poll() is None, "prometheus exited:\n" + backends.proc_log(p)[-3000:]
            return None
        assert doc["status"] == "success", doc
        res = doc["data"]["result"]
        return float(res[0]["value"][1]) if res else None

    try:
        H.wait_for(lambda: query('preforkd_connections_total{listener="echo"}') == 7, 60,
                   "Prometheus to have scraped preforkd_connections_total = 7", interval=0.5)
        assert query('up{job="preforkd"}') == 1
        assert query('preforkd_workers{job="preforkd"}') == 2
    except H.HarnessError as e:
        raise H.HarnessError("%s; prometheus log tail:\n%s" % (e, backends.proc_log(p)[-3000:]))
    assert backends.end_proc(p) == 0, backends.proc_log(p)[-3000:]


def test_errors(preforkd):
    """Other paths 404, other methods 405 (with Allow), a malformed request 400,
    HTTP/2.0 505, a request line of REQ_MAX bytes 414, header fields past it
    431; each answered with a reason and closed, and the endpoint still serves."""
    d = start(preforkd)
    port = d.metrics_port
    host = "Host: 127.0.0.1:%d\r\n" % port
    cases = [
        ("GET / HTTP/1.1\r\n%s\r\n" % host, 404),
        ("GET /metricsx HTTP/1.1\r\n%s\r\n" % host, 404),
        ("POST /metrics HTTP/1.1\r\n%sContent-Length: 4\r\n\r\nabcd" % host, 405),
        ("DELETE /metrics HTTP/1.1\r\n%s\r\n" % host, 405),
        ("GET /metrics HTTP/1.1\r\n\r\n", 400),                     # no Host
        ("GET /metrics\r\n\r\n", 400),
        ("\x16\x03\x01\x00\x05hello\n", 400),                        # TLS to a plain port
        ("GET /metrics HTTP/1.1\r\n%sX: a\x01b\r\n\r\n" % host, 400),
        ("GET /metrics HTTP/2.0\r\n\r\n", 505),
        ("GET /" + "a" * REQ_MAX + " HTTP/1.1\r\n\r\n", 414),
        ("GET /metrics HTTP/1.1\r\n%sX: %s\r\n\r\n" % (host, "b" * REQ_MAX), 431),
    ]
    for raw, want in cases:
        st, head, body = http(port, raw.encode("latin-1"))
        assert st == want, (raw[:60], head)
        assert body.startswith(b"%d " % want), body
        if want == 405:
            assert re.search(r"(?mi)^Allow: GET, HEAD\r?$", head), head
    st, _, body = get(port)
    assert st == 200 and b"preforkd_generation 1\n" in body


def test_too_many_scrapers(preforkd):
    """With MAX_SCRAPES connections open and silent, the next scraper gets 503 and
    the master logs it; once one of them closes, a scrape is served again."""
    d = start(preforkd)
    port = d.metrics_port
    held = [H.connect(port) for _ in range(MAX_SCRAPES)]
    try:
        st, head, body = get(port)
        assert st == 503, head
        assert b"too many" in body
        d.wait_log(r"metrics: %d scrapes in progress: refusing another \(503\)" % MAX_SCRAPES)
        held.pop().close()

        def served():
            st, _, _ = get(port)
            return st == 200
        H.wait_for(served, 10, "a scrape served once a slot is free", interval=0.05)
    finally:
        for s in held:
            s.close()


@pytest.mark.timeout_s(60)
def test_slow_scrapers_cut_off(preforkd):
    """A scraper that connects and says nothing, and one that sends half a request
    and stalls, are answered 408 and closed after TIMEOUT seconds, not before;
    meanwhile other scrapes are served at once."""
    d = start(preforkd)
    port = d.metrics_port
    silent = H.connect(port, timeout=TIMEOUT * 3)
    slow = H.connect(port, timeout=TIMEOUT * 3)
    t0 = time.monotonic()
    slow.sendall(b"GET /metr")
    try:
        for _ in range(3):
            st, _, _ = get(port)
            assert st == 200
        assert time.monotonic() - t0 < TIMEOUT / 2, "scrapes waited on the silent ones"
        for s in (silent, slow):
            data = H.read_until_eof(s, timeout=TIMEOUT * 3)
            st, head, _ = split_answer(data)
            assert st == 408, data[:200]
        took = time.monotonic() - t0
        assert TIMEOUT - 0.5 <= took <= TIMEOUT * H.SLOW + 5, took
    finally:
        silent.close()
        slow.close()
    d.wait_log(r"metrics: 127\.0\.0\.1:\d+: no complete request within")
    st, _, _ = get(port)
    assert st == 200


def worker_holds(d, inode):
    return [p for p in d.worker_pids() if inode in H.socket_inodes(p)]


def test_reload(preforkd):
    """The metrics socket across reloads: kept (same inode) when the address is
    unchanged; a new address served and the old one refused (no worker holds the
    socket); a reload to an address in use fails whole and the old socket still
    serves; metrics = off closes it; back on, it serves again."""
    d = start(preforkd)
    old = d.metrics_port
    inode = H.listen_inode(old)
    assert inode is not None and not worker_holds(d, inode)
    assert d.reload().endswith("gen 2 ok")
    assert H.listen_inode(old) == inode
    assert get(old)[0] == 200

    new = H.free_port()
    d.daemon_keys["metrics"] = "127.0.0.1:%d" % new
    d.write_config()
    assert d.reload().endswith("gen 3 ok")
    st, _, body = get(new)
    assert st == 200 and sample(body, "preforkd_generation") == 3
    assert H.port_refuses(old)
    assert not worker_holds(d, H.listen_inode(new))

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    d.daemon_keys["metrics"] = "127.0.0.1:%d" % taken.getsockname()[1]
    d.write_config()
    try:
        status = d.reload()
        assert "failed: metrics 127.0.0.1:%d: Address already in use" % \
            taken.getsockname()[1] in status, status
    finally:
        taken.close()
    assert get(new)[0] == 200
    assert H.echo_ok(d.port, b"still generation 3")

    d.daemon_keys["metrics"] = "off"
    d.write_config()
    assert d.reload().endswith("gen 4 ok")
    assert H.port_refuses(new)
    d.daemon_keys["metrics"] = "127.0.0.1:%d" % new
    d.write_config()
    assert d.reload().endswith("gen 5 ok")
    assert get(new)[0] == 200


def test_start_fails_on_a_taken_address(preforkd):
    """A metrics address nobody can bind stops the start with a clear message and
    exit status 1, before any worker starts."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        d = preforkd.new(daemon={"metrics": "127.0.0.1:%d" % taken.getsockname()[1]})
        d._spawn()
        assert d.wait_exit(10) == 1
        assert "preforkd: metrics 127.0.0.1:%d: Address already in use" % \
            taken.getsockname()[1] in d.log(), d.log()
        assert not d.started_workers()
    finally:
        taken.close()
