"""Command line: flags, exit statuses, config errors, -t, -V, -h, -l."""

import os
import signal
import socket
import subprocess

import pytest

import pfharness as H


def run_cli(args, timeout=10, cwd=None):
    """Run preforkd with args; returns CompletedProcess.  A process that does not exit in
    time (it started serving when it should have failed) is killed with its group."""
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID"):
        env.pop(k, None)
    p = subprocess.Popen([H.PREFORKD] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         cwd=cwd, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout * H.SLOW)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        pytest.fail("preforkd %s did not exit within %ss; stderr:\n%s" % (
            " ".join(args), timeout, err))
    # a sanitizer report fails the test whatever the exit status (an error exit may
    # legitimately log [crit], so that one is not checked here)
    bad = [l for l in err.splitlines() if any(b in l for b in H.BAD_LOG[1:])]
    assert not bad, "preforkd %s: sanitizer report:\n%s" % (" ".join(args), err)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def valid_config(tmp_dir, port=None):
    port = port or H.free_port()
    return write(os.path.join(tmp_dir, "ok.conf"), H.render_config(
        {"workers": 2}, {"echo": {"listen": "127.0.0.1:%d" % port}}))


def usage_like(text):
    return "usage" in text.lower()


def test_unknown_flag(binaries):
    r = run_cli(["--no-such-flag"])
    assert r.returncode == 2, r
    assert usage_like(r.stderr), "no usage on stderr: %r" % r.stderr
    r = run_cli(["-Z"])
    assert r.returncode == 2 and usage_like(r.stderr), r


def test_stray_argument(binaries, tmp_dir):
    r = run_cli(["-t", "-c", valid_config(tmp_dir), "stray"])
    assert r.returncode == 2 and usage_like(r.stderr), r


@pytest.mark.parametrize("value", ["0", "abc", "-1", "257", ""])
def test_bad_worker_count(binaries, tmp_dir, value):
    r = run_cli(["-t", "-c", valid_config(tmp_dir), "-w", value])
    assert r.returncode == 2, r
    assert usage_like(r.stderr), r


def test_bad_log_level_flag(binaries, tmp_dir):
    r = run_cli(["-t", "-c", valid_config(tmp_dir), "-L", "loud"])
    assert r.returncode == 2, r


def test_missing_config_file(binaries, tmp_dir):
    """A file that cannot be read is an error in the documented "preforkd: ..." form
    (it has no FILE:LINE), with and without -t; so is a bad -l."""
    path = os.path.join(tmp_dir, "nope.conf")
    want = "preforkd: %s: No such file or directory" % path
    r = run_cli(["-c", path])
    assert r.returncode == 1, r
    assert r.stderr.splitlines() == [want], r.stderr
    r = run_cli(["-t", "-c", path])
    assert r.returncode == 1 and r.stderr.splitlines() == [want], r
    r = run_cli(["-t", "-l", "nowhere"])
    assert r.returncode == 1, r
    assert r.stderr.startswith("preforkd: -l nowhere: "), r.stderr


def test_unknown_key_names_file_and_line(binaries, tmp_dir):
    port = H.free_port()
    path = write(os.path.join(tmp_dir, "bad.conf"),
                 "[daemon]\nworkers = 1\n\n[listener echo]\nlisten = 127.0.0.1:%d\n"
                 "colour = blue\n" % port)
    for args in (["-c", path], ["-t", "-c", path]):
        r = run_cli(args)
        assert r.returncode == 1, r
        assert "%s:6: colour:" % path in r.stderr, r.stderr


def test_unknown_section(binaries, tmp_dir):
    port = H.free_port()
    path = write(os.path.join(tmp_dir, "bad.conf"),
                 "[listener echo]\nlisten = 127.0.0.1:%d\n\n[frontend x]\n" % port)
    r = run_cli(["-t", "-c", path])
    assert r.returncode == 1 and "%s:4:" % path in r.stderr, r


