"""A near-free stand-in for the sandbox gateway: the same three calls, the same latency, no Django.

Scenario 3 runs it beside the real sandbox to tell the worker's own limits
from the sandbox's: at concurrency 50 and 200 ms the sandbox (a Django app
in one daphne) is asked for 250 requests a second, which on 2 cores costs
it more CPU than the worker.  This server answers the calls
``orders.services.payment_process`` makes (search by order id, sale, find)
in the sandbox's JSON shape from memory, after ``--latency-ms``.

``python -m bench.stub_gateway --port P --latency-ms 200``; it serves
``/sandbox/gateway/`` on 127.0.0.1 until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

PREFIX = "/sandbox/gateway/transactions/"

transactions: dict[str, dict] = {}
by_order: dict[str, list[dict]] = {}


def _answer(method: str, target: str, body: bytes) -> tuple[int, dict]:
    url = urlsplit(target)
    if not url.path.startswith(PREFIX):
        return 404, {"message": "not found"}
    rest = url.path[len(PREFIX):].strip("/")
    if method == "POST" and not rest:
        data = json.loads(body or b"{}")
        sale = {"id": secrets.token_hex(4), "status": "submitted_for_settlement", "amount": str(data["amount"]),
                "order_id": str(data["order_id"]), "processor_response_text": "Approved",
                "currency_iso_code": "USD",
                "created_at": datetime.now(timezone.utc).isoformat()}
        transactions[sale["id"]] = sale
        by_order.setdefault(sale["order_id"], []).append(sale)
        return 201, sale
    if method == "GET" and not rest:
        order_id = parse_qs(url.query).get("order_id", [None])[0]
        items = by_order.get(order_id, []) if order_id is not None else list(transactions.values())
        return 200, {"transactions": items}
    if method == "GET" and rest in transactions:
        return 200, transactions[rest]
    return 404, {"message": f"Transaction {rest} not found."}


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float) -> None:
    try:
        while line := await reader.readline():
            method, target, _ = line.decode("latin-1").split(" ", 2)
            length = 0
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            await asyncio.sleep(latency)
            status, payload = _answer(method, target, body)
            data = json.dumps(payload).encode()
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    finally:
        writer.close()


async def main(port: int, latency_ms: int) -> None:
    server = await asyncio.start_server(lambda r, w: _serve(r, w, latency_ms / 1000), "127.0.0.1", port,
                                        backlog=1024)
    print(f"stub gateway listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.latency_ms))
