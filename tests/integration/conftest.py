"""pytest fixtures for preforkd's integration tests (the helpers are in pfharness.py).

  preforkd    a pfharness.Session: .start(daemon={...}, listeners={...}, args=[...])
              starts a daemon and waits for READY=1; every daemon is stopped at
              teardown, leftover workers are killed by PID, and the test fails
              when a log holds [crit] or a sanitizer report.
  tmp_dir     a scratch directory (kept with PREFORKD_KEEP=1)

Every test runs under an alarm (default 60 s, @pytest.mark.timeout_s(N) to
change it), so a hang fails the test instead of the suite.
"""

import os
import signal
import tempfile

import pytest

import pfharness as H

DEFAULT_TEST_TIMEOUT = 60


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout_s(n): per-test time limit in seconds")


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def time_guard(request):
    m = request.node.get_closest_marker("timeout_s")
    limit = m.args[0] if m else DEFAULT_TEST_TIMEOUT
    limit = int(limit * (2 if H.ASAN else 1))

    def on_alarm(signo, frame):
        raise TestTimeout("test exceeded its %d s limit" % limit)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def binaries():
    assert os.access(H.PREFORKD, os.X_OK), "no preforkd binary at %s (make build/preforkd)" % H.PREFORKD
    return H.PREFORKD


@pytest.fixture
def pfload_bin():
    assert os.access(H.PFLOAD, os.X_OK), "no pfload at %s (make build/tools/pfload)" % H.PFLOAD
    return H.PFLOAD


@pytest.fixture
def backends():
    """Backends of the test (threads, and external servers killed by PID at teardown).
    Requested before `preforkd`, so the daemons stop first."""
    pool = H.BackendPool()
    yield pool
    problems = pool.close()
    if problems:
        pytest.fail("backend teardown:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def preforkd(request, binaries):
    s = H.Session(request)
    yield s
    problems = H.timed_teardown(s.teardown)
    if problems:
        pytest.fail("teardown:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def tmp_dir(request):
    d = tempfile.mkdtemp(prefix="preforkd-t-")
    yield d
    if H.KEEP:
        print("\npreforkd: kept %s" % d)
    else:
        import shutil
        shutil.rmtree(d, ignore_errors=True)
