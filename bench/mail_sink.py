"""A near-free stand-in for a mail server: enough SMTP for Django's backend, and a count.

The receipt of every paid order is emailed (``orders.services.receipt_send``
for ours, the peers' receipt task for Celery), so each system pays for the
SMTP conversation it starts, as in production.  The server end is not the
product's work: like the gateway stand-in it runs in a process of its own
and its CPU is left out of the product's share.

It accepts every message and keeps nothing but a count, which ``XCOUNT``
(a verb of its own, not SMTP) answers as ``250 <messages received>``; the
scenarios use it to wait until the receipts of a run are all sent.

``python -m bench.mail_sink --port P``; it serves 127.0.0.1 until killed.
"""

from __future__ import annotations

import argparse
import asyncio

received = 0


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global received

    def say(line: str) -> None:
        writer.write(line.encode() + b"\r\n")

    try:
        say("220 bench-mail ESMTP")
        await writer.drain()
        while line := await reader.readline():
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                say("250-bench-mail")
                say("250-8BITMIME")
                say("250 SIZE 10485760")
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                say("250 OK")
            elif verb == b"DATA":
                say("354 End data with <CR><LF>.<CR><LF>")
                await writer.drain()
                while (body := await reader.readline()) not in (b".\r\n", b".\n", b""):
                    pass
                received += 1
                say("250 OK queued")
            elif verb == b"XCOUNT":
                say(f"250 {received}")
            elif verb == b"QUIT":
                say("221 Bye")
                await writer.drain()
                break
            else:
                say("502 Command not implemented")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=1024)
    print(f"mail sink listening on {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.port))
