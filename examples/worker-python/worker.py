#!/usr/bin/env python3
"""A coalesce worker in Python (3.9+, standard library only).

The daemon starts this program once and keeps it running: it reads request
frames on stdin and writes one answer frame per request on stdout, as
docs/WORKER-PROTOCOL.md describes. Run it with

    coalesce serve --exec "python3 examples/worker-python/worker.py"

To plug in your own function, replace compute() below: it gets the input
bytes and returns the result bytes, and must be deterministic (the daemon
caches its results). An exception becomes an error frame for that input and
the worker keeps serving. Load models or other costly state at module level
or in main(), before the hello frame: that cost is paid once per process.
Log with print(..., file=sys.stderr) or the logging module: stdout carries
only frames (main() redirects sys.stdout to stderr to protect them).
"""

import hashlib
import os
import struct
import sys

# Every frame: payload length, frame type, request id (big-endian), payload.
HEADER = struct.Struct(">IBQ")
HELLO, REQUEST, RESULT, ERROR, CANCEL = 1, 2, 3, 4, 5
PROTOCOL_VERSION = 1


def compute(data: bytes) -> bytes:
    """Your function: the input bytes in, the result bytes out."""
    if not data:
        raise ValueError("empty input: send at least one byte")
    return hashlib.sha256(data).hexdigest().encode()


def read_exactly(stream, n):
    """Reads n bytes, or returns None if the stream ends first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def main():
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print() must not corrupt the frames
    max_frame = int(os.environ.get("COALESCE_MAX_FRAME_SIZE", 4 << 20))

    def send(frame_type, request_id, payload=b""):
        stdout.write(HEADER.pack(len(payload), frame_type, request_id) + payload)
        stdout.flush()

    # Protocol version 1, one request at a time: this loop is sequential,
    # so a cancel frame always arrives after its request was answered.
    send(HELLO, 0, struct.pack(">II", PROTOCOL_VERSION, 1))
    while True:
        header = read_exactly(stdin, HEADER.size)
        if header is None:
            return  # stdin closed: the daemon is gone or shutting down
        length, frame_type, request_id = HEADER.unpack(header)
        if length > max_frame:
            sys.exit(f"frame of {length} bytes declared, over {max_frame}")
        payload = read_exactly(stdin, length)
        if payload is None:
            return
        if frame_type != REQUEST:
            continue  # a cancel for a request already answered
        try:
            result = compute(payload)
        except Exception as e:  # the function failed on this input
            send(ERROR, request_id, f"{type(e).__name__}: {e}".encode())
            continue
        if len(result) > max_frame:
            send(ERROR, request_id, f"result of {len(result)} bytes, over {max_frame}".encode())
            continue
        send(RESULT, request_id, result)


if __name__ == "__main__":
    main()
