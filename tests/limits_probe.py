#!/usr/bin/env python3
"""Probe a `scoredb serve` binary with the hostile loads of issue 7 (items 4
and 6) and print what happened; docs/limits.md quotes its output. Not part
of `make test` (it takes about a minute and 2 GiB of loopback traffic);
tests/test_server_limits.c asserts the same behaviours at small scale.

    python3 tests/limits_probe.py build/scoredb [slow|flood|bodies|ingest|all] [old]

Every server binds 127.0.0.1 on an ephemeral port and is killed at the end.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time


OLD = False  # a binary from before docs/limits.md: no --max-per-ip


def start(binary, *extra):
    if OLD:
        extra = [a for i, a in enumerate(extra)
                 if a != "--max-per-ip" and (i == 0 or extra[i - 1] != "--max-per-ip")]
    db = tempfile.mkdtemp(prefix="sdb_probe_")
    p = subprocess.Popen([binary, "serve", "--db", db, "--listen", "127.0.0.1:0",
                          "--aggregation-delay", "0", *extra],
                         stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    m = re.search(r"port (\d+)", line)
    if not m:
        p.kill()
        sys.exit("server did not start: " + line)
    return p, int(m.group(1))


def rss_mib(pid, key="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return -1


def get(port, path, timeout=5.0):
    """Status and seconds of one GET on a new connection (0: no answer)."""
    t0 = time.time()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        m = re.match(rb"HTTP/1\.1 (\d+)", data)
        return (int(m.group(1)) if m else 0), time.time() - t0
    except OSError:
        return 0, time.time() - t0


def still_open(socks):
    n = 0
    for s in socks:
        try:
            s.setblocking(False)
            d = s.recv(1)
            n += 0 if d == b"" else 1
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def slow(binary):
    """500 connections sending a header line every 8 s."""
    p, port = start(binary, "--max-per-ip", "1000")
    socks = []
    for _ in range(500):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        socks.append(s)
    t0 = time.time()
    while time.time() - t0 < 17:
        time.sleep(8 - (time.time() - t0) % 8)
        for s in socks:
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                pass
        print("slow: %.0f s: %d of 500 still open; /healthz %s" %
              (time.time() - t0, still_open(socks), get(port, "/healthz")))
    for s in socks:
        s.close()
    p.kill()


def flood(binary):
    """1,100 connections open with half a head, then a probe and a query."""
    p, port = start(binary, "--max-per-ip", "2000")
    socks = []
    for _ in range(1100):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET /healthz HTTP/1.1\r\n")
            socks.append(s)
        except OSError:
            break
    time.sleep(0.5)
    print("flood: %d connections held; /healthz %s; /v1/names %s" %
          (still_open(socks), get(port, "/healthz", 3), get(port, "/v1/names", 3)))
    for s in socks:
        s.close()
    p.kill()


def bodies(binary):
    """256 connections each sending an 8 MiB body but its last byte."""
    p, port = start(binary, "--max-per-ip", "1000", "--max-inflight", "256")
    base = rss_mib(p.pid)
    size = 8 << 20
    chunk = b" " * (1 << 20)
    socks, refused = [], 0
    for _ in range(256):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(("POST /v1/scores HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" %
                   size).encode())
        socks.append(s)
    for s in socks:
        s.settimeout(2)
        try:
            for _ in range(8):
                s.sendall(chunk if _ < 7 else chunk[:-1])
        except OSError:
            refused += 1
    time.sleep(1)
    held = rss_mib(p.pid)
    peak = rss_mib(p.pid, "VmHWM")
    hz = get(port, "/healthz")
    for s in socks:
        s.close()
    time.sleep(3)
    print("bodies: RSS %.0f MiB at start, %.0f MiB while held (peak %.0f), %.0f MiB 3 s "
          "after; %d of 256 not taken; /healthz while held %s" %
          (base, held, peak, rss_mib(p.pid), refused, hz))
    p.kill()


def ingest(binary):
    """40 concurrent ingests of an 8 MiB NDJSON body (56k scores each)."""
    import collections
    import json
    import threading
    p, port = start(binary)
    rows, i = [], 0
    size = 0
    while size < (8 << 20) - 400:
        line = json.dumps({"name": "n%d" % (i % 50), "value": i * 0.001,
                           "trace_id": "trace-%d" % i, "timestamp": 1767225600000 + i * 1000,
                           "model": "gpt-4o", "environment": "prod",
                           "user_id": "u%d" % (i % 1000)}) + "\n"
        rows.append(line)
        size += len(line)
        i += 1
    body = "".join(rows).encode()
    head = ("POST /v1/scores HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            "Content-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n" %
            len(body)).encode()
    codes = []

    def post():
        s = socket.create_connection(("127.0.0.1", port))
        out = b""
        try:
            s.sendall(head + body)
            while True:
                d = s.recv(1 << 20)
                if not d:
                    break
                out += d
        except OSError:
            pass
        codes.append(out[9:12].decode() or "reset (refused while sending)")

    ts = [threading.Thread(target=post) for _ in range(40)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    peak = rss_mib(p.pid, "VmHWM")
    time.sleep(2)
    print("ingest: 40 x %d-score 8 MiB bodies: %s; peak RSS %.0f MiB, anonymous %.0f MiB "
          "2 s after" % (i, dict(collections.Counter(codes)), peak, rss_mib(p.pid, "RssAnon")))
    p.kill()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    what = sys.argv[2] if len(sys.argv) > 2 else "all"
    OLD = len(sys.argv) > 3 and sys.argv[3] == "old"
    for name, fn in (("slow", slow), ("flood", flood), ("bodies", bodies), ("ingest", ingest)):
        if what in (name, "all"):
            fn(sys.argv[1])
