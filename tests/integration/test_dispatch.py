"""Dispatch: connections are spread round-robin over the workers."""

import collections

import pfharness as H


def test_round_robin_spreads_sequential_connections(preforkd):
    """100 connections opened one after another (each echoed before the next
    opens) land 25 +- 2 on each of 4 workers."""
    d = preforkd.start(daemon={"workers": 4, "log_level": "notice"})
    workers = d.wait_workers(4)
    socks = []
    try:
        for i in range(100):
            s = H.connect(d.port)
            socks.append(s)
            assert H.exchange(s, b"%c" % (65 + i % 26)) == b"%c" % (65 + i % 26)
        ports = [s.getsockname()[1] for s in socks]
        owner = H.worker_of_connections(d, d.port, ports)
        missing = [p for p in ports if p not in owner]
        assert not missing, "no worker found for %d connections (e.g. client port %d)" % (
            len(missing), missing[0])
        count = collections.Counter(owner.values())
        assert set(count) <= set(workers), "connections held by non-workers: %r" % count
        per_worker = {w: count.get(w, 0) for w in workers}
        print("connections per worker: %r" % per_worker)
        assert all(23 <= n <= 27 for n in per_worker.values()), \
            "uneven spread over 4 workers: %r" % per_worker
        # every held connection still echoes
        for i, s in enumerate(socks):
            assert H.exchange(s, b"again %d" % i) == b"again %d" % i
    finally:
        for s in socks:
            s.close()
