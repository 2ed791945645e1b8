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
    # The defaults, for the tests that delete namespaces and restart the
    # daemon on its disk tier without disturbing the others.
    "durable": [],
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
        if os.path.exists(ready):
            os.remove(ready)  # a restarted daemon's previous one
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
        # Appended to, so that a restarted daemon's log follows its
        # predecessor's.
        log = open(os.path.join(_tmp, name + ".log"), "a+b")
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


def restart(name):
    """Stops the daemon named name with SIGTERM, as a service manager
    would, and starts it again on the same flags and disk tier (--data-dir).
    The new one listens on another port: use the returned Daemon."""
    with _lock:
        d = _daemons.pop(name, None)
    if d is not None:
        d.proc.send_signal(signal.SIGTERM)
        try:
            code = d.proc.wait(10)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()
            raise RuntimeError(f"daemon {name} did not stop on SIGTERM within 10 s")
        finally:
            d.log.close()
        if code != 0:
            raise RuntimeError(f"daemon {name} exited with {code} on SIGTERM")
    return daemon(name)


_counter = [0]


def unique(label):
    """An input no other test asks for, so that its first get computes it."""
    _counter[0] += 1
    return f"{label}/{os.getpid()}/{time.time_ns()}/{_counter[0]}".encode()


def unique_name(label):
    """A namespace no other test uses."""
    _counter[0] += 1
    return f"{label}-{os.getpid()}-{time.time_ns()}-{_counter[0]}"


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

    def test_namespaces(self):
        """A result is served only in the namespace and version it was
        computed in: by input (get, start, get_many) and by key (poll)."""
        d = daemon("fast")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                tenant = unique_name("tenant")
                c = self.client(d, t)
                a = self.client(d, t, namespace=tenant)
                data = unique("x")
                scopes = [  # (client, per-call namespace, per-call version)
                    ("default", c, None, None),
                    ("tenant", a, None, None),
                    ("tenant v2", a, None, "v2"),
                    ("tenant b", c, tenant + "-b", None),
                    ("default v2", a, "", "v2"),
                ]
                first = {}
                for name, cl, ns, ver in scopes:
                    r = cl.get(data, namespace=ns, version=ver)
                    self.assertEqual(r.source, "computed", f"{name}: not another namespace's or version's result")
                    first[name] = r
                for name, cl, ns, ver in scopes:
                    r = cl.get(data, namespace=ns, version=ver)
                    self.assertEqual((r.source, r.key), ("hit", first[name].key), name)
                keys = {r.key for r in first.values()}
                self.assertEqual(len(keys), len(scopes), "one key per namespace and version")
                # The demo executor's result depends on the input only.
                self.assertEqual({r.value for r in first.values()}, {first["default"].value})

                # By key: found in its own namespace and version only.
                ka = first["tenant"].key
                self.assertEqual(a.poll(ka).source, "hit")
                self.assertEqual(c.poll(ka, namespace=tenant).source, "hit")
                for cl, ns, ver in ((c, None, None), (a, None, "v2"), (a, "", None), (c, tenant + "-b", None)):
                    with self.assertRaises(cc.NotFound, msg=f"{ns!r} {ver!r}"):
                        cl.poll(ka, namespace=ns, version=ver)

                # start, then poll and wait in the Pending's namespace and
                # version, whatever the Client's.
                later = unique("async")
                p = c.start(later, namespace=tenant, version="v2")
                self.assertEqual((p.namespace, p.version), (tenant, "v2"))
                self.assertEqual(c.wait(p, timeout=20).source, "computed")
                self.assertEqual(c.poll(p).source, "computed")
                self.assertEqual(a.get(later, version="v2").source, "hit")
                self.assertEqual(a.get(later).source, "computed", "another version")
                with self.assertRaises(cc.NotFound):
                    c.poll(p.key)

                # A batch: each namespace and version has its own results.
                fresh = unique("fresh")
                rs = a.get_many([data, fresh], namespace=tenant + "-b")
                self.assertEqual([r.source for r in rs], ["hit", "computed"])
                rs = a.get_many([fresh])
                self.assertEqual([r.source for r in rs], ["computed"])
                self.assertEqual(a.get(fresh).source, "hit")

    def test_bad_namespace(self):
        """A namespace or version the daemon refuses is a 400 bad_namespace
        (BadNamespace) for every call; what cannot be sent in a header is
        refused before any request."""
        d = daemon("fast")
        good = self.client(d)
        key = good.get(b"x").key
        for ns, ver in (("has space", None), ("caf\u00e9", None), ("n" * 129, None), ("ok", "v 2"), (None, "v" * 129)):
            with self.subTest(namespace=ns, version=ver):
                c = self.client(d, namespace=ns, version=ver)
                calls = {
                    "get": lambda: c.get(b"x"),
                    "start": lambda: c.start(b"x"),
                    "poll": lambda: c.poll(key),
                    "get_many": lambda: c.get_many([b"x", b"y"]),
                    "per-call get": lambda: good.get(b"x", namespace=ns, version=ver),
                    "delete_namespace": lambda: good.delete_namespace(ns or "", ver),
                }
                for name, call in calls.items():
                    with self.assertRaises(cc.BadNamespace, msg=name) as cm:
                        call()
                    self.assertEqual((cm.exception.status, cm.exception.code), (400, "bad_namespace"), name)
        # The daemon serves a namespace at its exact limit.
        self.assertEqual(len(good.get(b"x", namespace="n" * 128).value), 128)
        # Refused by the client, with no request.
        for kw in ({"namespace": "a\n"}, {"version": "v\x00"}):
            with self.assertRaises(ValueError, msg=str(kw)):
                cc.Client(d.url, **kw)
            with self.assertRaises(ValueError, msg=str(kw)):
                good.get(b"x", **kw)
        with self.assertRaises(ValueError):
            good.delete_namespace("_")

    def test_delete_namespace(self):
        """One version, every version, the default namespace: the results
        deleted are computed again, the others are not."""
        d = daemon("durable")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                c = self.client(d, t)
                # Dots, a slash and a percent sign travel escaped in the path.
                name = unique_name("del/../%x")
                other = name + "-other"
                data = unique("x")

                def source(ns, ver=None):
                    return c.get(data, namespace=ns, version=ver).source

                for ns, ver in ((name, "v1"), (name, "v2"), (other, "v1")):
                    self.assertEqual(source(ns, ver), "computed")
                # One version: forgotten in memory, its one result deleted
                # from the disk (saved there before the get was answered).
                self.assertEqual(c.delete_namespace(name, "v2"), 1)
                self.assertEqual(source(name, "v2"), "computed")
                self.assertEqual(source(name, "v1"), "hit")
                # Every version: v1's result and v2's new one.
                self.assertEqual(c.delete_namespace(name), 2)
                self.assertEqual(source(name, "v1"), "computed")
                self.assertEqual(source(name, "v2"), "computed")
                self.assertEqual(source(other, "v1"), "hit")
                self.assertEqual(c.delete_namespace(name + "-unused"), 0)
                # "" is the default namespace.
                self.assertEqual(source(None), "computed")
                self.assertGreaterEqual(c.delete_namespace(""), 1)
                self.assertEqual(source(None), "computed")
                self.assertEqual(source(other, "v1"), "hit")

    def test_loaded_after_restart(self):
        """A daemon restarted on its disk tier answers what it computed
        before as "loaded", then from memory as a hit, in the right
        namespace and version only."""
        name = unique_name("restart")
        c = self.client(daemon("durable"), namespace=name)
        kept, gone = unique("kept"), unique("deleted")
        first = c.get(kept)
        self.assertEqual(first.source, "computed")
        c.get(gone)
        c.get(gone, version="v2")
        self.assertEqual(c.delete_namespace(name, "v2"), 1)

        d = restart("durable")
        for t in TRANSPORTS:
            with self.subTest(transport=t):
                c = self.client(d, t, namespace=name)
                before = c.stats()["Loaded"]
                r = c.get(kept)
                want = "loaded" if t == "tcp" else "hit"  # the unix subtest follows the tcp one
                self.assertEqual((r.source, r.value, r.key), (want, first.value, first.key))
                self.assertEqual(c.get(kept).source, "hit")
                self.assertEqual(c.stats()["Loaded"] - before, 1 if t == "tcp" else 0)
        c = self.client(d, namespace=name)
        self.assertEqual(c.get(gone).source, "loaded")
        self.assertEqual(c.get(gone, version="v2").source, "computed", "the deleted version")
        self.assertEqual(c.get(kept, namespace=name + "-other").source, "computed", "another namespace")

    def test_client_rejects(self):
        for kw in ({"base_url": "127.0.0.1:7700"}, {"base_url": "ftp://x:1"}, {"base_url": "http://x:1/?q"},
                   {"token": "abc\n"}, {"batch_size": 0}, {"namespace": "a\r"}):
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
            (400, "bad_namespace", cc.BadNamespace),
            (500, "tier_failed", cc.CoalesceError),
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