def test_every_error_is_reported(binaries, tmp_dir):
    port = H.free_port()
    path = write(os.path.join(tmp_dir, "bad.conf"),
                 "[daemon]\nworkers = many\nshutdown_timeout = soon\n\n"
                 "[listener echo]\nlisten = 127.0.0.1:%d\nbacklog = 0\n" % port)
    r = run_cli(["-t", "-c", path])
    assert r.returncode == 1, r
    for line, key in ((2, "workers"), (3, "shutdown_timeout"), (7, "backlog")):
        assert "%s:%d: %s:" % (path, line, key) in r.stderr, r.stderr


@pytest.mark.parametrize("value", ["5 parsecs", "10x", "-1s", "25h"])
def test_bad_duration(binaries, tmp_dir, value):
    port = H.free_port()
    path = write(os.path.join(tmp_dir, "bad.conf"),
                 "[listener echo]\nlisten = 127.0.0.1:%d\nidle_timeout = %s\n" % (port, value))
    for args in (["-c", path], ["-t", "-c", path]):
        r = run_cli(args)
        assert r.returncode == 1, (value, r)
        assert "%s:3: idle_timeout:" % path in r.stderr, r.stderr


def test_no_listener_is_an_error(binaries, tmp_dir):
    path = write(os.path.join(tmp_dir, "empty.conf"), "[daemon]\nworkers = 1\n")
    r = run_cli(["-t", "-c", path])
    assert r.returncode == 1 and "%s:" % path in r.stderr and "no [listener" in r.stderr, r


def test_port_in_use(binaries, tmp_dir):
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        path = write(os.path.join(tmp_dir, "busy.conf"), H.render_config(
            {"workers": 1}, {"echo": {"listen": "127.0.0.1:%d" % port}}))
        r = run_cli(["-c", path])
        assert r.returncode == 1, r
        # where the listener is configured, as for the file's other errors
        assert "%s:5: listen: listener echo: bind 127.0.0.1:%d: Address already in use" % (
            path, port) in r.stderr, r.stderr
    finally:
        holder.close()


def test_check_valid_config(binaries, tmp_dir):
    path = valid_config(tmp_dir)
    r = run_cli(["-t", "-c", path])
    assert r.returncode == 0, r
    assert "%s: configuration ok" % path in r.stdout, r.stdout
    r = run_cli(["--test", "--config", path])
    assert r.returncode == 0, r


def test_version(binaries):
    for flag in ("-V", "--version"):
        r = run_cli([flag])
        assert r.returncode == 0, r
        assert r.stdout.strip() == "preforkd 0.1.0", r.stdout


def test_help(binaries):
    for flag in ("-h", "--help"):
        r = run_cli([flag])
        assert r.returncode == 0, r
        assert usage_like(r.stdout) and "-c" in r.stdout and "-l" in r.stdout, r.stdout


def test_listen_flag_without_config_serves_echo(preforkd):
    """preforkd -l 127.0.0.1:PORT with no config file serves echo."""
    port = H.free_port()
    d = preforkd.new(listeners={}, use_config=False,
                     args=["-l", "127.0.0.1:%d" % port, "-w", "2", "-L", "info"])
    d.start()
    d.wait_workers(2)
    data = H.payload(300000)
    assert H.echo_ok(port, data)
    d.wait_log(r"close listener=cli-1 client=127\.0\.0\.1:\d+ .*reason=client_eof")


def test_listen_flags_add_listeners(preforkd):
    """Two -l flags: two echo listeners, cli-1 and cli-2."""
    p1, p2 = H.free_port(), H.free_port()
    d = preforkd.new(listeners={}, use_config=False,
                     args=["-l", "127.0.0.1:%d" % p1, "--listen", "127.0.0.1:%d" % p2,
                           "-w", "1", "-L", "info"])
    d.start()
    assert H.echo_ok(p1, b"one") and H.echo_ok(p2, b"two")
    d.wait_log(r"close listener=cli-2 ")


def test_duplicate_key_section_and_address(binaries, tmp_dir):
    p1, p2 = H.free_port(), H.free_port()
    path = write(os.path.join(tmp_dir, "dup.conf"),
                 "[listener a]\nlisten = 127.0.0.1:%d\nlisten = 127.0.0.1:%d\n\n"   # 1-3
                 "[listener b]\nlisten = 127.0.0.1:%d\n\n"                           # 5-6
                 "[listener b]\nlisten = 127.0.0.1:%d\n\n"                           # 8-9
                 "[listener c]\nlisten = 127.0.0.1:%d\n" % (p1, p1, p2, p2, p1))     # 11-12
    r = run_cli(["-t", "-c", path])
    assert r.returncode == 1, r
    assert "%s:3: listen:" % path in r.stderr, r.stderr        # duplicate key
    assert "%s:8:" % path in r.stderr, r.stderr                # duplicate section
    assert "%s:12: listen:" % path in r.stderr, r.stderr       # address used twice


