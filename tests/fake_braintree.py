"""A stand-in for Braintree's XML gateway API, served over real HTTP on 127.0.0.1.

Only the transaction endpoints the adapter uses, answering in Braintree's
own XML shapes (as its Python SDK parses them): a sale, a find, and the
two-request search (``advanced_search_ids``, then ``advanced_search``).  The
SDK runs unmodified against it, through ``requests`` and its XML parser: only
its Environment points here.  Nonces behave like Braintree's test nonces and
the sandbox's.
"""

from __future__ import annotations

import base64
import itertools
import re
import threading
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import braintree

MERCHANT_ID = "fake-merchant"
PUBLIC_KEY = "fake-public-key"
PRIVATE_KEY = "fake-private-key"

# nonce -> (status, processor response code, processor response text, processor response type)
NONCES = {
    "fake-valid-nonce": ("submitted_for_settlement", "1000", "Approved", "approved"),
    "fake-valid-authorize-only-nonce": ("authorized", "1000", "Approved", "approved"),
    "fake-processor-declined-visa-nonce": ("processor_declined", "2000", "Do Not Honor", "soft_declined"),
    "fake-processor-hard-declined-visa-nonce": ("processor_declined", "2004", "Expired Card", "hard_declined"),
}
# Braintree's default duplicate-checking window.
DUPLICATE_WINDOW = 30.0
CONSUMED_NONCE = "fake-consumed-nonce"

_EPOCH = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)


def _tag(name: str, value: object, **attrs: str) -> str:
    attributes = "".join(f' {k}="{v}"' for k, v in attrs.items())
    if value is None:
        return f'<{name} nil="true"/>'
    return f"<{name}{attributes}>{escape(str(value))}</{name}>"


def transaction_xml(tx: dict) -> str:
    """One ``<transaction>`` element, with the fields Braintree always sends."""
    return (
        "<transaction>"
        + _tag("id", tx["id"])
        + _tag("status", tx["status"])
        + _tag("type", "sale")
        + _tag("currency-iso-code", "USD")
        + _tag("amount", tx["amount"])
        + _tag("merchant-account-id", MERCHANT_ID)
        + _tag("order-id", tx["order_id"] or None)
        + _tag("created-at", tx["created_at"], type="datetime")
        + _tag("updated-at", tx["created_at"], type="datetime")
        + _tag("processor-response-code", tx["code"] or None)
        + _tag("processor-response-text", tx["text"] or None)
        + _tag("processor-response-type", tx["type"] or None)
        + _tag("gateway-rejection-reason", tx.get("rejection") or None)
        # As in the Java SDK's fixtures; the Python SDK keeps it as an attribute.
        + _tag("duplicate-of-transaction-id", tx.get("duplicate_of") or None)
        + "<credit-card>"
        + _tag("bin", "411111")
        + _tag("last-4", "1111")
        + _tag("card-type", "Visa")
        + _tag("expiration-month", "12")
        + _tag("expiration-year", "2030")
        + "</credit-card>"
        + '<status-history type="array"><status-event>'
        + _tag("timestamp", tx["created_at"], type="datetime")
        + _tag("status", tx["status"])
        + _tag("amount", tx["amount"])
        + _tag("transaction-source", "api")
        + "</status-event></status-history>"
        + "</transaction>"
    )


def api_error_xml(message: str, *, errors: list[tuple[str, str, str]] = (), transaction: dict | None = None) -> str:
    """An ``<api-error-response>``: validation errors on the transaction, or a declined transaction."""
    items = "".join(
        "<error>"
        + _tag("code", code)
        + _tag("attribute", attribute, type="symbol")
        + _tag("message", text)
        + "</error>"
        for code, attribute, text in errors
    )
    return (
        "<api-error-response>"
        '<errors><errors type="array"/>'
        f'<transaction><errors type="array">{items}</errors></transaction>'
        "</errors>"
        + _tag("message", message)
        + (transaction_xml(transaction) if transaction else "")
        + "</api-error-response>"
    )


