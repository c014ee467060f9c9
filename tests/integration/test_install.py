"""make install / make uninstall into a DESTDIR (PREFIX=/usr)."""

import os
import stat
import subprocess

import pytest

import pfharness as H

REPO = H.REPO


def make(target, destdir, timeout=300):
    r = subprocess.run(["make", "--no-print-directory", "-C", REPO, target,
                        "DESTDIR=" + destdir, "PREFIX=/usr"],
                       capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, "make %s failed (%d):\n%s%s" % (target, r.returncode, r.stdout,
                                                              r.stderr)
    return r


def files_under(root):
    """Regular files (and anything else but directories) under root, relative."""
    out = set()
    for d, dirs, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), root))
        for sub in dirs:
            p = os.path.join(d, sub)
            if os.path.islink(p):
                out.add(os.path.relpath(p, root))
    return out


def units():
    return sorted(f for f in os.listdir(os.path.join(REPO, "systemd"))
                  if f.endswith((".service", ".socket")))


def expected_tree():
    tree = {
        "usr/sbin/preforkd": 0o755,
        "usr/share/man/man8/preforkd.8": 0o644,
        "usr/share/man/man5/preforkd.conf.5": 0o644,
        "etc/preforkd/preforkd.conf": 0o644,
    }
    for u in units():
        tree["usr/lib/systemd/system/" + u] = 0o644
    return tree


def same_bytes(a, b):
    with open(a, "rb") as f, open(b, "rb") as g:
        return f.read() == g.read()


@pytest.mark.timeout_s(300)
def test_install_then_uninstall(tmp_dir):
    dest = os.path.join(tmp_dir, "root")
    make("install", dest)
    want = expected_tree()
    assert "usr/lib/systemd/system/preforkd.socket" in want, units()
    got = files_under(dest)
    assert got == set(want), "installed %r; expected %r (missing %r, extra %r)" % (
        sorted(got), sorted(want), sorted(set(want) - got), sorted(got - set(want)))
    for rel, mode in want.items():
        st = os.lstat(os.path.join(dest, rel))
        assert stat.S_ISREG(st.st_mode), "%s is not a regular file" % rel
        assert stat.S_IMODE(st.st_mode) == mode, "%s has mode %o, want %o" % (
            rel, stat.S_IMODE(st.st_mode), mode)
    for rel, src in (("usr/share/man/man8/preforkd.8", "man/preforkd.8"),
                     ("usr/share/man/man5/preforkd.conf.5", "man/preforkd.conf.5"),
                     ("etc/preforkd/preforkd.conf", "conf/preforkd.conf")):
        assert same_bytes(os.path.join(dest, rel), os.path.join(REPO, src)), rel
    for u in units():
        assert same_bytes(os.path.join(dest, "usr/lib/systemd/system", u),
                          os.path.join(REPO, "systemd", u)), u
    r = subprocess.run([os.path.join(dest, "usr/sbin/preforkd"), "-V"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.startswith("preforkd "), r

    make("uninstall", dest)
    left = files_under(dest)
    assert not left, "files left after make uninstall: %r" % sorted(left)


@pytest.mark.timeout_s(300)
def test_install_keeps_existing_config(tmp_dir):
    dest = os.path.join(tmp_dir, "root")
    etc = os.path.join(dest, "etc", "preforkd")
    os.makedirs(etc)
    mine = os.path.join(etc, "preforkd.conf")
    text = "# the administrator's own\n[listener mine]\nlisten = 127.0.0.1:7\n"
    with open(mine, "w") as f:
        f.write(text)
    make("install", dest)
    with open(mine) as f:
        assert f.read() == text, "make install overwrote an existing preforkd.conf"
    assert os.access(os.path.join(dest, "usr/sbin/preforkd"), os.X_OK)
    # a second install over the first changes nothing of it either
    make("install", dest)
    with open(mine) as f:
        assert f.read() == text
    make("uninstall", dest)
    left = files_under(dest)
    # everything installed is gone; the administrator's edited file is kept
    assert left <= {"etc/preforkd/preforkd.conf"}, "files left after make uninstall: %r" % (
        sorted(left),)
    if left:
        with open(mine) as f:
            assert f.read() == text
