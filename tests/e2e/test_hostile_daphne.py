"""What only a real daphne shows: the close code of an oversized frame, and
request bodies over the limit refused before they are read."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
import websockets

from project.names import WS_CLOSE_TOO_BIG

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

USER = "user0"
LIMIT = 64 * 1024  # MAX_REQUEST_BODY_BYTES of these stacks
# How long a client waits for an answer.  Without the limit daphne waits for
# a body that never comes, and this turns that hang into a failure.
ANSWER_WAIT = 30


@pytest.fixture
def stack(make_stack):
    stack = make_stack({"MAX_REQUEST_BODY_BYTES": str(LIMIT)}, redis=False)
    stack.web = stack.start_web()
    return stack


def test_an_oversized_frame_closes_the_socket_with_our_code_and_logs_no_error(stack):
    async def run():
        async with websockets.connect(stack.ws_url(),
                                      additional_headers={"Authorization": f"Token {stack.tokens[USER]}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            await ws.send("x" * 5000)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), ANSWER_WAIT)
            return closed.value.rcvd

    rcvd = asyncio.run(run())
    assert rcvd is not None and rcvd.code == WS_CLOSE_TOO_BIG, rcvd
    log = stack.log_of(stack.web)
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


def _connect(stack) -> socket.socket:
    return socket.create_connection(("127.0.0.1", stack.port), timeout=ANSWER_WAIT)


def _head(stack, *extra: str) -> bytes:
    lines = ["POST /api/orders/ HTTP/1.1", f"Host: 127.0.0.1:{stack.port}", "Content-Type: application/json",
             f"Authorization: Token {stack.tokens[USER]}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[bytes, dict]:
    """The whole answer up to the server's close: its status line and JSON body."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        raise AssertionError(f"no answer and no close within {ANSWER_WAIT}s: the server waits for the body") from None
    except ConnectionResetError:
        pass  # closed with what we sent unread: the answer came before
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], json.loads(body)


def _orders(stack) -> int:
    return stack.query("SELECT COUNT(*) FROM orders_order")[0][0]


@pytest.mark.parametrize("expect", [[], ["Expect: 100-continue"]], ids=["plain", "expect-100-continue"])
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(stack, expect):
    with _connect(stack) as sock:
        # 50 MB declared; a few bytes of it sent, and never the rest.
        sock.sendall(_head(stack, "Content-Length: 50000000", *expect) + b'{"amount": "1')
        status, body = _answer(sock)
    # The answer came though the body never did, so nothing waited for it;
    # with 100-continue the client is told before it sends any.
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert body == {"code": "too_large", "message": f"Request body is larger than {LIMIT} bytes."}
    assert _orders(stack) == 0
    assert "Refused a request body" in stack.log_of(stack.web)


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit(stack):
    chunk = b"x" * 8192
    with _connect(stack) as sock:
        sock.sendall(_head(stack, "Transfer-Encoding: chunked"))
        # One chunk past the limit, and no last chunk: the body never ends.
        for _ in range(LIMIT // len(chunk) + 1):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # _answer returns at the server's close: it reads nothing more.
        status, body = _answer(sock)
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert body["code"] == "too_large"
    assert _orders(stack) == 0


def test_a_body_within_the_limit_still_goes_through(stack):
    payload = json.dumps({"amount": "1.00", "nonce": "fake-valid-nonce", "pad": "x" * (LIMIT - 100)}).encode()
    assert len(payload) <= LIMIT
    with _connect(stack) as sock:
        sock.sendall(_head(stack, f"Content-Length: {len(payload)}", "Connection: close") + payload)
        status, _body = _answer(sock)
    assert status == b"HTTP/1.1 202 Accepted"
