"""PROXY protocol: send_proxy = v1/v2 towards a backend that parses the header, and
accept_proxy = on with valid, malformed, truncated, oversized and missing headers."""

import ipaddress
import re
import socket
import struct
import time

import pytest

import pfharness as H

V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"


# --------------------------------------------------------------------------
# a PROXY header parser for the test backend, and builders for the clients

def _recv_more(sock, buf):
    chunk = sock.recv(65536)
    if not chunk:
        raise H.HarnessError("EOF inside the PROXY header (have %r)" % buf)
    return buf + chunk


def read_proxy_header(sock):
    """Read one PROXY header (v1 or v2) from sock.  Returns (fields, rest): fields has
    version, raw (the header's bytes), and for a PROXY command src/dst as (ip, port)
    and family; rest is what came after the header in the same reads."""
    buf = b""
    while True:
        if len(buf) >= 16 and buf.startswith(V2SIG):
            break
        if buf.startswith(b"PROXY ") and b"\r\n" in buf:
            break
        if len(buf) > 107 and not buf.startswith(V2SIG):
            raise H.HarnessError("no PROXY header: %r" % buf[:120])
        if not (V2SIG.startswith(buf[:12]) or b"PROXY ".startswith(buf[:6])):
            raise H.HarnessError("not a PROXY header: %r" % buf[:40])
        buf = _recv_more(sock, buf)
    if buf.startswith(b"PROXY "):
        line, rest = buf.split(b"\r\n", 1)
        assert len(line) + 2 <= 107, "v1 line too long: %r" % line
        parts = line.decode("ascii").split(" ")
        f = {"version": 1, "raw": line + b"\r\n", "proto": parts[1]}
        if parts[1] in ("TCP4", "TCP6"):
            assert len(parts) == 6, "bad v1 line: %r" % line
            f["src"] = (parts[2], int(parts[4]))
            f["dst"] = (parts[3], int(parts[5]))
        return f, rest
    ver_cmd, fam = buf[12], buf[13]
    (length,) = struct.unpack("!H", buf[14:16])
    while len(buf) < 16 + length:
        buf = _recv_more(sock, buf)
    body, rest = buf[16:16 + length], buf[16 + length:]
    f = {"version": 2, "raw": buf[:16 + length], "ver_cmd": ver_cmd, "fam": fam,
         "length": length}
    if ver_cmd == 0x21 and fam == 0x11:
        f["src"] = (socket.inet_ntop(socket.AF_INET, body[0:4]),
                    struct.unpack("!H", body[8:10])[0])
        f["dst"] = (socket.inet_ntop(socket.AF_INET, body[4:8]),
                    struct.unpack("!H", body[10:12])[0])
    elif ver_cmd == 0x21 and fam == 0x21:
        f["src"] = (socket.inet_ntop(socket.AF_INET6, body[0:16]),
                    struct.unpack("!H", body[32:34])[0])
        f["dst"] = (socket.inet_ntop(socket.AF_INET6, body[16:32]),
                    struct.unpack("!H", body[34:36])[0])
    return f, rest


def proxy_echo(s, rec):
    """Backend: parse the PROXY header, record it, echo everything after it."""
    f, rest = read_proxy_header(s)
    rec.update(f)
    rec["echoed"] = 0
    if rest:
        s.sendall(rest)
        rec["echoed"] += len(rest)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        s.sendall(chunk)
        rec["echoed"] += len(chunk)
    s.close()


def v1(src, dst):
    fam = "TCP6" if ":" in src[0] else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src[0], dst[0], src[1], dst[1])).encode()


def v2(src, dst, tlvs=b"", cmd=0x21):
    if cmd == 0x20:
        return V2SIG + bytes([0x20, 0x00]) + struct.pack("!H", len(tlvs)) + tlvs
    ip = ipaddress.ip_address(src[0])
    fam = 0x11 if ip.version == 4 else 0x21
    body = (ip.packed + ipaddress.ip_address(dst[0]).packed
            + struct.pack("!HH", src[1], dst[1]) + tlvs)
    return V2SIG + bytes([cmd, fam]) + struct.pack("!H", len(body)) + body


