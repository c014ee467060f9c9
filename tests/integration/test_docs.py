"""The docs and units agree with the code.

Every config key of the key table (src/config.c) is documented in
preforkd.conf(5) and shown in the sample config; every long flag of getopt
(src/main.c) is in --help, and every flag of --help is in preforkd(8) and
README.md; the man pages lint clean; the systemd units verify and the service
is hardened.
"""

import os
import re
import shutil
import subprocess

import pytest

import pfharness as H

REPO = H.REPO
MAN8 = os.path.join(REPO, "man", "preforkd.8")
MAN5 = os.path.join(REPO, "man", "preforkd.conf.5")
SAMPLE = os.path.join(REPO, "conf", "preforkd.conf")
README = os.path.join(REPO, "README.md")
UNITS = os.path.join(REPO, "systemd")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def config_keys():
    """[(section, key)] of the key table: its `{ "daemon", "KEY", ...` entries."""
    keys = re.findall(r'\{\s*"(daemon|listener)",\s*"([a-z_][a-z0-9_]*)"',
                      read(os.path.join(REPO, "src", "config.c")))
    assert len(keys) >= 10, "could not parse the key table in src/config.c: %r" % keys
    return keys


def getopt_long_flags():
    """{long name: short letter} of the longopts table in src/main.c."""
    src = read(os.path.join(REPO, "src", "main.c"))
    m = re.search(r"struct option\s+\w+\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    assert m, "no struct option table in src/main.c"
    flags = dict(re.findall(r'\{\s*"([a-z][a-z0-9-]*)",\s*\w+,\s*\w+,\s*\'(.)\'\s*\}', m.group(1)))
    assert len(flags) >= 5, "could not parse longopts: %r" % m.group(1)
    return flags


def getopt_short_flags():
    src = read(os.path.join(REPO, "src", "main.c"))
    m = re.search(r'getopt_long\(\s*\w+,\s*\w+,\s*"([^"]+)"', src)
    assert m, "no getopt_long optstring in src/main.c"
    return [c for c in m.group(1) if c.isalnum()]


def help_text():
    r = subprocess.run([H.PREFORKD, "--help"], capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r
    return r.stdout


def help_long_flags(text):
    return sorted(set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", text)))


def test_every_config_key_is_documented():
    man = read(MAN5)
    sample = read(SAMPLE)
    missing_man = [k for _, k in config_keys()
                   if not re.search(r"^\.It Ic %s(\s|$)" % re.escape(k), man, re.M)]
    missing_sample = [k for _, k in config_keys()
                      if not re.search(r"^#?[ \t]*%s[ \t]*=" % re.escape(k), sample, re.M)]
    assert not missing_man, "keys without `.It Ic KEY` in man/preforkd.conf.5: %r" % missing_man
    assert not missing_sample, "keys missing from conf/preforkd.conf (as `KEY =` or " \
        "`# KEY =`): %r" % missing_sample


def test_documented_keys_exist():
    """No `.It Ic` in preforkd.conf(5) for a key the daemon does not know."""
    known = {k for _, k in config_keys()}
    documented = re.findall(r"^\.It Ic ([a-z_][a-z0-9_]*)", read(MAN5), re.M)
    stale = sorted(set(documented) - known)
    assert not stale, "preforkd.conf(5) documents unknown keys: %r" % stale


def test_sample_config_is_valid(binaries):
    r = subprocess.run([H.PREFORKD, "-t", "-c", SAMPLE], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "%s: configuration ok" % SAMPLE, r


def test_getopt_flags_are_in_help(binaries):
    text = help_text()
    long_in_help = help_long_flags(text)
    for name, short in getopt_long_flags().items():
        assert name in long_in_help, "--%s (getopt) missing from --help:\n%s" % (name, text)
        assert re.search(r"(?<![\w-])-%s\b" % re.escape(short), text), \
            "-%s (getopt) missing from --help:\n%s" % (short, text)
    for c in getopt_short_flags():
        assert re.search(r"-%s\b|\[-[A-Za-z]*%s[A-Za-z]*\]" % (c, c), text), \
            "-%s (optstring) missing from --help:\n%s" % (c, text)
    # and --help shows no flag that getopt does not take
    extra = set(long_in_help) - set(getopt_long_flags())
    assert not extra, "--help shows flags getopt does not know: %r" % sorted(extra)


def test_help_flags_are_in_man_and_readme(binaries):
    flags = help_long_flags(help_text())
    assert len(flags) >= 5, flags
    man = read(MAN8)
    readme = read(README)
    # mdoc writes --config as `Fl -config` (or `Fl \-config`)
    no_man = [f for f in flags
              if not re.search(r"Fl \\?-%s(?![\w-])|\\?-\\?-%s(?![\w-])" % (
                  re.escape(f), re.escape(f)), man)]
    no_readme = [f for f in flags if not re.search(r"--%s(?![\w-])" % re.escape(f), readme)]
    assert not no_man, "flags of --help missing from man/preforkd.8: %r" % no_man
    assert not no_readme, "flags of --help missing from README.md: %r" % no_readme


@pytest.mark.skipif(shutil.which("mandoc") is None,
                    reason="mandoc not installed (Debian package mandoc; make check installs "
                           "it with the test dependencies)")
def test_man_pages_lint_clean():
    r = subprocess.run(["mandoc", "-Tlint", MAN8, MAN5], capture_output=True, text=True,
                       timeout=30)
    out = (r.stdout + r.stderr).strip()
    assert out == "", "mandoc -Tlint:\n%s" % out


def unit_files():
    units = sorted(os.path.join(UNITS, f) for f in os.listdir(UNITS)
                   if f.endswith((".service", ".socket")))
    names = [os.path.basename(u) for u in units]
    assert "preforkd.service" in names and "preforkd.socket" in names, names
    return units


# Complaints of systemd-analyze verify that come from this checkout not being an
# installed system, not from the units: ExecStart= names the installed binary
# (/usr/sbin or /usr/local/sbin/preforkd, absent here), and Documentation=man:...
# is checked by running man(1), which finds no installed page.
VERIFY_EXPECTED = (
    re.compile(r"^\S+: Command \S*/preforkd is not executable: No such file or directory$"),
    re.compile(r"^\S+: Command 'man [^']+' failed with code \d+$"),
)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian package systemd; make check "
                           "installs it with the test dependencies)")
def test_units_verify_clean():
    r = subprocess.run(["systemd-analyze", "verify"] + unit_files(), capture_output=True,
                       text=True, timeout=60, cwd=UNITS)
    lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    unexpected = [l for l in lines if not any(rx.match(l) for rx in VERIFY_EXPECTED)]
    assert not unexpected, "systemd-analyze verify:\n%s" % "\n".join(unexpected)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed (Debian package systemd; make check "
                           "installs it with the test dependencies)")
def test_service_is_hardened():
    unit = os.path.join(UNITS, "preforkd.service")
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", unit],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    m = re.search(r"Overall exposure level for preforkd\.service: (\d+\.\d+)", out)
    assert m, "no overall exposure level in:\n%s" % out[-3000:]
    assert float(m.group(1)) <= 1.5, "exposure %s > 1.5:\n%s" % (m.group(1), out[-3000:])


def test_socket_unit_names_a_listener():
    """preforkd.socket's FileDescriptorName= is a [listener NAME] of the sample config."""
    sock = read(os.path.join(UNITS, "preforkd.socket"))
    assert re.search(r"^ListenStream=\S+", sock, re.M), sock
    m = re.search(r"^FileDescriptorName=(\S+)", sock, re.M)
    assert m, "no FileDescriptorName= in preforkd.socket"
    assert re.search(r"^\[listener %s\]" % re.escape(m.group(1)), read(SAMPLE), re.M), \
        "FileDescriptorName=%s matches no [listener] of conf/preforkd.conf" % m.group(1)
