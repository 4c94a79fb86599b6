"""Fallback load generator for bench/run.py when wrk is not installed.

Run: python bench/loadgen.py URL SPEC [--id-prefix P] --connections 64 --duration 10
Reads the same SPEC file as bench/scenario.lua, keeps CONNECTIONS HTTP/1.1 keep-alive
connections busy for DURATION seconds (raw asyncio streams, one request in flight per
connection) and prints one line ``BENCH_JSON {...}`` with the same fields as the wrk script.
It is slower than wrk and shares the CPU with the server, so its figures are lower bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Spec:
    method: str = "GET"
    scenario: str = ""
    body: str | None = None
    id_prefix: str = "bench-"
    reqs: list[tuple[str, str]] = field(default_factory=list)


def read_spec(path: str) -> Spec:
    spec = Spec()
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            key = fields[0]
            if key == "method":
                spec.method = fields[1]
            elif key == "scenario":
                spec.scenario = fields[1]
            elif key == "body":
                spec.body = fields[1]
            elif key == "id_prefix":
                spec.id_prefix = fields[1]
            elif key == "req":
                spec.reqs.append((fields[1], fields[2]))
    if not spec.reqs:
        raise SystemExit(f"{path}: no 'req' line")
    return spec


@dataclass
class Tally:
    latencies_us: list[int] = field(default_factory=list)
    bytes: int = 0
    errors_status: int = 0
    errors_read: int = 0
    errors_connect: int = 0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int]:
    """Status and total bytes of one response (Content-Length or chunked)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    size = len(head)
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
        size += len(body)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = await reader.readuntil(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            chunk = await reader.readexactly(n + 2)
            size += len(size_line) + len(chunk)
            if n == 0:
                break
    return status, size


async def _connection(host: str, port: int, spec: Spec, start: int, conn_id: int, stop_at: float,
                      tally: Tally) -> None:
    counter = 0
    i = start
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        tally.errors_connect += 1
        return
    try:
        while time.perf_counter() < stop_at:
            path, auth = spec.reqs[i % len(spec.reqs)]
            i += 1
            headers = [f"{spec.method} {path} HTTP/1.1", f"Host: {host}:{port}",
                       f"Authorization: {auth}", f"X-Bench-Scenario: {spec.scenario}"]
            body = b""
            if spec.body is not None:
                counter += 1
                body = spec.body.replace("{ID}", f"{spec.id_prefix}{conn_id}-{counter}").encode()
                headers += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
            t0 = time.perf_counter()
            writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body)
            try:
                status, size = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                tally.errors_read += 1
                return
            tally.latencies_us.append(int((time.perf_counter() - t0) * 1e6))
            tally.bytes += size
            if status > 399:
                tally.errors_status += 1
    finally:
        writer.close()


def _percentile(values: list[int], q: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


async def run(url: str, spec: Spec, connections: int, duration: float) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    tally = Tally()
    started = time.perf_counter()
    stop_at = started + duration
    await asyncio.gather(*(
        _connection(host, port, spec, (k * 7919) % len(spec.reqs), k, stop_at, tally)
        for k in range(connections)
    ))
    elapsed = time.perf_counter() - started
    lat = tally.latencies_us
    return {
        "requests": len(lat), "duration_us": int(elapsed * 1e6), "bytes": tally.bytes,
        "errors_status": tally.errors_status, "errors_connect": tally.errors_connect,
        "errors_read": tally.errors_read, "errors_write": 0, "errors_timeout": 0,
        "p50_us": _percentile(lat, 50), "p99_us": _percentile(lat, 99),
        "mean_us": sum(lat) / len(lat) if lat else 0.0, "max_us": max(lat, default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", help="http://host:port of the server")
    parser.add_argument("spec", help="scenario spec file written by bench/run.py")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--id-prefix", default=None, help="replaces the spec's id_prefix")
    args = parser.parse_args()
    spec = read_spec(args.spec)
    if args.id_prefix:
        spec.id_prefix = args.id_prefix
    result = asyncio.run(run(args.url, spec, args.connections, args.duration))
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
