"""``GET /healthz`` every ``--interval`` seconds on a new connection (as a load balancer would)
until stdin closes or ``--duration`` passes; prints one JSON line: count, failures, p50/p99/max ms.

A separate process so that the load generator's busy loop does not delay the probe's own reads."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time


def probe_once(port: int, timeout: float) -> float | None:
    """Seconds until the whole 200 answer arrived, or None when it failed or timed out."""
    start = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
    except OSError:
        return None
    return time.perf_counter() - start if data.startswith(b"HTTP/1.1 200") else None


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.healthz_probe")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--interval", type=float, default=0.02)
    p.add_argument("--duration", type=float, default=600.0)
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + args.duration
    while not done.is_set() and time.monotonic() < deadline:
        took = probe_once(args.port, args.timeout)
        if took is None:
            failures += 1
        else:
            latencies.append(took * 1000)
        done.wait(args.interval)
    latencies.sort()

    def at(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else 0.0

    out = {"count": len(latencies), "failures": failures, "p50_ms": at(0.5), "p99_ms": at(0.99)}
    out["max_ms"] = round(latencies[-1], 1) if latencies else 0.0
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
