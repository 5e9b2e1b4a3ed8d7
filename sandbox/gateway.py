"""A Braintree-shaped payment gateway, served by the product itself.

Views are async, so the simulated latency (``sandbox.network``) holds no
thread: a slow sandbox never blocks the server's event loop, just as a slow
real gateway would not.
"""

from __future__ import annotations

import json
import secrets
from decimal import Decimal, InvalidOperation

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox.models import SandboxTransaction
from sandbox.network import simulated

# Braintree's test nonces, and what the sandbox does with each.
NONCE_OUTCOMES = {
    "fake-valid-nonce": ("submitted_for_settlement", "Approved"),
    "fake-processor-declined-visa-nonce": ("processor_declined", "Do Not Honor"),
}
CONSUMED_NONCE = "fake-consumed-nonce"
NONCES = (*NONCE_OUTCOMES, CONSUMED_NONCE)


def _error(status: int, message: str, *, attribute: str = "", code: str = "") -> JsonResponse:
    errors = [{"attribute": attribute, "code": code, "message": message}] if attribute else []
    return JsonResponse({"message": message, "errors": errors}, status=status)


def _unavailable(message: str) -> JsonResponse:
    return _error(503, message)


def _validate_sale(body: object) -> tuple[dict, JsonResponse | None]:
    if not isinstance(body, dict):
        return {}, _error(422, "Body must be a JSON object.")
    try:
        amount = Decimal(str(body.get("amount")))
    except InvalidOperation:
        return {}, _error(422, "Amount is an invalid format.", attribute="amount", code="81503")
    if not amount.is_finite() or amount <= 0 or amount >= Decimal("1e10"):
        return {}, _error(422, "Amount must be greater than zero.", attribute="amount", code="81531")
    nonce = body.get("payment_method_nonce")
    order_id = body.get("order_id")
    if not isinstance(order_id, str) or not order_id or len(order_id) > 64:
        return {}, _error(422, "Order ID is required.", attribute="order_id", code="91501")
    if nonce == CONSUMED_NONCE:
        return {}, _error(
            422,
            "Cannot use a payment_method_nonce more than once.",
            attribute="payment_method_nonce",
            code="93107",
        )
    if nonce not in NONCE_OUTCOMES:
        return {}, _error(
            422,
            "Unknown or expired payment_method_nonce.",
            attribute="payment_method_nonce",
            code="91565",
        )
    return {"amount": amount.quantize(Decimal("0.01")), "nonce": nonce, "order_id": order_id}, None


@csrf_exempt
@simulated("gateway", _unavailable)
async def transactions(request: HttpRequest) -> JsonResponse:
    """POST: a sale.  GET: the ledger, optionally for one ``order_id``."""
    if request.method == "POST":
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return _error(400, "Body is not valid JSON.")
        sale, error = _validate_sale(body)
        if error:
            return error
        status, text = NONCE_OUTCOMES[sale["nonce"]]
        transaction = await SandboxTransaction.objects.acreate(
            id=secrets.token_hex(4),
            order_id=sale["order_id"],
            amount=sale["amount"],
            nonce=sale["nonce"],
            status=status,
            processor_response_text=text,
        )
        return JsonResponse(transaction.as_json(), status=201)
    if request.method == "GET":
        queryset = SandboxTransaction.objects.all()
        order_id = request.GET.get("order_id")
        if order_id is not None:
            queryset = queryset.filter(order_id=order_id)
        items = [t.as_json() async for t in queryset[:10000]]
        return JsonResponse({"transactions": items})
    return _error(405, "Method not allowed.")


@simulated("gateway", _unavailable)
async def transaction_detail(request: HttpRequest, transaction_id: str) -> JsonResponse:
    """GET: one transaction's current state."""
    if request.method != "GET":
        return _error(405, "Method not allowed.")
    transaction = await SandboxTransaction.objects.filter(pk=transaction_id).afirst()
    if transaction is None:
        return _error(404, f"Transaction {transaction_id} not found.")
    return JsonResponse(transaction.as_json())