def _text(root: ET.Element, name: str) -> str:
    # The SDK writes underscores; Braintree also accepts dashes.
    node = root.find(name)
    if node is None:
        node = root.find(name.replace("_", "-"))
    return (node.text or "").strip() if node is not None else ""


class FakeBraintree:
    """A running fake: its ledger, the requests it saw, and answers to force."""

    def __init__(self) -> None:
        self.transactions: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        #: Statuses to answer the next requests with, instead of serving them.
        self.forced: list[int] = []
        #: Seconds to wait before answering (to make the client time out).
        self.delay = 0.0
        #: Seconds a sale takes to reach the gateway: it lands then, whether or not its caller still waits.
        self.sale_delay = 0.0
        #: How many of the next sales are lost on the way: answered 502, never made.
        self.lost_sales = 0
        #: The duplicate check's window; 0 for a merchant who turned the check off.
        self.duplicate_window = DUPLICATE_WINDOW
        #: Answers to give, in order, before any other: (status, XML body), such as recorded ones.
        self.replies: list[tuple[int, str]] = []
        #: Transactions the search does not find yet, as Braintree's search index lags its ledger.
        self.unsearchable: set[str] = set()
        self._created: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll: shutdown() waits up to one interval, for every test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-braintree", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def environment(self) -> braintree.Environment:
        """A Braintree Environment that points the SDK here, over plain HTTP."""
        return braintree.Environment("fake", "127.0.0.1", str(self.port), "", False, None)

    def start(self) -> "FakeBraintree":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.delay = 0.0
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def sales_for(self, order_id: str) -> list[dict]:
        with self._lock:
            return [tx for tx in self.transactions.values() if tx["order_id"] == str(order_id)]

    # --- the API ------------------------------------------------------------------

    def _sale(self, body: ET.Element) -> tuple[int, str]:
        if body.tag != "transaction" or _text(body, "type") != "sale":
            return 422, api_error_xml("Transaction type is invalid.", errors=[("91523", "type", "Type is invalid.")])
        try:
            amount = Decimal(_text(body, "amount"))
        except InvalidOperation:
            message = "Amount is an invalid format."
            return 422, api_error_xml(message, errors=[("81503", "amount", message)])
        nonce = _text(body, "payment_method_nonce")
        if nonce == CONSUMED_NONCE:
            message = "Cannot use a payment_method_nonce more than once."
            return 422, api_error_xml(message, errors=[("91564", "payment_method_nonce", message)])
        if nonce not in NONCES:
            message = "Unknown or expired payment_method_nonce."
            return 422, api_error_xml(message, errors=[("91565", "payment_method_nonce", message)])
        status, code, text, kind = NONCES[nonce]
        options = body.find("options")
        settle = options is not None and _text(options, "submit_for_settlement") == "true"
        if status == "submitted_for_settlement" and not settle:
            status = "authorized"
        order_id = _text(body, "order_id")
        with self._lock:
            original = next(
                (tx for tx in self.transactions.values()
                 if (tx["order_id"], tx["amount"], tx["nonce"]) == (order_id, f"{amount:.2f}", nonce)
                 and tx["status"] in ("authorized", "submitted_for_settlement", "settled")
                 and time.monotonic() - self._created[tx["id"]] < self.duplicate_window),
                None,
            )
            number = next(self._ids)
            tx = {
                "id": f"fk{number:06d}",
                "status": status,
                "amount": f"{amount:.2f}",
                "order_id": order_id,
                "nonce": nonce,
                "code": code,
                "text": text,
                "type": kind,
                # Seconds apart, so created_at orders them as Braintree would.
                "created_at": (_EPOCH + timedelta(seconds=number)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            if original is not None:
                # Braintree's duplicate check: refused, naming the one that went through.
                tx.update(status="gateway_rejected", code="", text="", type="", rejection="duplicate",
                          duplicate_of=original["id"])
            self.transactions[tx["id"]] = tx
            self._created[tx["id"]] = time.monotonic()
        if tx["status"] in ("processor_declined", "gateway_rejected"):
            return 422, api_error_xml(tx["text"] or "Gateway Rejected: duplicate", transaction=tx)
        return 201, transaction_xml(tx)

    def _submit_for_settlement(self, transaction_id: str) -> tuple[int, str]:
        with self._lock:
            tx = self.transactions.get(transaction_id)
            if tx is None:
                return 404, ""
            if tx["status"] != "authorized":
                message = "Cannot submit for settlement unless status is authorized."
                return 422, api_error_xml(message, errors=[("91507", "base", message)])
            tx["status"] = "submitted_for_settlement"
        return 200, transaction_xml(tx)

    def _matches(self, body: ET.Element) -> list[dict]:
        order_id = body.find("order_id/is")
        types = [item.text for item in body.findall("type/item")]
        ids = [item.text for item in body.findall("ids/item")]
        with self._lock:
            found = [tx for tx in self.transactions.values() if tx["id"] not in self.unsearchable]
        if order_id is not None:
            found = [tx for tx in found if tx["order_id"] == (order_id.text or "")]
        if types:
            found = [tx for tx in found if "sale" in types]
        if ids:
            found = [tx for tx in found if tx["id"] in ids]
        # Braintree lists the newest first.
        return sorted(found, key=lambda tx: tx["created_at"], reverse=True)

    def _search_ids(self, body: ET.Element) -> tuple[int, str]:
        items = "".join(_tag("item", tx["id"]) for tx in self._matches(body))
        return 200, (
            "<search-results>"
            + _tag("page-size", 50, type="integer")
            + f'<ids type="array">{items}</ids>'
            + "</search-results>"
        )

    def _search(self, body: ET.Element) -> tuple[int, str]:
        found = self._matches(body)
        return 200, (
            '<credit-card-transactions type="collection">'
            + _tag("current-page-number", 1, type="integer")
            + _tag("page-size", 50, type="integer")
            + _tag("total-items", len(found), type="integer")
            + "".join(transaction_xml(tx) for tx in found)
            + "</credit-card-transactions>"
        )

    def _find(self, transaction_id: str) -> tuple[int, str]:
        with self._lock:
            tx = self.transactions.get(transaction_id)
        return (200, transaction_xml(tx)) if tx else (404, "")

    def handle(self, method: str, path: str, headers, raw: bytes) -> tuple[int, str]:
        self.requests.append((method, path))
        if self.delay:
            time.sleep(self.delay)
        if self.replies:
            return self.replies.pop(0)
        if self.forced:
            return self.forced.pop(0), ""
        expected = "Basic " + base64.b64encode(f"{PUBLIC_KEY}:{PRIVATE_KEY}".encode()).decode()
        if headers.get("Authorization") != expected:
            return 401, ""
        if headers.get("X-ApiVersion") != "6":
            return 426, ""
        match = re.fullmatch(r"/merchants/([^/]+)/transactions(?:/([^/]+))?(/submit_for_settlement)?", path)
        if not match or match.group(1) != MERCHANT_ID:
            return 404, ""
        action = match.group(2)
        if method == "PUT" and action and match.group(3):
            return self._submit_for_settlement(action)
        if method == "GET" and action:
            return self._find(action)
        if method != "POST":
            return 404, ""
        try:
            body = ET.fromstring(raw or b"<empty/>")
        except ET.ParseError:
            return 400, ""
        if action is None:
            if self.lost_sales:
                self.lost_sales -= 1
                return 502, ""
            if self.sale_delay:
                time.sleep(self.sale_delay)
            return self._sale(body)
        if action == "advanced_search_ids":
            return self._search_ids(body)
        if action == "advanced_search":
            return self._search(body)
        return 404, ""

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    status, body = fake.handle(self.command, self.path, self.headers, raw)
                except Exception:  # a bug in the fake: let the test see a 500, not hang
                    status, body = 500, ""
                payload = (f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n' if body else "").encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml; charset=utf-8")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args) -> None:
                pass

        return Handler