def test_address_rule_errors(binaries, tmp_dir):
    """-t reports each bad address rule as FILE:LINE: key: message, a bad line of a list
    file with that file's name and line, and every one of them in one run."""
    port = H.free_port()
    bad_list = write(os.path.join(tmp_dir, "deny.list"),
                     "# blocked\n10.0.0.0/8\n\n192.0.2.300\n")
    missing = os.path.join(tmp_dir, "missing.list")
    path = write(os.path.join(tmp_dir, "bad.conf"),
                 "[listener edge]\nlisten = 127.0.0.1:%d\n"              # 1-2
                 "allow = 10.0.0.1/8\n"                                   # 3
                 "deny = 192.168.0.0/16 %s\n"                             # 4
                 "allow = %s\n"                                           # 5
                 "accept_proxy_from = 10.0.0.0/33\n"                      # 6
                 "[listener inner]\nlisten = 127.0.0.1:%d\n"              # 7-8
                 "untrusted_proxy = direct\n"                             # 9
                 "[listener third]\nlisten = 127.0.0.1:%d\n"              # 10-11
                 "accept_proxy_from = 10.0.0.0/8\n"                       # 12
                 % (port, bad_list, missing, H.free_port(), H.free_port()))
    r = run_cli(["-t", "-c", path])
    assert r.returncode == 1, r
    want = [
        "%s:3: allow: host bits set past the prefix '10.0.0.1/8'" % path,
        "%s:4: deny: %s:4: bad address '192.0.2.300'" % (path, bad_list),
        "%s:5: allow: %s: No such file or directory" % (path, missing),
        "%s:6: accept_proxy_from: prefix out of range '10.0.0.0/33'" % path,
        "%s:6: accept_proxy_from: needs accept_proxy = on" % path,
        "%s:9: untrusted_proxy: needs accept_proxy_from" % path,
        "%s:12: accept_proxy_from: needs accept_proxy = on" % path,
    ]
    for w in want:
        assert w in r.stderr.splitlines(), (w, r.stderr)
    assert len(r.stderr.splitlines()) == len(want), r.stderr


def test_address_rules_from_a_long_list_file(binaries, tmp_dir):
    """A list file of 10,000 blocks and a repeated key pass -t at once."""
    port = H.free_port()
    blocks = ["10.%d.%d.0/24" % (i // 256, i % 256) for i in range(0, 20000, 2)]
    lst = write(os.path.join(tmp_dir, "allow.list"), "# generated\n" + "\n".join(blocks) + "\n")
    path = write(os.path.join(tmp_dir, "ok.conf"),
                 "[listener edge]\nlisten = 127.0.0.1:%d\nallow = %s\nallow = ::1 127.0.0.0/8\n"
                 "deny = 10.0.0.7\naccept_proxy = on\naccept_proxy_from = 127.0.0.1\n"
                 "untrusted_proxy = direct\n" % (port, lst))
    r = run_cli(["-t", "-c", path], timeout=5)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "%s: configuration ok" % path, r


def test_long_line_is_an_error(binaries, tmp_dir):
    port = H.free_port()
    path = write(os.path.join(tmp_dir, "long.conf"),
                 "[listener echo]\nlisten = 127.0.0.1:%d\n# %s\n" % (port, "x" * 250))
    r = run_cli(["-t", "-c", path])
    assert r.returncode == 1 and "%s:3:" % path in r.stderr, r


def test_ipv6_listener(preforkd):
    if not H.have_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this host")
    port = H.free_port()
    d = preforkd.new(listeners={}, use_config=False, args=["-l", "[::1]:%d" % port, "-w", "1"])
    d.start()
    data = H.payload(100000)
    assert H.echo_ok(port, data, host="::1")
