"""Tests of coalesce_client against the real daemon.

Run from the repository's root:

    python3 -m unittest discover -s clients/python -v

The daemon binary is $COALESCE_BIN, or built with `go build` into a
temporary directory. Each daemon a test needs is started on first use, on
127.0.0.1 port 0 and a Unix socket, and stopped when the module ends.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import coalesce_client as cc  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
STRICT_TOKEN = "s3cret-token"

# The daemons the tests share, by name, with their flags.
DAEMON_FLAGS = {
    # The default demo executor (15-30 ms); idle connections closed after
    # 250 ms, so that a kept-alive connection goes stale between calls.
    "fast": ["--idle-timeout", "250ms"],
    # Every computation takes 1 s: concurrent requests collapse, and a
    # respond-async result is still pending when polled.
    "slow": ["--demo-min", "1s", "--demo-max", "1s"],
    # A token, small limits, and a task timeout far below the 1 s
    # computation, so that every computation times out.
    "strict": ["--demo-min", "1s", "--demo-max", "1s", "--task-timeout", "50ms", "--max-input", "64", "--max-batch", "4"],
    # Every computation takes 10 s: far beyond a wait of 1 s.
    "glacial": ["--demo-min", "10s", "--demo-max", "10s"],
    # One worker, a queue of one, one waiter at most.
    "tight": ["--demo-min", "2s", "--demo-max", "2s", "--workers", "1", "--queue", "1", "--max-waiters", "1"],
}

_tmp = None
_bin = None
_daemons = {}
_lock = threading.Lock()


class Daemon:
    def __init__(self, name, url, socket_path, token, proc, log):
        self.name, self.url, self.socket, self.token, self.proc, self.log = name, url, socket_path, token, proc, log


def setUpModule():
    global _tmp, _bin
    _tmp = tempfile.mkdtemp(prefix="coalesce-py-test")
    unittest.addModuleCleanup(_cleanup)
    _bin = os.environ.get("COALESCE_BIN")
    if not _bin:
        _bin = os.path.join(_tmp, "coalesce")
        subprocess.run(["go", "build", "-o", _bin, "./cmd/coalesce"], cwd=ROOT, check=True, timeout=300)


def _cleanup():
    """Stops every daemon: SIGTERM to all, SIGKILL to any left after 10 s."""
    with _lock:
        for d in _daemons.values():
            d.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for d in _daemons.values():
            try:
                d.proc.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                d.proc.kill()
                d.proc.wait()
            d.log.close()
        _daemons.clear()
    shutil.rmtree(_tmp, ignore_errors=True)


def _die_with_parent():
    """Has the kernel kill the daemon if this process dies without stopping
    it (Linux only), so that none is left behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def daemon(name):
    """Returns the daemon named name, starting it on first use."""
    with _lock:
        if name in _daemons:
            return _daemons[name]
        sock = os.path.join(_tmp, name + ".sock")
        ready = os.path.join(_tmp, name + ".ready")
        args = [_bin, "serve", "--addr", "127.0.0.1:0", "--socket", sock, "--ready-file", ready,
                "--grace", "1s", "--log-level", "warn", "--data-dir", os.path.join(_tmp, name + ".data")]
        token = None
        if name == "strict":
            token = STRICT_TOKEN
            tf = os.path.join(_tmp, "token")
            with open(tf, "w") as f:
                f.write(token + "\n")
            args += ["--token-file", tf]
        args += DAEMON_FLAGS[name]
        env = {k: v for k, v in os.environ.items() if not k.startswith("COALESCE_")}
        log = open(os.path.join(_tmp, name + ".log"), "w+b")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                preexec_fn=_die_with_parent)
        d = Daemon(name, None, sock, token, proc, log)
        _daemons[name] = d
        deadline = time.monotonic() + 20
        while True:
            try:
                with open(ready) as f:
                    text = f.read()
                if text.endswith("\n"):
                    d.url = text.strip()
                    return d
            except FileNotFoundError:
                pass
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"daemon {name} exited with {proc.returncode} before it was ready:\n{log.read().decode()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"daemon {name} wrote no ready file within 20 s")
            time.sleep(0.01)


_counter = [0]


def unique(label):
    """An input no other test asks for, so that its first get computes it."""
    _counter[0] += 1
    return f"{label}/{os.getpid()}/{time.time_ns()}/{_counter[0]}".encode()


TRANSPORTS = ("tcp", "unix")


