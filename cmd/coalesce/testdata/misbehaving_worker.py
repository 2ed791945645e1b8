#!/usr/bin/env python3
"""A worker for the daemon's tests (docs/WORKER-PROTOCOL.md) that
misbehaves on demand: the input "crash" exits, "hang" never answers,
"garbage" writes bytes that are no frame; any other input gets its sha256
in hex."""

import hashlib
import os
import struct
import sys
import time

HEADER = struct.Struct(">IBQ")
HELLO, REQUEST, RESULT = 1, 2, 3


def read_exactly(stream, n):
    buf = b""
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def main():
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer

    def send(frame_type, request_id, payload=b""):
        stdout.write(HEADER.pack(len(payload), frame_type, request_id) + payload)
        stdout.flush()

    send(HELLO, 0, struct.pack(">II", 1, 1))
    while True:
        header = read_exactly(stdin, HEADER.size)
        if header is None:
            return
        length, frame_type, request_id = HEADER.unpack(header)
        payload = read_exactly(stdin, length)
        if payload is None:
            return
        if frame_type != REQUEST:
            continue
        if payload == b"crash":
            print("crashing on purpose", file=sys.stderr, flush=True)
            os._exit(3)
        if payload == b"hang":
            time.sleep(3600)
        if payload == b"garbage":
            stdout.write(b"this is not a frame\n" * 4)
            stdout.flush()
            continue
        send(RESULT, request_id, hashlib.sha256(payload).hexdigest().encode())


if __name__ == "__main__":
    main()