def fmt(addr):
    ip, port = addr
    return ("[%s]:%d" % (ip, port)) if ":" in ip else ("%s:%d" % (ip, port))


# --------------------------------------------------------------------------
# send_proxy

def connect_from(src_ip, port, host="127.0.0.1", family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((src_ip, 0))
    s.settimeout(5 * H.SLOW)
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def test_send_proxy_v1_v2(backends, preforkd):
    """send_proxy = v1 / v2: the backend gets a header naming the client's real address
    and port (its getsockname) as source and the proxy's listen address as destination;
    the client's bytes follow it and the echo comes back without any header."""
    b = backends.thread(proxy_echo)
    ls = {"pv1": H.proxy_listener([b], send_proxy="v1"),
          "pv2": H.proxy_listener([b], send_proxy="v2")}
    six = H.have_ipv6_loopback()
    if six:
        ls["pv1six"] = H.proxy_listener([b], send_proxy="v1",
                                        listen="[::1]:%d" % H.free_port())
        ls["pv2six"] = H.proxy_listener([b], send_proxy="v2",
                                        listen="[::1]:%d" % H.free_port())
    d = preforkd.start(daemon={"workers": 2}, listeners=ls)
    cases = [("pv1", "127.0.0.7", 1), ("pv2", "127.0.0.8", 2)]
    if six:
        cases += [("pv1six", "::1", 1), ("pv2six", "::1", 2)]
    for i, (name, src_ip, version) in enumerate(cases):
        six_case = ":" in src_ip
        host = "::1" if six_case else "127.0.0.1"
        c = connect_from(src_ip, d.ports[name], host=host,
                         family=socket.AF_INET6 if six_case else socket.AF_INET)
        with c:
            client = c.getsockname()[:2]
            data = H.payload(100000)
            back = H.exchange(c, data, timeout=10)
            assert H.digest(back) == H.digest(data), "%s: the echo differs" % name
        H.wait_for(lambda: len(b.records) > i and "t_done" in b.records[i], 10,
                   "the backend to finish connection %d" % i)
        b.check_errors()
        rec = b.records[i]
        assert rec["version"] == version, (name, rec)
        assert rec["src"] == client, "%s: header source %r, client %r" % (name, rec["src"],
                                                                          client)
        assert rec["dst"] == (host, d.ports[name]), "%s: header destination %r" % (name,
                                                                                  rec["dst"])
        if version == 1:
            assert rec["raw"] == v1(client, (host, d.ports[name])), rec["raw"]
        else:
            assert rec["ver_cmd"] == 0x21 and rec["fam"] == (0x21 if six_case else 0x11), rec
        assert rec["echoed"] == len(data)
        f = H.wait_close_line(d, fmt(client))
        assert f["listener"] == name and int(f["in"]) == len(data), f
        assert int(f["out"]) == len(data), "the header must not count as client bytes: %r" % f


def test_accept_then_send_proxy(backends, preforkd):
    """accept_proxy = on and send_proxy = v2 on one proxy listener: the backend sees the
    address the client's header carried."""
    b = backends.thread(proxy_echo)
    d = preforkd.start(daemon={"workers": 1}, listeners={"chain": H.proxy_listener(
        [b], accept_proxy="on", send_proxy="v2")})
    src = ("192.0.2.99", 4321)
    with H.connect(d.port) as c:
        c.sendall(v1(src, ("192.0.2.1", 443)))
        assert H.exchange(c, b"through two proxies") == b"through two proxies"
    H.wait_for(lambda: b.records and "t_done" in b.records[0], 10, "the backend to finish")
    b.check_errors()
    assert b.records[0]["src"] == src, b.records[0]
    f = H.wait_close_line(d, fmt(src))
    assert f["reason"] == "client_eof" and int(f["in"]) == len(b"through two proxies"), f


def v2_local():
    return V2SIG + bytes([0x20, 0x00, 0x00, 0x00])


# What a client's load balancer may send (name, header bytes, source, destination;
# None for a header that names no addresses), each on a listener on IPv4 and on IPv6.
RECEIVED = [
    ("v1 TCP4", v1(("10.1.2.3", 1111), ("10.9.9.9", 2222)),
     ("10.1.2.3", 1111), ("10.9.9.9", 2222)),
    ("v1 TCP6", v1(("2001:db8::7", 6001), ("2001:db8::1", 443)),
     ("2001:db8::7", 6001), ("2001:db8::1", 443)),
    ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n", None, None),
    ("v1 UNKNOWN with addresses", b"PROXY UNKNOWN 10.1.2.3 10.9.9.9 1 2\r\n", None, None),
    ("v2 PROXY TCP4", v2(("203.0.113.20", 5678), ("198.51.100.1", 80)),
     ("203.0.113.20", 5678), ("198.51.100.1", 80)),
    ("v2 PROXY TCP6 with TLVs", v2(("2001:db8:1::20", 65535), ("2001:db8:2::1", 0),
                                   tlvs=bytes([0x04, 0, 3]) + b"\0\0\0"),
     ("2001:db8:1::20", 65535), ("2001:db8:2::1", 0)),
    ("v2 LOCAL", v2_local(), None, None),
]


def forwarded(version, src, dst):
    """The exact header a backend must get for a received src/dst (None: none named)."""
    if src is None:
        return b"PROXY UNKNOWN\r\n" if version == 1 else v2_local()
    return v1(src, dst) if version == 1 else v2(src, dst)


@pytest.mark.timeout_s(90)
def test_accept_proxy_forwards_the_received_header(backends, preforkd):
    """accept_proxy = on with send_proxy = v1 / v2: the backend gets the source and the
    destination the client's header named, byte for byte, whatever the families of the
    header and of the sockets in between (a TCP6 header on a 127.0.0.1 listener, a TCP4
    one on [::1]); a received UNKNOWN or LOCAL goes on as UNKNOWN / LOCAL; the client's
    bytes follow, and the summary line names the header's source."""
    b = backends.thread(proxy_echo)
    hosts = [("4", "127.0.0.1", "127.0.0.1:%d")]
    if H.have_ipv6_loopback():
        hosts.append(("6", "::1", "[::1]:%d"))
    else:
        print("no IPv6 loopback here: only the 127.0.0.1 listeners are tested")
    ls = {}
    for version in (1, 2):
        for tag, _, listen in hosts:
            ls["fw%d_%s" % (version, tag)] = H.proxy_listener(
                [b], accept_proxy="on", send_proxy="v%d" % version,
                listen=listen % H.free_port())
    d = preforkd.start(daemon={"workers": 2}, listeners=ls)
    n = 0
    for version in (1, 2):
        for tag, host, _ in hosts:
            name = "fw%d_%s" % (version, tag)
            for what, hdr, src, dst in RECEIVED:
                data = H.payload(3000)
                with H.connect(d.ports[name], host=host) as c:
                    real = c.getsockname()[:2]
                    c.sendall(hdr)
                    back = H.exchange(c, data)
                assert H.digest(back) == H.digest(data), (name, what)
                H.wait_for(lambda: len(b.records) > n and "t_done" in b.records[n], 10,
                           "the backend to finish connection %d" % n)
                b.check_errors()
                rec = b.records[n]
                n += 1
                want = forwarded(version, src, dst)
                assert rec["raw"] == want, "%s on %s: forwarded %r, want %r" % (
                    what, name, rec["raw"], want)
                assert rec["echoed"] == len(data), (name, what, rec)
                client = fmt(src if src else real)
                f = H.wait_for(lambda: next((f for f in H.close_lines(d)
                                             if f["listener"] == name
                                             and f["client"] == client), None),
                               10, "the summary of %s on %s" % (client, name))
                assert int(f["in"]) == len(data), (what, f)


# --------------------------------------------------------------------------
# accept_proxy

def ap_daemon(preforkd, **keys):
    lk = {"accept_proxy": "on", "proxy_timeout": "500ms"}
    lk.update(keys)
    return preforkd.start(daemon={"workers": 2}, listeners={"ap": lk})


def test_accept_proxy_valid_headers(preforkd):
    """Valid v1/v2 headers (IPv4, IPv6, the longest v1 line, v2 with TLVs, a v2 header
    in pieces, v2 LOCAL, v1 UNKNOWN) followed by payload: the payload alone is echoed
    and the summary's client= is the header's source (the real one for LOCAL/UNKNOWN)."""
    d = ap_daemon(preforkd)
    longest = ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)
    tlvs = bytes([0x04, 0, 5]) + b"\0" * 5 + bytes([0x01, 0, 2]) + b"h2"
    cases = [
        ("v1 tcp4", v1(("192.0.2.10", 4567), ("198.51.100.1", 80)), ("192.0.2.10", 4567)),
        ("v2 tcp4", v2(("203.0.113.20", 5678), ("198.51.100.1", 443)), ("203.0.113.20", 5678)),
        ("v1 tcp6 longest", v1(longest, longest), longest),
        ("v2 tcp6 tlvs", v2(("2001:db8::7", 6001), ("2001:db8::1", 443), tlvs=tlvs),
         ("2001:db8::7", 6001)),
        ("v2 pieces", v2(("198.51.100.33", 7001), ("198.51.100.1", 80)), ("198.51.100.33", 7001)),
        ("v2 local", v2(None, None, cmd=0x20), None),
        ("v1 unknown", b"PROXY UNKNOWN\r\n", None),
    ]
    assert len(v1(longest, longest)) == 104
    for name, hdr, src in cases:
        data = H.payload(5000)
        with H.connect(d.port) as c:
            real = c.getsockname()[1]
            if name == "v2 pieces":
                for piece in (hdr[:5], hdr[5:13], hdr[13:20]):
                    c.sendall(piece)
                    time.sleep(0.02)        # separate segments, to exercise partial parses
                c.sendall(hdr[20:])
                back = H.exchange(c, data)
            else:
                c.sendall(hdr)
                back = H.exchange(c, data)
            assert H.digest(back) == H.digest(data), "%s: the echo differs" % name
        f = H.wait_close_line(d, fmt(src) if src else real)
        assert f["reason"] == "client_eof", (name, f)
        assert int(f["in"]) == len(data) and int(f["out"]) == len(data), (name, f)


