"""log_format = json: every line one JSON object with stable keys, on every target.

Echo and proxy traffic of known sizes through a daemon that logs JSON to a file:
every line parses with Python's json module, the keys come in their documented
order, and each connection's summary carries the known client port, backend,
byte counts and reason as typed values; jq reads the file.  A failed reload logs
config errors holding quotes, control characters and invalid UTF-8, escaped.  A
reload switches the format (the new generation's workers write JSON).  The
object is the whole line on stderr, follows the <N> prefix on a journald stream
and is the message of a syslog line (a /dev/log of the test's own, in a private
mount namespace).
"""

import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

import pfharness as H

JQ = shutil.which("jq")
UNSHARE = shutil.which("unshare")

HEAD = ["ts", "level", "proc"]
LEVELS = {"debug", "info", "notice", "warning", "error", "crit"}
RE_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ECHO_KEYS = ["listener", "client", "in", "out", "duration", "reason"]
PROXY_KEYS = ["listener", "client", "backend", "connect", "in", "out", "duration", "reason"]


def parse_lines(text):
    """Every line of text as a JSON object (a line that does not parse fails the test)."""
    out = []
    for i, line in enumerate(text.splitlines()):
        try:
            obj = json.loads(line)
        except ValueError as e:
            pytest.fail("line %d is not JSON (%s): %r" % (i + 1, e, line))
        assert isinstance(obj, dict), line
        out.append(obj)
    return out


