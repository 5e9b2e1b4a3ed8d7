"""How many bytes a websocket's server still holds for its client.

ASGI gives an application no view of the socket, and daphne buffers every
frame a client has not read yet in Twisted's transport, without a bound.
daphne hands each connection ``send = partial(server.handle_reply,
protocol)``, and the protocol's transport counts what waits to be written;
this reads that count, for daphne only.
"""

from __future__ import annotations


def outgoing_backlog(send) -> int | None:
    """Bytes written to the connection behind ``send`` but not yet taken by the client; None if unknown."""
    args = getattr(send, "args", None)
    transport = getattr(args[0], "transport", None) if args else None
    data = getattr(transport, "dataBuffer", None)
    if data is None:
        return None
    # Twisted's FileDescriptor: a buffer being written from ``offset`` on,
    # plus the chunks written since it was last swapped in.
    return len(data) - getattr(transport, "offset", 0) + getattr(transport, "_tempDataLen", 0)
