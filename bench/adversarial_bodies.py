#!/usr/bin/env python3
"""Fires adversarial send bodies at an OpenSend server: `concurrency` requests at once, `rounds` times.

    adversarial_bodies.py URL TOKEN KIND [--concurrency 8] [--rounds 3] [--size BYTES]

Each body is about SIZE bytes (default just under 40 MiB, the single-send limit) of valid JSON that is
cheap to send and expensive to expand: see KINDS. Bodies are sent chunked (no Content-Length), so a server
cannot refuse them by their declared size and has to read them. The response is read while the body is
still being sent, since a server may answer before reading everything. Prints one line: the kind and the
count of each status (`reset` when the connection closed without an answer).
"""

import argparse
import asyncio
import collections
import urllib.parse

HEAD = b'{"from": "Acme <hello@acme.test>", "subject": "Hi", "html": "<p>Hi</p>", '


def repeated(prefix: bytes, element: bytes, suffix: bytes, size: int) -> bytes:
    """prefix + element, element, ... + suffix, about `size` bytes."""
    count = max(1, (size - len(prefix) - len(suffix)) // (len(element) + 1))
    return prefix + b",".join([element] * count) + suffix


def numbered(prefix: bytes, pattern: bytes, suffix: bytes, size: int) -> bytes:
    """Like `repeated`, with each element made unique by `pattern % i` (object keys must differ)."""
    budget = size - len(prefix) - len(suffix)
    parts, used, i = [], 0, 0
    while used < budget:
        part = pattern % i
        parts.append(part)
        used += len(part) + 1
        i += 1
    return prefix + b",".join(parts) + suffix


def huge_to(size):
    return repeated(HEAD + b'"to": [', b'"a@example.com"', b"]}", size)


def deep_template(size):
    depth = (size - len(HEAD) - 20) // 2
    return HEAD + b'"to": "a@example.com", "template": ' + b"[" * depth + b"]" * depth + b"}"


def wide_template(size):
    prefix = HEAD + b'"to": "a@example.com", "template": {"id": "t", "variables": {'
    return numbered(prefix, b'"v%d": 1', b"}}}", size)


def wide_headers(size):
    return numbered(HEAD + b'"to": "a@example.com", "headers": {', b'"X-H%d": "v"', b"}}", size)


def huge_html(size):
    """Not adversarial in shape: one string as large as the body, as a legitimate large send has."""
    return HEAD[:-2] + b', "to": "a@example.com", "text": "' + b"x" * (size - len(HEAD) - 40) + b'"}'


def batch_of_huge_items(size):
    item = repeated(HEAD + b'"to": [', b'"a@example.com"', b"]}", size // 100)
    return b"[" + b",".join([item] * 100) + b"]"


KINDS = {
    "huge_to": huge_to,
    "deep_template": deep_template,
    "wide_template": wide_template,
    "wide_headers": wide_headers,
    "batch_of_huge_items": batch_of_huge_items,
    "huge_html": huge_html,
}


async def post(url, token, path, body):
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
    )

    async def send():
        try:
            view = memoryview(body)
            for at in range(0, len(body), 64 * 1024):
                piece = view[at : at + 64 * 1024]
                writer.write(b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the server answered and closed: the answer is read below

    sending = asyncio.create_task(send())
    try:
        status_line = await reader.readline()
        status = status_line.split()[1].decode() if status_line else "reset"
    except (ConnectionError, OSError, IndexError):
        status = "reset"
    sending.cancel()
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass
    return status


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=40 * 1024 * 1024 - 4096)
    args = parser.parse_args()
    body = KINDS[args.kind](args.size)
    path = "/emails/batch" if args.kind.startswith("batch") else "/emails"
    statuses = collections.Counter()
    for _ in range(args.rounds):
        results = await asyncio.gather(
            *(post(args.url, args.token, path, body) for _ in range(args.concurrency))
        )
        statuses.update(results)
    counts = " ".join(f"{status}x{n}" for status, n in sorted(statuses.items()))
    print(f"{args.kind} ({len(body) / 2**20:.1f} MiB, {path}): {counts}")


if __name__ == "__main__":
    asyncio.run(main())