class ClientTest(unittest.TestCase):
    def client(self, d, transport="tcp", **kw):
        if transport == "unix":
            kw["socket_path"] = d.socket
        c = cc.Client(d.url, **kw)
        self.addCleanup(c.close)
        return c

    def wait_stats(self, c, ok, what):
        """Polls the daemon's stats until ok holds; fails after 10 s."""
        deadline = time.monotonic() + 10
        last = None
        while time.monotonic() < deadline:
            last = c.stats()
            if ok(last):
                return last
            time.sleep(0.005)
        self.fail(f"the daemon's stats never showed {what}; last: {json.dumps(last)}")

    def test_get_computes_then_hits(self):
        d = daemon("fast")
        data = unique("x")
        first = None
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                c = self.client(d, t)
                r = c.get(data)
                if first is None:
                    first = r.value
                    self.assertEqual(r.source, "computed")
                else:
                    self.assertEqual(r.source, "hit")
                self.assertEqual(len(r.value), 128)
                self.assertEqual(r.value, first)
                self.assertEqual(len(r.key), 32)
                again = c.get(data)
                self.assertEqual((again.source, again.value, again.key), ("hit", first, r.key))

    def test_get_empty_input(self):
        r = self.client(daemon("fast")).get(b"")
        self.assertEqual(len(r.value), 128)

    def test_connection_reused_and_renewed(self):
        d = daemon("fast")  # closes connections idle for 250 ms
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                c = self.client(d, t)
                data = unique("keepalive")
                for _ in range(20):
                    c.get(data)
                self.assertEqual(len(c._conns), 1, "a loop of calls in one thread uses one connection")
                sock = c._local.held.conn.sock
                for _ in range(2):
                    time.sleep(0.4)  # the daemon closes the idle connection
                    self.assertEqual(c.get(data).source, "hit")
                self.assertIsNot(c._local.held.conn.sock, sock, "the stale connection was replaced")
                self.assertEqual(len(c._conns), 1)
                # A thread's connection is closed when the thread ends.
                th = threading.Thread(target=c.get, args=(data,))
                th.start()
                th.join(30)
                self.assertEqual(len(c._conns), 1, "the ended thread's connection is gone")

    def test_concurrent_get_collapses(self):
        d = daemon("slow")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                c = self.client(d, t)
                before = c.stats()
                data = unique("one")
                n = 50
                results = [None] * n
                errors = []

                def get(i):
                    try:
                        results[i] = c.get(data)
                    except Exception as e:  # reported below
                        errors.append(e)

                threads = [threading.Thread(target=get, args=(i,)) for i in range(n)]
                for th in threads:
                    th.start()
                for th in threads:
                    th.join(30)
                self.assertEqual(errors, [])
                self.assertEqual({r.value for r in results}, {results[0].value})
                self.assertEqual(sum(r.source == "computed" for r in results), 1)
                after = c.stats()
                self.assertEqual(after["Computed"] - before["Computed"], 1)
                self.assertEqual(after["Requests"] - before["Requests"], n)

    def test_start_poll_wait(self):
        d = daemon("slow")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                c = self.client(d, t)
                data = unique("async")
                p = c.start(data)
                self.assertIsInstance(p, cc.Pending)
                self.assertTrue(p.started)
                # The computation takes 1 s: a second start joins it.
                p2 = c.start(data)
                self.assertEqual(p2, cc.Pending(p.key, False))
                self.assertIsNone(c.poll(p.key))
                r = c.wait(p, timeout=20)
                self.assertEqual((r.source, len(r.value), r.key), ("computed", 128, p.key))
                r2 = c.wait(p2, timeout=20)
                self.assertEqual((r2.source, r2.value), ("joined", r.value))
                polled = c.poll(p.key)
                self.assertEqual((polled.source, polled.value), ("hit", r.value))
                # Now cached: start answers with the result.
                r3 = c.start(data)
                self.assertIsInstance(r3, cc.Result)
                self.assertEqual((r3.source, r3.value, r3.key), ("hit", r.value, p.key))
                self.assertEqual(c.get(data).value, r.value)

    def test_wait_timeout(self):
        c = self.client(daemon("slow"))
        p = c.start(unique("wait"))
        with self.assertRaises(TimeoutError):
            c.wait(p, timeout=0.05)
        self.assertEqual(c.wait(p, timeout=20).source, "computed")

    def test_poll_unknown_key(self):
        c = self.client(daemon("fast"))
        with self.assertRaises(cc.NotFound) as cm:
            c.poll("0" * 32)
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))
        with self.assertRaises(cc.CoalesceError) as cm:
            c.poll("not-a-key")
        self.assertEqual((cm.exception.status, cm.exception.code), (400, "bad_request"))

    def test_get_many(self):
        d = daemon("fast")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                c = self.client(d, t, batch_size=2)  # 5 inputs: 3 requests
                cached = unique("cached")
                want = c.get(cached)
                a, b = unique("a"), unique("b")
                inputs = [a, cached, b, b"", a]
                results = c.get_many(inputs)
                self.assertEqual(len(results), len(inputs))
                for i, (data, r) in enumerate(zip(inputs, results)):
                    self.assertIsInstance(r, cc.Result, f"input {i}")
                    one = c.get(data)
                    self.assertEqual((one.source, one.value), ("hit", r.value), f"input {i}")
                self.assertEqual((results[1].source, results[1].value), ("hit", want.value))
                self.assertEqual(results[0].source, "computed")
                self.assertEqual(c.get_many([]), [])

    def test_get_many_errors(self):
        d = daemon("strict")
        c = self.client(d, token=d.token, batch_size=10)
        results = c.get_many([unique("a"), unique("b")])
        for r in results:
            self.assertIsInstance(r, cc.Timeout)
            self.assertEqual((r.status, r.code), (504, "timeout"))
        with self.assertRaises(cc.CoalesceError) as cm:
            c.get_many([b"1", b"2", b"3", b"4", b"5"])  # the daemon's --max-batch is 4
        self.assertEqual((cm.exception.status, cm.exception.code), (413, "batch_too_large"))

    def test_token(self):
        d = daemon("strict")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                for token in (None, "wrong"):
                    c = self.client(d, t, token=token)
                    calls = {
                        "get": lambda: c.get(b"x"),
                        "start": lambda: c.start(b"x"),
                        "poll": lambda: c.poll("0" * 32),
                        "get_many": lambda: c.get_many([b"x"]),
                        "stats": c.stats,
                    }
                    for name, call in calls.items():
                        with self.assertRaises(cc.Unauthorized, msg=f"{name} with token {token!r}") as cm:
                            call()
                        self.assertEqual(cm.exception.status, 401)
                self.assertIn("Requests", self.client(d, t, token=d.token).stats())

    def test_input_too_large(self):
        d = daemon("strict")
        c = self.client(d, token=d.token)
        # The daemon's --max-input is 64. It answers a body far over the
        # limit before reading it, and closes the connection: the 413 still
        # arrives.
        for size in (65, 8 << 20):
            with self.assertRaises(cc.InputTooLarge) as cm:
                c.get(b"x" * size)
            self.assertEqual((cm.exception.status, cm.exception.code), (413, "input_too_large"))
        with self.assertRaises(cc.InputTooLarge):
            c.start(b"x" * 65)
        self.assertIn("Requests", c.stats(), "the client goes on after a refused body")

    def test_timeout(self):
        d = daemon("strict")
        c = self.client(d, "unix", token=d.token)
        with self.assertRaises(cc.Timeout) as cm:
            c.get(unique("blocking"))
        self.assertEqual((cm.exception.status, cm.exception.code), (504, "timeout"))
        # A respond-async computation that fails: the poll finds its error.
        p = c.start(unique("async"))
        with self.assertRaises(cc.Timeout):
            c.wait(p, timeout=20)

    def test_wait_exceeded(self):
        c = self.client(daemon("glacial"))
        with self.assertRaises(cc.Timeout) as cm:
            c.get(unique("long"), wait=1)
        self.assertEqual((cm.exception.status, cm.exception.code), (504, "wait_exceeded"))
        with self.assertRaises(ValueError):
            c.get(b"x", wait=0.5)

    def test_overloaded(self):
        d = daemon("tight")  # one worker, a queue of one, one waiter
        c = self.client(d)
        # One waiter blocks; the next blocking request is refused.
        blocked = []
        th = threading.Thread(target=lambda: blocked.append(c.get(unique("blocked"))))
        th.start()
        try:
            self.wait_stats(c, lambda s: s["HTTPWaiters"] == 1 and s["InFlight"] == 1 and s["Queued"] == 0,
                            "one waiter, its computation running")
            with self.assertRaises(cc.Overloaded) as cm:
                c.get(unique("refused"))
            self.assertEqual((cm.exception.status, cm.exception.code, cm.exception.retry_after),
                             (503, "too_many_waiters", 1.0))
            # The worker is busy; one input fills the queue, the next is refused.
            self.assertIsInstance(c.start(unique("queued")), cc.Pending)
            with self.assertRaises(cc.Overloaded) as cm:
                c.start(unique("overflow"))
            self.assertEqual((cm.exception.code, cm.exception.retry_after), ("overloaded", 1.0))
        finally:
            th.join(30)
        self.assertEqual(blocked[0].source, "computed")

    def test_socket_timeout_frees_the_wait(self):
        d = daemon("slow")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                watcher = self.client(d, t)
                self.wait_stats(watcher, lambda s: s["HTTPWaiters"] == 0 and s["InFlight"] == 0, "an idle daemon")
                before = watcher.stats()
                c = self.client(d, t, timeout=0.3)
                c.stats()  # connect before the clock starts
                with self.assertRaises((TimeoutError, socket.timeout)):
                    c.get(unique("abandoned"))
                self.wait_stats(watcher, lambda s: s["HTTPWaiters"] == 0 and s["Waiters"] == 0
                                and s["Abandoned"] == before["Abandoned"] + 1,
                                "the wait freed and the computation abandoned")
                self.assertEqual(len(c._conns), 0, "the timed-out connection was dropped")

    def test_stats(self):
        c = self.client(daemon("fast"), "unix")
        c.get(unique("x"))
        s = c.stats()
        for k in ("Requests", "Computed", "Entries", "CacheBytes", "HTTPWaiters", "AsyncKept"):
            self.assertIn(k, s)
        self.assertGreater(s["Computed"], 0)

    def test_client_rejects(self):
        for kw in ({"base_url": "127.0.0.1:7700"}, {"base_url": "ftp://x:1"}, {"base_url": "http://x:1/?q"},
                   {"token": "abc\n"}, {"batch_size": 0}):
            with self.assertRaises(ValueError, msg=str(kw)):
                cc.Client(**kw)

    def test_no_daemon(self):
        c = cc.Client(socket_path=os.path.join(_tmp, "nothing.sock"))
        with self.assertRaises(OSError):
            c.get(b"x")