def check_head(obj, since, master_pid=None):
    """ts, level, proc [worker, gen], pid in this order, with valid values."""
    keys = list(obj)
    assert keys[:3] == HEAD, keys
    assert RE_TS.match(obj["ts"]), obj
    ts = datetime.datetime.strptime(obj["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert since - 2 <= ts <= time.time() + 2, "ts %s not UTC now: %r" % (obj["ts"], obj)
    assert obj["level"] in LEVELS, obj
    assert obj["level"] != "crit", obj
    if obj["proc"] == "worker":
        assert keys[3:6] == ["worker", "gen", "pid"], keys
        assert type(obj["worker"]) is int and type(obj["gen"]) is int and obj["gen"] >= 1, obj
        rest = keys[6:]
    else:
        assert obj["proc"] == "master", obj
        assert keys[3] == "pid", keys
        if master_pid is not None:
            assert obj["pid"] == master_pid, obj
        rest = keys[4:]
    assert type(obj["pid"]) is int, obj
    assert rest[:1] in (["msg"], ["event"]), keys
    if rest[0] == "msg":
        assert rest == ["msg"] and isinstance(obj["msg"], str), obj
    return rest


def closes(objs, listener=None):
    return [o for o in objs if o.get("event") == "close"
            and (listener is None or o["listener"] == listener)]


def wait_closes(path, n, timeout=10.0):
    """Wait until the log file holds n summary lines; return its text."""
    def ok():
        try:
            with open(path, encoding="utf-8", errors="strict") as f:
                text = f.read()
        except FileNotFoundError:
            return None
        return text if text.count('"event":"close"') >= n else None
    return H.wait_for(ok, timeout, "%d close lines in %s" % (n, path))


def client(port, data, expect):
    """One connection: send data, half-close, read to EOF.  Returns (local port, reply)."""
    s = H.connect(port)
    try:
        lport = s.getsockname()[1]
        reply = H.exchange(s, data, shut_wr=True, expect_eof=True)
    finally:
        s.close()
    assert len(reply) == expect, (len(reply), expect)
    return lport, reply


def test_json_file_echo_proxy_and_jq(preforkd, backends, tmp_dir):
    """Known traffic, every line parsed, summary fields checked one by one; jq reads it."""
    since = time.time()
    be = backends.echo()
    dead = H.free_port()          # nobody listens: connect_failed
    path = os.path.join(tmp_dir, "json.log")
    d = preforkd.start(
        daemon={"workers": 2, "log_level": "info", "log_format": "json", "log_target": path},
        listeners={"echo": {},
                   "px": {"mode": "proxy", "backend": "127.0.0.1:%d" % be.port},
                   "dead": {"mode": "proxy", "backend": "127.0.0.1:%d" % dead,
                            "retries": 0, "max_fails": 0}})
    sizes = [1, 1000, 70000]
    echo_seen, proxy_seen = {}, {}
    for n in sizes:
        data = H.payload(n)
        lport, reply = client(d.ports["echo"], data, n)
        assert reply == data
        echo_seen[lport] = n
        lport, reply = client(d.ports["px"], data, n)
        assert reply == data
        proxy_seen[lport] = n
    s = H.connect(d.ports["dead"])
    dead_lport = s.getsockname()[1]
    assert H.read_until_eof(s) == b""
    s.close()

    text = wait_closes(path, 2 * len(sizes) + 1)
    objs = parse_lines(text)
    assert len(objs) >= 2 * len(sizes) + 1 + 3
    worker_pids = set()
    for o in objs:
        rest = check_head(o, since, master_pid=d.pid)
        if o["proc"] == "worker":
            worker_pids.add(o["pid"])
        if rest[0] == "event":
            assert o["event"] == "close" and o["level"] == "info", o
            want = PROXY_KEYS if o["listener"] in ("px", "dead") else ECHO_KEYS
            assert rest[1:] == want, rest
            assert type(o["in"]) is int and type(o["out"]) is int, o
            assert type(o["duration"]) is float and 0 <= o["duration"] < 30, o
    assert worker_pids and worker_pids <= set(d.worker_pids()), (worker_pids, d.worker_pids())
    msgs = [o["msg"] for o in objs if "msg" in o]
    assert "generation 1 ready: 2 workers" in msgs, msgs
    assert any(re.fullmatch(r"worker [01] gen 1 started, pid \d+", m) for m in msgs), msgs

    got = {int(o["client"].rsplit(":", 1)[1]): o for o in closes(objs, "echo")}
    assert sorted(got) == sorted(echo_seen), (got, echo_seen)
    for lport, n in echo_seen.items():
        o = got[lport]
        assert o["client"] == "127.0.0.1:%d" % lport
        assert (o["in"], o["out"], o["reason"]) == (n, n, "client_eof"), o
    got = {int(o["client"].rsplit(":", 1)[1]): o for o in closes(objs, "px")}
    assert sorted(got) == sorted(proxy_seen), (got, proxy_seen)
    for lport, n in proxy_seen.items():
        o = got[lport]
        assert o["backend"] == "127.0.0.1:%d" % be.port, o
        assert type(o["connect"]) is float and 0 <= o["connect"] < 5, o
        assert (o["in"], o["out"]) == (n, n), o
        assert o["reason"] in ("client_eof", "backend_eof"), o
    [o] = closes(objs, "dead")
    assert o["client"] == "127.0.0.1:%d" % dead_lport, o
    assert o["backend"] == "127.0.0.1:%d" % dead and o["connect"] is None, o
    assert (o["in"], o["out"], o["reason"]) == (0, 0, "connect_failed"), o

    # jq, what an operator pipes the file to: it reads every line, and selects on fields
    assert JQ, "jq is not installed (Debian package jq, in TEST_DEPS)"
    r = subprocess.run([JQ, "-c", ".", path], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stderr == "", r
    assert len(r.stdout.splitlines()) == len(objs)
    r = subprocess.run([JQ, "-r", 'select(.event == "close" and .listener == "echo") | .in', path],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    assert sorted(int(x) for x in r.stdout.split()) == sorted(sizes), r.stdout


def test_reload_switches_format_and_errors_are_escaped(preforkd, tmp_dir):
    """text -> json on reload: gen 1's summary in text, gen 2's in JSON; a failed
    reload's errors, with a quote, a backslash, a control byte and an invalid UTF-8
    byte from the file, come back exactly from the JSON (the bad byte as U+FFFD)."""
    since = time.time()
    path = os.path.join(tmp_dir, "mixed.log")
    d = preforkd.start(daemon={"workers": 1, "log_level": "info", "log_target": path},
                       listeners={"echo": {}})
    lport1, _ = client(d.port, b"one", 3)
    H.wait_for(lambda: "close listener=echo client=127.0.0.1:%d " % lport1 in open(path).read(),
               10, "text summary line")

    d.daemon_keys["log_format"] = "json"
    d.write_config()
    d.reload()
    H.wait_for(lambda: '"msg":"generation 2 ready: 1 workers"' in open(path).read(), 10,
               "generation 2 ready, in JSON")
    H.wait_for(lambda: len(d.worker_pids()) == 1, 10, "gen 1's worker gone")
    lport2, _ = client(d.port, b"second", 6)
    wait_closes(path, 1)

    # A failed reload: the bad value is in the error the master logs.
    good = d.config_text()
    bad = good.replace("[listener echo]",
                       "[listener echo]\nbackend = 127.0.0.1:1 weight=\"q\\\x01\xff")
    with open(d.conf, "wb") as f:
        f.write(bad.encode("latin-1"))
    status = d.reload()
    assert "fail" in status, status
    H.wait_for(lambda: "reload failed, keeping generation 2" in open(path, errors="replace").read(),
               10, "reload failed line")

    with open(path, "rb") as f:
        raw = f.read()
    assert b"\xff" not in raw, "a raw invalid byte in the log"
    text = raw.decode("utf-8")
    json_objs, text_lines = [], []
    for line in text.splitlines():
        if line.startswith("{"):
            json_objs.append(json.loads(line))
        else:
            assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[(\w+)\] "
                            r"(master|worker 0 gen 1): ", line), line
            text_lines.append(line)
    for o in json_objs:
        check_head(o, since, master_pid=d.pid)
        assert o.get("gen", 2) == 2, "a gen 1 worker wrote JSON: %r" % o
    assert any(l.endswith("close listener=echo client=127.0.0.1:%d in=3 out=3 duration=%s "
                          "reason=client_eof" % (lport1, l.split("duration=")[1].split()[0]))
               for l in text_lines if "close " in l), text_lines
    [c] = closes(json_objs)
    assert (c["proc"], c["gen"], c["client"], c["in"], c["out"], c["reason"]) == \
        ("worker", 2, "127.0.0.1:%d" % lport2, 6, 6, "client_eof"), c
    errs = [o["msg"] for o in json_objs if o["level"] == "error"]
    want = 'backend: "weight="q\\\x01\ufffd": expected weight=1..256 or backup'
    assert any(m.endswith(want) for m in errs), errs
    assert "reload failed, keeping generation 2" in errs, errs
    # the master's lines after the switch are all JSON
    i = text.index('"msg":"generation 2 ready')
    assert not [l for l in text[i:].splitlines()[1:] if l.startswith(tuple("0123456789"))
                and " master: " in l], text[i:]
    with open(d.conf, "w") as f:
        f.write(good)


def test_json_on_stderr_and_journal_stream(preforkd):
    """stderr: the object is the whole line; with JOURNAL_STREAM, it follows <N>."""
    since = time.time()
    d = preforkd.start(daemon={"workers": 1, "log_format": "json"})
    lport, _ = client(d.port, b"abc", 3)
    d.wait_log(r'"event":"close","listener":"echo","client":"127\.0\.0\.1:%d"' % lport)
    objs = parse_lines(d.log())
    for o in objs:
        check_head(o, since, master_pid=d.pid)
    [c] = closes(objs)
    assert (c["in"], c["out"]) == (3, 3), c

    j = preforkd.new(daemon={"workers": 1, "log_format": "json"})
    open(j.logpath, "ab").close()
    st = os.stat(j.logpath)
    j.extra_env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    j.start()
    lport, _ = client(j.port, b"abcd", 4)
    j.wait_log(r'"client":"127\.0\.0\.1:%d"' % lport)
    prios = {"debug": 7, "info": 6, "notice": 5, "warning": 4, "error": 3, "crit": 2}
    for line in j.log().splitlines():
        m = re.match(r"^<(\d)>(\{.*\})$", line)
        assert m, "not <N>{json}: %r" % line
        o = json.loads(m.group(2))
        check_head(o, since, master_pid=j.pid)
        assert int(m.group(1)) == prios[o["level"]], line


# Run preforkd with a /dev of its own: a tmpfs holding the real /dev's entries
# (bound) and log -> the test's syslog socket; syslog(3) writes to /dev/log.
PRIVATE_DEVLOG = r'''
set -e
sock=$1; old=$2; shift 2
mount --make-rprivate /
mkdir -p "$old"
mount --rbind /dev "$old"
mount -t tmpfs -o mode=755 preforkd-test-dev /dev
for e in "$old"/*; do
	n=/dev/${e##*/}
	if [ -L "$e" ]; then cp -P "$e" "$n"
	elif [ -d "$e" ]; then mkdir "$n"; mount --rbind "$e" "$n"
	else : > "$n"; mount --bind "$e" "$n"
	fi
done
ln -s "$sock" /dev/log
exec "$@"
'''


def private_devlog_works():
    if os.geteuid() != 0 or UNSHARE is None:
        return False
    r = subprocess.run([UNSHARE, "--mount", "true"], capture_output=True, timeout=10)
    return r.returncode == 0


@pytest.mark.skipif(not private_devlog_works(),
                    reason="needs root and unshare --mount for a private /dev/log")
def test_json_is_the_syslog_message(preforkd, tmp_dir):
    """log_target = syslog: each datagram's message is one JSON object."""
    since = time.time()
    sock_path = os.path.join(tmp_dir, "devlog.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(sock_path)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    old = os.path.join(tmp_dir, "olddev")
    d = preforkd.new(daemon={"workers": 1, "log_level": "info", "log_format": "json",
                             "log_target": "syslog"},
                     wrap=lambda _: [UNSHARE, "--mount", "sh", "-c", PRIVATE_DEVLOG, "sh",
                                     sock_path, old])
    try:
        d.start()
        lport, _ = client(d.port, b"syslog", 6)
        got, end = [], H.deadline(10)
        while not any(o.get("event") == "close" for _, _, o in got):
            left = end - time.monotonic()
            assert left > 0, "no close line by syslog; got %r; log:\n%s" % (got, d.log())
            rx.settimeout(left)
            data = rx.recv(65536).decode("utf-8")
            m = re.match(r"^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d preforkd\[(\d+)\]: (.*)$", data,
                         re.S)
            assert m, "not a syslog(3) datagram: %r" % data
            got.append((int(m.group(1)), int(m.group(2)), json.loads(m.group(3))))
    finally:
        rx.close()
    prios = {"debug": 7, "info": 6, "notice": 5, "warning": 4, "error": 3}
    for pri, pid, o in got:
        check_head(o, since, master_pid=d.pid)
        assert pri == 3 * 8 + prios[o["level"]], (pri, o)     # the daemon facility
        assert pid == o["pid"], (pid, o)
    assert any(o.get("msg") == "generation 1 ready: 1 workers" for _, _, o in got), got
    [c] = [o for _, _, o in got if o.get("event") == "close"]
    assert (c["client"], c["in"], c["out"], c["reason"]) == \
        ("127.0.0.1:%d" % lport, 6, 6, "client_eof"), c
