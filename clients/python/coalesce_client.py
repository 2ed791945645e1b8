"""Client of the coalesce daemon (`coalesce serve`, docs/SERVER.md).

One file, standard library only, Python 3.9+. Copy it next to your agent:

    from coalesce_client import Client, Overloaded

    c = Client("http://127.0.0.1:7700")          # or Client(socket_path="/run/coalesce.sock")
    r = c.get(b"what is 6 times 7?")             # blocks; r.value, r.source, r.key
    p = c.start(b"a long question")              # Result if cached, else Pending(key, started, ...)
    r = c.wait(p, timeout=30)                    # polls GET /v1/results/KEY with a back-off
    rs = c.get_many([b"a", b"b"])                # Result or CoalesceError per input, in order
    r = c.get(b"x", namespace="tenant-a", version="v2")  # or Client(namespace=..., version=...)
    n = c.delete_namespace("tenant-a")           # results deleted from the daemon's disk

The one thing to know: a Client keeps one keep-alive connection per
thread, so calling it in a loop costs no new connection per request, and
one Client may be shared by threads. A call that fails raises a
CoalesceError subclass named after the daemon's error code
(Overloaded, Timeout, InputTooLarge, BadNamespace, Unauthorized, NotFound,
ShuttingDown); network failures and the client's own socket timeout raise
the usual OSError subclasses (ConnectionError, TimeoutError).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import socket
import struct
import threading
import time
import urllib.parse
import weakref
from typing import List, NamedTuple, Optional, Sequence, Union

__all__ = [
    "Client",
    "Result",
    "Pending",
    "CoalesceError",
    "Overloaded",
    "Timeout",
    "InputTooLarge",
    "BadNamespace",
    "Unauthorized",
    "NotFound",
    "ShuttingDown",
]


class Result(NamedTuple):
    """A result: its bytes, how the daemon served it ("hit" from its
    memory, "loaded" from a tier behind it: its disk, or another daemon
    through Redis; "joined" or "computed"), and its key (None for the items
    of a batch)."""

    value: bytes
    source: str
    key: Optional[str] = None


class Pending(NamedTuple):
    """A result being computed: its key, to poll, whether this request
    started the computation rather than joining one in flight, and the
    namespace and version it was asked in ("" for the default namespace and
    the daemon's --version), which poll and wait use."""

    key: str
    started: bool
    namespace: str = ""
    version: str = ""


class CoalesceError(Exception):
    """An error answered by the daemon: the HTTP status, the stable code
    (docs/SERVER.md lists them), the message, which says what to do, and
    the Retry-After delay in seconds (None if the daemon sent none)."""

    def __init__(self, status: int, code: str, message: str, retry_after: Optional[float] = None):
        super().__init__(f"{code or 'HTTP ' + str(status)}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class Overloaded(CoalesceError):
    """503 overloaded or too_many_waiters: retry after retry_after seconds."""


class Timeout(CoalesceError):
    """504 timeout (the computation ran past the daemon's task timeout) or
    wait_exceeded (no result within the request's wait)."""


class InputTooLarge(CoalesceError):
    """413 input_too_large: the input is over the daemon's --max-input."""


class BadNamespace(CoalesceError):
    """400 bad_namespace: the namespace or version is not up to 128 bytes
    of printable ASCII without spaces, or the daemon already serves the
    most namespace and version pairs it may (4096)."""


class Unauthorized(CoalesceError):
    """401: the daemon wants a bearer token (token=...) and got none, or a
    wrong one."""


class NotFound(CoalesceError):
    """404: no result for the key is cached or being computed; send the
    input again."""


class ShuttingDown(CoalesceError):
    """503 shutting_down: the daemon is stopping; retry after it restarts."""


_ERRORS_BY_CODE = {
    "overloaded": Overloaded,
    "too_many_waiters": Overloaded,
    "timeout": Timeout,
    "wait_exceeded": Timeout,
    "input_too_large": InputTooLarge,
    "bad_namespace": BadNamespace,
    "unauthorized": Unauthorized,
    "not_found": NotFound,
    "shutting_down": ShuttingDown,
}

# The status of each code, for the items of a batch, whose errors carry a
# code but no status of their own.
_STATUS_BY_CODE = {
    "bad_request": 400,
    "bad_namespace": 400,
    "unauthorized": 401,
    "not_found": 404,
    "input_too_large": 413,
    "batch_too_large": 413,
    "timeout": 504,
    "wait_exceeded": 504,
    "overloaded": 503,
    "too_many_waiters": 503,
    "shutting_down": 503,
    "cancelled": 503,
    "tier_failed": 500,
}

# Without the daemon's JSON (a proxy in between, say), the status decides.
_ERRORS_BY_STATUS = {401: Unauthorized, 404: NotFound, 413: InputTooLarge}

_MAX_RETRY_AFTER = 60.0  # seconds: a Retry-After is honoured up to this
_FIRST_POLL = 0.01  # seconds: wait's first interval, doubled after each poll
_DEFAULT_POLL_CAP = 1.0  # seconds: wait's longest interval without Retry-After

_BATCH_TYPE = "application/vnd.coalesce.batch"
_SOURCES = {0: "hit", 1: "joined", 2: "computed", 3: "loaded"}
_OUTCOME_ERROR = 255


def _make_error(status: int, code: str, message: str, retry_after: Optional[float] = None) -> CoalesceError:
    cls = _ERRORS_BY_CODE.get(code) if code else _ERRORS_BY_STATUS.get(status)
    return (cls or CoalesceError)(status, code, message, retry_after)


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Parses Retry-After: delta-seconds or an HTTP date; None if absent or
    malformed."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return min(max(when.timestamp() - time.time(), 0.0), _MAX_RETRY_AFTER)


def _response_error(status: int, headers, body: bytes) -> CoalesceError:
    retry = _retry_after(headers.get("Retry-After"))
    try:
        err = json.loads(body)["error"]
        code, message = str(err["code"]), str(err.get("message", ""))
    except (ValueError, KeyError, TypeError):
        code, message = "", body[:1000].decode("utf-8", "replace").strip() or http.client.responses.get(status, "")
    return _make_error(status, code, message, retry)


class _TCPConnection(http.client.HTTPConnection):
    def connect(self):
        super().connect()
        # http.client sends the headers and the body in two writes: without
        # TCP_NODELAY, Nagle's algorithm holds the body back until the
        # daemon's delayed ACK, some 40 ms per request.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _Held:
    """A thread's connection, closed when the thread ends and drops it."""

    __slots__ = ("conn", "__weakref__")

    def __init__(self, conn: http.client.HTTPConnection):
        self.conn = conn

    def __del__(self):
        self.conn.close()


class Client:
    """A client of one daemon, at base_url over TCP or at socket_path over
    its Unix socket (then base_url's host is ignored). token is the bearer
    token of a daemon started with --token-file. timeout bounds each socket
    operation, in seconds (None: no bound; a blocking get then waits as
    long as the computation takes). batch_size bounds the inputs get_many
    sends per request (the daemon's --max-batch, 1024 by default).
    namespace and version name the namespace and the version of the
    computation that get, start, poll, wait and get_many ask in unless a
    call names others (the Coalesce-Namespace and Coalesce-Version
    headers): a result of one is never served for another. None or ""
    means the default namespace, and the daemon's --version.

    Safe for use by many threads: each has its own connection, kept alive
    between calls. close() closes them all; a Client is also a context
    manager.
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:7700",
        token: Optional[str] = None,
        socket_path: Optional[str] = None,
        timeout: Optional[float] = None,
        batch_size: int = 1024,
        namespace: Optional[str] = None,
        version: Optional[str] = None,
    ):
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"base_url {base_url!r}: want http://HOST:PORT, such as http://127.0.0.1:7700")
        if u.query or u.fragment:
            raise ValueError(f"base_url {base_url!r}: it must have no query or fragment")
        if token is not None and ("\r" in token or "\n" in token):
            raise ValueError("token contains a line break; strip the token file's trailing newline")
        if batch_size < 1:
            raise ValueError(f"batch_size {batch_size}: it must be at least 1")
        self._namespace, self._version = self._scope(namespace, version, "", "")
        self._scheme = u.scheme
        self._host = u.hostname
        self._port = u.port
        self._prefix = u.path.rstrip("/")
        self._socket_path = socket_path
        self._timeout = timeout
        self._batch_size = batch_size
        self._headers = {}
        if token:
            self._headers["Authorization"] = "Bearer " + token
        self._local = threading.local()
        self._lock = threading.Lock()
        # The connections of live threads, to close them all; a thread's
        # connection is closed when the thread ends and its _Held goes.
        self._conns = weakref.WeakSet()

    # -- connections

    def _new_connection(self) -> http.client.HTTPConnection:
        if self._socket_path:
            return _UnixConnection(self._socket_path, self._timeout)
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout)
        return _TCPConnection(self._host, self._port, timeout=self._timeout)

    def _connection(self):
        """Returns this thread's connection and whether it served a request
        before."""
        held = getattr(self._local, "held", None)
        if held is not None:
            return held.conn, True
        held = _Held(self._new_connection())
        self._local.held = held
        with self._lock:
            self._conns.add(held)
        return held.conn, False

    def _drop(self, conn) -> None:
        conn.close()
        held = getattr(self._local, "held", None)
        if held is not None and held.conn is conn:
            self._local.held = None
            with self._lock:
                self._conns.discard(held)

    def close(self) -> None:
        """Closes every thread's connection. Call it when no call is in
        flight; the Client stays usable and reconnects on its next call."""
        with self._lock:
            held, self._conns = list(self._conns), weakref.WeakSet()
        for h in held:
            h.conn.close()
        self._local = threading.local()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, method: str, path: str, body: Optional[bytes] = None, headers: Optional[dict] = None):
        """Sends a request and returns (status, headers, body). A request
        sent on a kept-alive connection that the daemon had closed is sent
        once more on a new one: every call of the API is idempotent."""
        hdrs = dict(self._headers)
        if headers:
            hdrs.update(headers)
        for attempt in (0, 1):
            conn, reused = self._connection()
            try:
                try:
                    conn.request(method, self._prefix + path, body=body, headers=hdrs)
                except ConnectionError as send_error:
                    # The daemon may have answered before reading the whole
                    # body (413 for an input over its limit) and closed the
                    # connection: its answer can still be read.
                    try:
                        resp = conn.getresponse()
                        data = resp.read()
                    except (OSError, http.client.HTTPException):
                        raise send_error from None
                    self._drop(conn)
                    return resp.status, resp.headers, data
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.BadStatusLine):
                self._drop(conn)
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                # A timeout or an interrupt leaves the connection in an
                # unknown state; closing it also tells the daemon to free
                # the wait.
                self._drop(conn)
                raise
            if resp.will_close:
                self._drop(conn)
            return resp.status, resp.headers, data
        raise AssertionError("unreachable")

    @staticmethod
    def _scope(namespace: Optional[str], version: Optional[str], default_ns: str, default_version: str):
        """Returns the namespace and version a call asks in: the ones it
        names, else the defaults. Only what cannot travel in a header is
        refused here; the daemon applies its own rules (printable ASCII
        without spaces, 128 bytes at most) and answers BadNamespace."""
        ns = default_ns if namespace is None else namespace
        ver = default_version if version is None else version
        for what, v in (("namespace", ns), ("version", ver)):
            if not isinstance(v, str):
                raise TypeError(f"{what} {v!r}: want a str")
            bad = [i for i, ch in enumerate(v) if ch < " " or ch == "\x7f"]
            if bad:
                raise ValueError(f"{what} {v!r} has a control character at {bad[0]}; the daemon allows printable ASCII without spaces")
        return ns, ver

    @staticmethod
    def _scope_headers(headers: dict, ns: str, ver: str) -> None:
        if ns:
            headers["Coalesce-Namespace"] = ns
        if ver:
            headers["Coalesce-Version"] = ver

    @staticmethod
    def _wait_header(headers: dict, wait: Optional[float]) -> None:
        if wait is not None:
            if wait < 1:
                raise ValueError(f"wait {wait}: the daemon counts whole seconds, at least 1")
            headers["Prefer"] = f"wait={int(wait)}"

    # -- the API

    def get(self, input: bytes, wait: Optional[float] = None, namespace: Optional[str] = None,
            version: Optional[str] = None) -> Result:
        """Returns input's result, computed once however many clients ask
        at the same time; blocks until it is ready. wait, in whole seconds,
        bounds the wait on the daemon's side (Prefer: wait): beyond it,
        Timeout with code wait_exceeded. namespace and version, if given,
        replace the Client's for this call."""
        headers = {"Content-Type": "application/octet-stream"}
        self._wait_header(headers, wait)
        self._scope_headers(headers, *self._scope(namespace, version, self._namespace, self._version))
        status, h, data = self._request("POST", "/v1/compute", bytes(input), headers)
        if status != 200:
            raise _response_error(status, h, data)
        return Result(data, h.get("Coalesce-Source", ""), h.get("Coalesce-Key"))

    def start(self, input: bytes, namespace: Optional[str] = None,
              version: Optional[str] = None) -> Union[Result, Pending]:
        """Asks for input's result without waiting (Prefer: respond-async):
        the Result if cached, else a Pending whose key poll and wait take,
        in the namespace and version asked in. The daemon keeps the
        computation alive for pollers for a while (5 minutes by default)
        whether or not anyone polls. namespace and version are as for get."""
        ns, ver = self._scope(namespace, version, self._namespace, self._version)
        headers = {"Content-Type": "application/octet-stream", "Prefer": "respond-async"}
        self._scope_headers(headers, ns, ver)
        status, h, data = self._request("POST", "/v1/compute", bytes(input), headers)
        if status == 200:
            return Result(data, h.get("Coalesce-Source", ""), h.get("Coalesce-Key"))
        if status == 202:
            body = json.loads(data)
            return Pending(str(body["key"]), bool(body.get("started", False)), ns, ver)
        raise _response_error(status, h, data)

    def poll(self, key: Union[str, Pending], namespace: Optional[str] = None,
             version: Optional[str] = None) -> Optional[Result]:
        """Returns the result for key (a key string or a Pending) if it is
        ready, None while it is being computed; raises NotFound if it is
        neither cached nor being computed, or the computation's error.
        Given a Pending, the result's source is "computed" if it started
        the computation (even if the daemon found it on its disk: its
        answer does not tell), else "joined"; given a key, "hit", or
        "loaded" if the daemon found it on its disk or in Redis (a key kept
        across the daemon's restart still finds its result).

        The key is looked up in one namespace and version: the Pending's,
        or for a key string the Client's, unless namespace and version name
        others."""
        result, _ = self._poll(key, namespace, version)
        return result

    def _poll(self, key: Union[str, Pending], namespace: Optional[str], version: Optional[str]):
        if isinstance(key, Pending):
            k, scope = key.key, self._scope(namespace, version, key.namespace, key.version)
        else:
            k, scope = str(key), self._scope(namespace, version, self._namespace, self._version)
        headers = {}
        self._scope_headers(headers, *scope)
        status, h, data = self._request("GET", "/v1/results/" + urllib.parse.quote(k, safe=""), headers=headers)
        if status == 202:
            return None, _retry_after(h.get("Retry-After"))
        if status != 200:
            raise _response_error(status, h, data)
        source = h.get("Coalesce-Source", "hit")
        if isinstance(key, Pending):
            source = "computed" if key.started else "joined"
        return Result(data, source, k), None

    def wait(self, key: Union[str, Pending], timeout: Optional[float] = None, namespace: Optional[str] = None,
             version: Optional[str] = None) -> Result:
        """Polls until the result for key (a key string or a Pending) is
        ready and returns it, or raises the computation's error. The
        interval starts at 10 ms and doubles up to the daemon's Retry-After
        (1 s). With timeout, in seconds, raises TimeoutError once it has
        passed; the computation goes on on the daemon. namespace and
        version are as for poll."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _FIRST_POLL
        while True:
            result, retry = self._poll(key, namespace, version)
            if result is not None:
                return result
            cap = retry if retry else _DEFAULT_POLL_CAP
            pause = min(delay, cap)
            delay = min(delay * 2, cap)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    k = key.key if isinstance(key, Pending) else key
                    raise TimeoutError(f"no result for {k} within {timeout} s; wait again later, it is still being computed")
                pause = min(pause, left)
            time.sleep(pause)

    def get_many(self, inputs: Sequence[bytes], wait: Optional[float] = None, namespace: Optional[str] = None,
                 version: Optional[str] = None) -> List[Union[Result, CoalesceError]]:
        """Returns, for each input in order, its Result or the
        CoalesceError it failed with (returned, not raised), in one request
        per batch_size inputs (the binary batch framing). An error of a whole request (a bad token, a
        batch over the daemon's limits, a bad namespace) is raised. wait,
        namespace and version are as for get."""
        scope = self._scope(namespace, version, self._namespace, self._version)
        out: List[Union[Result, CoalesceError]] = []
        for lo in range(0, len(inputs), self._batch_size):
            out.extend(self._batch(inputs[lo : lo + self._batch_size], wait, scope))
        return out

    def _batch(self, inputs: Sequence[bytes], wait: Optional[float], scope) -> List[Union[Result, CoalesceError]]:
        parts = []
        for i in inputs:
            b = bytes(i)
            parts.append(struct.pack(">I", len(b)))
            parts.append(b)
        headers = {"Content-Type": _BATCH_TYPE}
        self._wait_header(headers, wait)
        self._scope_headers(headers, *scope)
        status, h, data = self._request("POST", "/v1/compute/batch", b"".join(parts), headers)
        if status != 200:
            raise _response_error(status, h, data)
        return _decode_batch(data, len(inputs))

    def stats(self) -> dict:
        """Returns the daemon's counters (GET /v1/stats): Requests, Hits,
        Joined, Computed, Errors, HTTPWaiters, ... as the daemon names
        them; durations are in nanoseconds."""
        status, h, data = self._request("GET", "/v1/stats")
        if status != 200:
            raise _response_error(status, h, data)
        return json.loads(data)

    def delete_namespace(self, namespace: str, version: Optional[str] = None) -> int:
        """Deletes the results of namespace ("" for the default one), of
        every version, or of version only (DELETE /v1/namespaces/NAME), and
        returns how many the daemon deleted from its disk and from Redis (0
        without either). The daemon stops serving them from its memory at
        once. It names the namespace in its arguments, whatever the
        Client's own.

        A daemon run with --redis also deletes them from Redis and tells
        the other daemons to forget theirs (a daemon disconnected from
        Redis at that moment keeps its copies until evicted); a
        computation running meanwhile still delivers and stores its
        result. CoalesceError with code tier_failed (500): the memory
        forgot them but the disk or Redis failed to delete them; call
        again."""
        if namespace == "_":
            raise ValueError('namespace "_": the daemon reads "_" as the default namespace; '
                             'a namespace named "_" cannot be deleted over HTTP')
        ns, ver = self._scope(namespace, version, "", "")
        # "." and ".." are escaped too, or the daemon's router would clean
        # them away; "_" names the default namespace.
        path = "/v1/namespaces/" + (urllib.parse.quote(ns, safe="").replace(".", "%2E") if ns else "_")
        if ver:
            path += "?version=" + urllib.parse.quote(ver, safe="")
        status, h, data = self._request("DELETE", path)
        if status != 200:
            raise _response_error(status, h, data)
        return int(json.loads(data)["deleted"])


def _decode_batch(data: bytes, n: int) -> List[Union[Result, CoalesceError]]:
    """Decodes a binary batch response of n records: per input, a 1-byte
    outcome (0 hit, 1 joined, 2 computed, 3 loaded, 255 error), a 4-byte big-endian
    length and that many bytes, the result or the error's JSON."""
    out: List[Union[Result, CoalesceError]] = []
    off = 0
    for i in range(n):
        if off + 5 > len(data):
            raise ValueError(f"malformed batch response: record {i} of {n} is missing")
        outcome, size = struct.unpack_from(">BI", data, off)
        off += 5
        if off + size > len(data):
            raise ValueError(f"malformed batch response: record {i} declares {size} bytes, {len(data) - off} are left")
        payload = data[off : off + size]
        off += size
        if outcome in _SOURCES:
            out.append(Result(payload, _SOURCES[outcome]))
        elif outcome == _OUTCOME_ERROR:
            try:
                err = json.loads(payload)
                code, message = str(err["code"]), str(err.get("message", ""))
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"malformed batch response: record {i} is an error but not its JSON") from None
            out.append(_make_error(_STATUS_BY_CODE.get(code, 502), code, message))
        else:
            raise ValueError(f"malformed batch response: record {i} has outcome {outcome}")
    if off != len(data):
        raise ValueError(f"malformed batch response: {len(data) - off} bytes after the {n} records")
    return out
