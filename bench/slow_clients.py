"""Slow clients against `portail serve`: do they change anything for the others?

    python bench/slow_clients.py [--slow 50] [--seconds 15] [--workers 2]

On PostgreSQL + Redis (bench/_serving.py). Measures the latency of normal requests (GET
/auth/login, and a login POST) when quiet, then while --slow connections trickle their headers (one
header line every second, never finished) and --slow connections trickle a login body (10 bytes a
second of an announced 100 KB). Meanwhile a genuine slow upload within the size limit (200 KB at
20 KB/s) must complete with its answer, and an oversized body (200 MB announced, then streamed) must
be refused before being read: printed, the bytes the server accepted before its 413.
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving as s  # noqa: E402


async def normal_traffic(port, seconds, credentials):
    pages, logins = [], []
    cookie, token = credentials
    end = time.monotonic() + seconds
    number = 0
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            status, _, _ = await s.fetch(port, "GET", "/auth/login")
            pages.append(time.monotonic() - started if status == 200 else float("inf"))
        except OSError:
            pages.append(float("inf"))
        started = time.monotonic()
        try:
            status, _, _ = await s.fetch(
                port, "POST", "/auth/login", s.login_body(token, number), s.login_headers(cookie)
            )
            logins.append(time.monotonic() - started if status == 302 else float("inf"))
        except OSError:
            logins.append(float("inf"))
        number += 1
        await asyncio.sleep(0.05)
    return pages, logins


def line(name, samples):
    return (
        f"{name}: p50 {s.percentile(samples, 50) * 1000:.0f} ms, "
        f"p99 {s.percentile(samples, 99) * 1000:.0f} ms ({len(samples)} requests, "
        f"{sum(1 for x in samples if x == float('inf'))} failed)"
    )


async def slow_header(port, stop):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
    number = 0
    while not stop.is_set():
        writer.write(f"X-Slow-{number}: x\r\n".encode())
        number += 1
        await asyncio.sleep(1)
    writer.close()


async def slow_body(port, stop, credentials):
    cookie, _ = credentials
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        s.build(port, "POST", "/auth/login", b"", s.login_headers(cookie)).replace(
            b"Content-Length: 0", b"Content-Length: 100000"
        )
    )
    while not stop.is_set():
        writer.write(b"a" * 10)
        await asyncio.sleep(1)
    writer.close()


async def genuine_slow_upload(port, credentials, size=200 * 1024, rate=20 * 1024):
    cookie, token = credentials
    body = s.login_body(token, 1) + b"&padding=" + b"a" * (size - 100)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        s.build(port, "POST", "/auth/login", b"", s.login_headers(cookie)).replace(
            b"Content-Length: 0", f"Content-Length: {len(body)}".encode()
        )
    )
    started = time.monotonic()
    for start in range(0, len(body), rate // 10):
        writer.write(body[start : start + rate // 10])
        await writer.drain()
        await asyncio.sleep(0.1)
    status, _, _ = await asyncio.wait_for(s.read_answer(reader), 30)
    writer.close()
    return status, len(body), time.monotonic() - started


async def oversized(port):
    """200 MB announced, no byte of it sent: the answer must not wait for the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(
        f"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n\r\n".encode()
    )
    status, _, _ = await asyncio.wait_for(s.read_answer(reader), 10)
    writer.close()
    return status, time.monotonic() - started


async def oversized_streamed(port):
    """A chunked body streamed as fast as possible: how much gets in before the 413."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /auth/help HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b"a" * 65536
    sent = 0
    started = time.monotonic()
    try:
        while sent < 200 * 1024 * 1024:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            sent += len(chunk)
    except OSError:  # the server answered and closed the connection
        pass
    try:
        status, _, _ = await asyncio.wait_for(s.read_answer(reader), 10)
    except (OSError, asyncio.IncompleteReadError):
        status = "connection closed"
    writer.close()
    return status, sent, time.monotonic() - started


async def run(port, args):
    credentials = await s.login_credentials(port)
    await normal_traffic(port, 2, credentials)  # warm-up
    quiet = await normal_traffic(port, args.seconds, credentials)
    print(line("quiet   GET /auth/login", quiet[0]))
    print(line("quiet   login POST", quiet[1]), flush=True)

    stop = asyncio.Event()
    slow = [asyncio.ensure_future(slow_header(port, stop)) for _ in range(args.slow)]
    slow += [asyncio.ensure_future(slow_body(port, stop, credentials)) for _ in range(args.slow)]
    await asyncio.sleep(1)
    upload = asyncio.ensure_future(genuine_slow_upload(port, credentials))
    loaded = await normal_traffic(port, args.seconds, credentials)
    print(f"with {args.slow} slow-header + {args.slow} slow-body connections open:")
    print(line("  GET /auth/login", loaded[0]))
    print(line("  login POST", loaded[1]))
    status, size, took = await upload
    print(
        f"  a genuine slow upload of {size // 1024} KB at 20 KB/s: answered {status} after {took:.1f} s"
    )
    status, took = await oversized(port)
    print(f"  200 MB announced, no body sent: answered {status} after {took * 1000:.0f} ms")
    status, sent, took = await oversized_streamed(port)
    print(
        f"  a chunked body streamed at full speed: {status} after {took * 1000:.0f} ms, "
        f"{sent // 1024} KB written by the client in all (limit 256 KB; the rest sat in socket "
        "buffers and was never read)"
    )
    stop.set()
    await asyncio.gather(*slow, return_exceptions=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--accounts", type=int, default=400)
    parser.add_argument("--skip-setup", action="store_true", help="reuse the bench database")
    args = parser.parse_args()
    if not args.skip_setup:
        print(f"Préparation : base {s.DBNAME}, {args.accounts} comptes…", flush=True)
        s.prepare_database(args.accounts)
    print(f"load average before: {s.load_average()}", flush=True)
    with s.Server(workers=args.workers) as server:
        asyncio.run(run(server.port, args))
    print(f"load average after: {s.load_average()}")


if __name__ == "__main__":
    main()