class UnitTest(unittest.TestCase):
    def test_errors_by_code(self):
        for status, code, cls in [
            (503, "overloaded", cc.Overloaded),
            (503, "too_many_waiters", cc.Overloaded),
            (504, "timeout", cc.Timeout),
            (504, "wait_exceeded", cc.Timeout),
            (413, "input_too_large", cc.InputTooLarge),
            (401, "unauthorized", cc.Unauthorized),
            (404, "not_found", cc.NotFound),
            (503, "shutting_down", cc.ShuttingDown),
            (413, "batch_too_large", cc.CoalesceError),
            (502, "executor_failed", cc.CoalesceError),
        ]:
            body = json.dumps({"error": {"code": code, "message": "m"}}).encode()
            e = cc._response_error(status, {"Retry-After": "2"}, body)
            self.assertIs(type(e), cls, code)
            self.assertEqual((e.status, e.code, e.message, e.retry_after), (status, code, "m", 2.0))
        e = cc._response_error(401, {}, b"<html>no</html>")
        self.assertIs(type(e), cc.Unauthorized)
        self.assertEqual((e.code, e.message, e.retry_after), ("", "<html>no</html>", None))

    def test_retry_after(self):
        self.assertEqual(cc._retry_after("3"), 3.0)
        self.assertEqual(cc._retry_after("99999"), 60.0)
        self.assertIsNone(cc._retry_after(None))
        self.assertIsNone(cc._retry_after("soon"))
        self.assertEqual(cc._retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), 0.0)

    def test_decode_batch(self):
        import struct

        def rec(outcome, payload):
            return struct.pack(">BI", outcome, len(payload)) + payload

        body = rec(0, b"h") + rec(1, b"") + rec(2, b"ccc") + rec(255, b'{"code":"timeout","message":"slow"}')
        out = cc._decode_batch(body, 4)
        self.assertEqual(out[:3], [cc.Result(b"h", "hit"), cc.Result(b"", "joined"), cc.Result(b"ccc", "computed")])
        self.assertIsInstance(out[3], cc.Timeout)
        self.assertEqual((out[3].status, out[3].message), (504, "slow"))
        for bad in (body[:-1], body + b"\0", rec(7, b"x") + body[6:], b"\0\xff\xff\xff\xffx"):
            with self.assertRaises(ValueError):
                cc._decode_batch(bad, 4)


if __name__ == "__main__":
    unittest.main()