def test_accept_proxy_header_and_payload_in_one_segment(preforkd):
    """A header and the payload in a single send: the bytes after the header are echoed."""
    d = ap_daemon(preforkd)
    data = H.payload(70000)
    hdr = v2(("192.0.2.44", 4444), ("192.0.2.1", 80))
    with H.connect(d.port) as c:
        c.sendall(hdr + data[:1000])
        got = b""
        c.settimeout(5 * H.SLOW)
        while len(got) < 1000:
            ch = c.recv(1000 - len(got))
            assert ch, "EOF after %d bytes" % len(got)
            got += ch
        assert got == data[:1000]
        assert H.digest(H.exchange(c, data[1000:])) == H.digest(data[1000:])
    f = H.wait_close_line(d, "192.0.2.44:4444")
    assert int(f["in"]) == len(data), f


BAD = [
    ("v1 TCP9", b"PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\nhello", False, "bad_proxy_header"),
    ("v1 bad address", b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\nhello", False, "bad_proxy_header"),
    ("v1 NUL in an address", b"PROXY TCP4 1.2.3.4\x00garbage 5.6.7.8 1 2\r\nhello", False,
     "bad_proxy_header"),
    ("v2 bad signature", b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + b"\0" * 12 + b"hello",
     False, "bad_proxy_header"),
    ("no header at all", b"GET / HTTP/1.0\r\n\r\n", False, "bad_proxy_header"),
    ("v2 truncated then EOF", v2(("192.0.2.1", 1), ("192.0.2.2", 2))[:20], True,
     "bad_proxy_header"),
    ("v1 truncated then EOF", b"PROXY TCP4 192.0.2.1 192.0", True, "bad_proxy_header"),
    ("v1 oversized", b"PROXY TCP4 " + b"1" * 200, False, "bad_proxy_header"),
    ("v2 oversized length", V2SIG + b"\x21\x11\xff\xff" + b"\0" * 64, False,
     "bad_proxy_header"),
    ("missing", b"", False, "proxy_timeout"),
    ("v1 then silence", b"PROXY TCP4 ", False, "proxy_timeout"),
]


@pytest.mark.timeout_s(60)
def test_accept_proxy_bad_headers(preforkd):
    """Malformed, truncated, oversized and missing headers each close their own
    connection only (reason bad_proxy_header, or proxy_timeout after about 500ms for a
    header that never completes); a concurrent good connection keeps working and the
    workers stay the same."""
    d = ap_daemon(preforkd)
    workers = sorted(d.wait_workers(2))
    good = H.connect(d.port)
    good.sendall(v1(("192.0.2.200", 2000), ("192.0.2.1", 80)))
    assert H.exchange(good, b"first") == b"first"
    for name, hdr, shut, reason in BAD:
        with H.connect(d.port) as c:
            port = c.getsockname()[1]
            if hdr:
                c.sendall(hdr)
            if shut:
                c.shutdown(socket.SHUT_WR)
            took = H.wait_closed_by_peer(c, 5)
        f = H.wait_close_line(d, port)
        print("%-22s closed after %.3f s: %s" % (name, took, f["reason"]))
        assert f["reason"] == reason, (name, f)
        assert f["out"] == "0", (name, f)
        if reason == "proxy_timeout":
            assert 0.4 <= took <= 3.0, "%s: closed after %.2f s (proxy_timeout 500ms)" % (
                name, took)
        msg = b"still here after %s" % name.encode()
        assert H.exchange(good, msg) == msg, name
    good.close()
    H.wait_close_line(d, "192.0.2.200:2000")
    assert sorted(d.worker_pids()) == workers


RE_BAD_HDR = re.compile(r"^.*\[(\w+)\] worker \d+ gen \d+: listener ap: bad PROXY header "
                        r"from [0-9.:]+: [^(\n]*?(?: \((\d+) more since the last such line\))?$",
                        re.M)


@pytest.mark.timeout_s(60)
def test_bad_headers_warn_rate_limited(preforkd):
    """At the default log level a refused PROXY header gives a warning naming the
    listener, the sender and why, so a misconfigured load balancer shows; a flood of
    them gives at most one line a second (one worker here), each line counting the ones
    held back since the one before, so that the lines account for every refusal."""
    d = preforkd.start(daemon={"workers": 1, "log_level": "notice"}, listeners={
        "ap": {"accept_proxy": "on", "proxy_timeout": "5s"}})
    sent = 0

    def bad_one():
        nonlocal sent
        with H.connect(d.port) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            H.wait_closed_by_peer(c, 5)
        sent += 1

    t0 = time.monotonic()
    for _ in range(300):
        bad_one()
    # Until a line comes that reports the rest: the accounting then closes.
    first = len(RE_BAD_HDR.findall(d.log()))
    assert first >= 1, "no warning at the default level; log tail:\n" + d.log_tail()

    def more():
        bad_one()
        return len(RE_BAD_HDR.findall(d.log())) > first
    H.wait_for(more, 5, "a warning after the flood", interval=0.05)
    elapsed = time.monotonic() - t0
    lines = RE_BAD_HDR.findall(d.log())
    print("%d refusals in %.2f s: %d warning lines" % (sent, elapsed, len(lines)))
    assert all(level == "warning" for level, _ in lines), lines
    assert "not a PROXY header" in d.log()
    # at most one a second, from the first refusal to the last line read
    assert len(lines) <= int(elapsed) + 2, (len(lines), elapsed)
    assert sum(1 + int(held or 0) for _, held in lines) == sent, (lines, sent)
    assert "[info]" not in d.log()
