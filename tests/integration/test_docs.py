"""The docs and units agree with the code.

The key table is read from the daemon's own config module through
build/tools/keydump ($KEYDUMP), not parsed out of its source.  Every key has
its entry (`.It Ic KEY`) in preforkd.conf(5), in the section the table puts
it in and stating the table's default; the sample config shows every key under
its section with its default value (or a comment saying what the default is);
neither documents a key the daemon does not know.  Every long flag of getopt
(src/main.c) is in --help and every flag of --help is in preforkd(8).  The
links of README.md and docs/ lead to files and headings that exist; the man
pages lint clean; the systemd units verify and the service is hardened.
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
DOCS = os.path.join(REPO, "docs")
UNITS = os.path.join(REPO, "systemd")
KEYDUMP = os.environ.get("KEYDUMP", os.path.join(REPO, "build", "tools", "keydump"))


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class Key:
    """One line of keydump: section, name, type, default ("" for none), doc."""

    def __init__(self, line):
        f = line.split("\t")
        assert len(f) == 5, "keydump line with %d fields, not 5: %r" % (len(f), line)
        self.section, self.name, self.type, self.default, self.doc = f
        assert self.section in ("daemon", "listener"), line
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", self.name), line

    def __repr__(self):
        return "%s.%s" % (self.section, self.name)


def config_keys():
    """The key table of the config module, as keydump prints it."""
    assert os.access(KEYDUMP, os.X_OK), "no keydump at %s (make build/tools/keydump)" % KEYDUMP
    r = subprocess.run([KEYDUMP], capture_output=True, text=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stderr == "", r
    keys = [Key(l) for l in r.stdout.splitlines()]
    assert len(keys) >= 10, "keydump printed too few keys: %r" % r.stdout
    return keys


def man_section_kind(title):
    """"daemon" or "listener" for an .Ss title of preforkd.conf(5), else None."""
    if re.search(r"\bdaemon section\b", title):
        return "daemon"
    if re.search(r"\bListener sections\b", title):
        return "listener"
    return None


MDOC_MACRO = re.compile(r"^(?:[A-Z][a-z][a-z]?|D1|Dl)$")


def mdoc_text(lines):
    """The words of mdoc source lines, macros dropped and escapes undone, joined
    by blanks: `Default:` / `.Cm auto .` reads `Default: auto .`."""
    words = []
    for line in lines:
        if line.startswith(".\\\""):
            continue
        if line.startswith("."):
            toks = line[1:].split()
            toks = [t for t in toks if not MDOC_MACRO.match(t)]
            line = " ".join(toks)
        line = line.replace("\\&", "").replace("\\-", "-").replace("\\e", "\\")
        words.extend(line.split())
    return " ".join(words)


def man5_entries():
    """{key: [(section kind, entry text)]} of every `.It Ic KEY` of
    preforkd.conf(5): the entry runs to the next `.It Ic` or section."""
    entries = {}
    kind, key, body = None, None, []

    def flush():
        if key is not None:
            entries.setdefault(key, []).append((kind, mdoc_text(body)))

    for line in read(MAN5).splitlines():
        m = re.match(r"^\.(Ss|Sh) (.*)", line)
        if m:
            flush()
            key, body = None, []
            kind = man_section_kind(m.group(2)) if m.group(1) == "Ss" else None
            continue
        m = re.match(r"^\.It Ic ([a-z_][a-z0-9_]*)(?:\s|$)", line)
        if m:
            flush()
            key, body = m.group(1), []
            continue
        if key is not None:
            body.append(line)
    flush()
    return entries


def man5_default(text):
    """What an entry says of its default: ("value", V) for `Default: V`,
    ("none", None) for `No default`, `No fixed default` (a default worked
    out at run time, such as the user's primary group) or `Required`, or
    ("?", all statements)."""
    stated = re.findall(r"(?<![\w-])Default: (\S+)", text)
    if len(stated) == 1 and not re.search(r"\bNo default\b", text):
        return "value", stated[0].rstrip(".,;:")
    if not stated and re.search(r"\bNo (fixed )?default\b|^Required\b|\. Required\b", text):
        return "none", None
    return "?", stated


def sample_settings():
    """[(section kind or None, key, value, comment above it)] of every `KEY =
    VALUE` line of the sample config, commented out (`#KEY = VALUE`, in a
    `#[listener ...]` section) or not; comments are `# ...` or `## ...` lines."""
    out = []
    kind, comment = None, []
    for line in read(SAMPLE).splitlines():
        m = re.match(r"^#?\[(daemon|listener [A-Za-z0-9_.-]+)\]\s*$", line)
        if m:
            kind = m.group(1).split()[0]
            comment = []
            continue
        m = re.match(r"^#?[ \t]*([a-z_][a-z0-9_]*)[ \t]*=[ \t]*(.*?)[ \t]*$", line)
        if m and not line.startswith("##"):
            out.append((kind, m.group(1), m.group(2), " ".join(comment)))
            comment = []
            continue
        m = re.match(r"^#+[ \t]*(\S.*)$", line)
        comment = comment + [m.group(1)] if m else []
    return out


def test_keydump_is_the_table():
    """keydump prints each key once, the daemon section first."""
    keys = config_keys()
    names = [(k.section, k.name) for k in keys]
    assert len(set(names)) == len(names), "a key twice in keydump: %r" % names
    sections = [k.section for k in keys]
    assert sections == sorted(sections), "daemon keys after listener keys: %r" % sections


def test_every_config_key_is_in_the_man_page():
    """Each key has one `.It Ic KEY` in preforkd.conf(5), under its section,
    stating the table's default."""
    entries = man5_entries()
    keys = config_keys()
    problems = []
    # A name may be a key of both sections (max_connections): one entry each.
    sections = {}
    for k in keys:
        sections.setdefault(k.name, set()).add(k.section)
    for name, found in entries.items():
        for kind, _ in found:
            if name in sections and kind not in sections[name]:
                problems.append("%s: documented under the %s section, a key of %s" % (
                    name, kind, " and ".join(sorted(sections[name]))))
    for k in keys:
        found = [(kind, text) for kind, text in entries.get(k.name, []) if kind == k.section]
        if len(found) != 1:
            problems.append("%r: %d `.It Ic %s` entries under the %s section, not 1" % (
                k, len(found), k.name, k.section))
            continue
        kind, text = found[0]
        said, value = man5_default(text)
        if k.default and (said, value) != ("value", k.default):
            problems.append("%r: the table's default is %r; the man page says %s %r" % (
                k, k.default, said, value))
        if not k.default and said != "none":
            problems.append("%r: the table has no default; the man page should say "
                            "`No default` (or `Required`), not %s %r" % (k, said, value))
    assert not problems, "man/preforkd.conf.5 against the key table:\n" + "\n".join(problems)


def test_documented_keys_exist():
    """No `.It Ic` in preforkd.conf(5) for a key the daemon does not know."""
    known = {k.name for k in config_keys()}
    documented = re.findall(r"^\.It Ic ([a-z_][a-z0-9_]*)", read(MAN5), re.M)
    stale = sorted(set(documented) - known)
    assert not stale, "preforkd.conf(5) documents unknown keys: %r" % stale


def test_sample_config_shows_every_key_with_its_default():
    """conf/preforkd.conf shows every key under its section, each value shown
    being the default or having a comment above it that says the default."""
    keys = {(k.section, k.name): k for k in config_keys()}
    settings = sample_settings()
    problems = []
    for kind, name, value, comment in settings:
        k = keys.get((kind, name))
        if k is None:
            owners = sorted(sect for sect, n in keys if n == name)
            if owners:
                problems.append("%s = %s: under %s, the key belongs to %s" % (
                    name, value, kind, " and ".join(owners)))
            else:
                problems.append("%s = %s: no such key" % (name, value))
            continue
        if k.default and value != k.default and not (
                re.search(r"\bdefault\b", comment) and
                re.search(r"(?<![\w.])%s(?![\w.])" % re.escape(k.default), comment)):
            problems.append("%s = %s: not the default %s, and the comment above does not "
                            "say the default" % (name, value, k.default))
    shown = {(kind, name) for kind, name, _, _ in settings}
    for k in keys.values():
        if (k.section, k.name) not in shown:
            problems.append("%r missing (as `KEY = VALUE` or `#KEY = VALUE`)" % k)
    assert not problems, "conf/preforkd.conf against the key table:\n" + "\n".join(problems)


def test_sample_config_is_valid(binaries):
    r = subprocess.run([H.PREFORKD, "-t", "-c", SAMPLE], capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r
    assert r.stdout.strip() == "%s: configuration ok" % SAMPLE, r


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


def test_help_flags_are_in_man(binaries):
    flags = help_long_flags(help_text())
    assert len(flags) >= 5, flags
    man = read(MAN8)
    # mdoc writes --config as `Fl -config` (or `Fl \-config`)
    no_man = [f for f in flags
              if not re.search(r"Fl \\?-%s(?![\w-])|\\?-\\?-%s(?![\w-])" % (
                  re.escape(f), re.escape(f)), man)]
    assert not no_man, "flags of --help missing from man/preforkd.8: %r" % no_man


def md_anchor(heading):
    """The anchor GitHub gives a Markdown heading."""
    a = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return a.replace(" ", "-")


def md_links(path):
    """[(line number, target)] of the inline links and images of a Markdown
    file, code spans and indented code blocks left out."""
    out = []
    fence = False
    for n, line in enumerate(read(path).splitlines(), 1):
        if line.startswith("```"):
            fence = not fence
            continue
        if fence or line.startswith("    "):
            continue
        line = re.sub(r"`[^`]*`", "", line)
        out.extend((n, t) for t in re.findall(r"\]\(([^)\s]+)\)", line))
    return out


def md_files():
    files = [README]
    if os.path.isdir(DOCS):
        files += sorted(os.path.join(DOCS, f) for f in os.listdir(DOCS) if f.endswith(".md"))
    return files


def test_markdown_links_resolve():
    """Every relative link of README.md and docs/*.md names a file of the tree,
    and every #anchor a heading of the file it points into."""
    problems = []
    for path in md_files():
        for n, target in md_links(path):
            if re.match(r"^[a-z]+:", target):
                continue                        # https:, mailto:
            file, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
            where = "%s:%d: %s" % (os.path.relpath(path, REPO), n, target)
            if not os.path.exists(dest):
                problems.append(where + ": no such file")
                continue
            if anchor and dest.endswith(".md"):
                heads = {md_anchor(h) for h in re.findall(r"^#+ (.*)$", read(dest), re.M)}
                if anchor not in heads:
                    problems.append(where + ": no such heading")
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_readme_is_the_front_door():
    """README.md leads to the reference and the docs, and does not copy them."""
    targets = {os.path.normpath(t.partition("#")[0]) for _, t in md_links(README)}
    for want in ("man/preforkd.8", "man/preforkd.conf.5", "docs/design.md",
                 "docs/performance.md"):
        assert want in targets, "README.md does not link %s" % want
    size = os.path.getsize(README)
    assert size < 15000, "README.md is %d bytes: the reference belongs in man/" % size


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
