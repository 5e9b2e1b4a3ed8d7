"""A Braintree-shaped payment gateway, served by the product itself.

It answers as Braintree's own sandbox does, in JSON instead of XML: test
nonces and test amounts choose the outcome (approved, authorized only, soft
and hard declines, a processor outage, gateway rejections, a duplicate), a
merchant key guards every call, a sale may carry an ``Idempotency-Key``, and
settlement and disputes arrive later as signed webhooks.

Views are async, so the simulated latency (``sandbox.network``) holds no
thread: a slow sandbox never blocks the server's event loop, just as a slow
real gateway would not.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
import secrets
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from functools import wraps

import attrs
import requests
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from integrations.gateway.client import SIGNATURE_HEADER, sign
from integrations.gateway.transactions import HARD_DECLINE_CODES
from sandbox.models import SandboxTransaction
from sandbox.network import simulated

logger = logging.getLogger(__name__)


@attrs.frozen
class Answer:
    """What the processor says about a sale."""

    status: str
    code: str = ""
    text: str = ""
    type: str = ""
    rejection: str = ""


APPROVED = Answer("submitted_for_settlement", "1000", "Approved", "approved")

# Braintree's test nonces, and ours in their style for the outcomes Braintree
# reaches only with special cards or accounts.
NONCES = {
    "fake-valid-nonce": APPROVED,
    # As when a processor holds the money without taking the submission.
    "fake-valid-authorize-only-nonce": Answer("authorized", "1000", "Approved", "approved"),
    # Still being authorized; a find a moment later says authorized.
    "fake-authorizing-nonce": Answer("authorizing"),
    # Approved for half the amount asked: the answer to check amounts against.
    "fake-valid-partial-amount-nonce": Answer("submitted_for_settlement", "1004", "Approved for Partial Amount",
                                              "approved"),
    "fake-processor-declined-visa-nonce": Answer("processor_declined", "2000", "Do Not Honor", "soft_declined"),
    "fake-processor-hard-declined-visa-nonce": Answer("processor_declined", "2004", "Expired Card", "hard_declined"),
    "fake-processor-failure-visa-nonce": Answer("failed", "3000", "Processor Network Unavailable - Try Again",
                                                "soft_declined"),
    "fake-gateway-rejected-fraud-nonce": Answer("gateway_rejected", rejection="fraud"),
}
CONSUMED_NONCE = "fake-consumed-nonce"
NONCE_CHOICES = (*NONCES, CONSUMED_NONCE)

# Braintree's texts for the codes its test amounts give.
CODE_TEXTS = {
    2000: "Do Not Honor", 2001: "Insufficient Funds", 2002: "Limit Exceeded", 2004: "Expired Card",
    2005: "Invalid Credit Card Number", 2010: "Card Issuer Declined CVV", 2014: "Processor Declined - Fraud Suspected",
    2015: "Transaction Not Allowed", 2046: "Declined", 2047: "Call Issuer. Pick Up Card", 2057: "Issuer or "
    "Cardholder has put a restriction on the card",
}
DUPLICATE_WINDOW = timedelta(seconds=30)  # Braintree's default duplicate-checking window
SETTLEMENT_DECLINE_DELAY = 1.0  # seconds after the sale, for the 4001.00 test amount


def by_amount(amount: Decimal, answer: Answer) -> Answer:
    """Braintree's test amounts: 2000.00-2999.99 decline with that code, 3000.00 fails, 5001.00 is rejected."""
    if answer is not APPROVED:
        return answer
    if Decimal("2000") <= amount < Decimal("3000"):
        code = int(amount)
        kind = "hard_declined" if code in HARD_DECLINE_CODES else "soft_declined"
        return Answer("processor_declined", str(code), CODE_TEXTS.get(code, "Processor Declined"), kind)
    if Decimal("3000") <= amount < Decimal("3001"):
        return NONCES["fake-processor-failure-visa-nonce"]
    if amount == Decimal("5001"):
        return Answer("gateway_rejected", rejection="application_incomplete")
    return answer


def _error(status: int, message: str, *, attribute: str = "", code: str = "") -> JsonResponse:
    errors = [{"attribute": attribute, "code": code, "message": message}] if attribute else []
    return JsonResponse({"message": message, "errors": errors}, status=status)


def _unavailable(message: str) -> JsonResponse:
    return _error(503, message)


def merchant_only(view):
    """Refuse any call without the merchant key, as Braintree refuses any call without API keys."""

    @wraps(view)
    async def wrapper(request: HttpRequest, *args, **kwargs):
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        expected = settings.SANDBOX_GATEWAY_KEY
        # Bytes on both sides: compare_digest refuses str with non-ASCII characters.
        if scheme.lower() != "bearer" or not expected or not hmac.compare_digest(key.strip().encode(),
                                                                                   expected.encode()):
            return _error(401, "Authentication failed: send Authorization: Bearer <merchant key>.")
        return await view(request, *args, **kwargs)

    return wrapper


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
    if not isinstance(order_id, str) or not order_id or len(order_id) > 255:
        return {}, _error(422, "Order ID is required.", attribute="order_id", code="91501")
    if nonce == CONSUMED_NONCE:
        # A sale's own code for a spent nonce (the payment method API says 93107).
        return {}, _error(422, "Cannot use a payment_method_nonce more than once.",
                          attribute="payment_method_nonce", code="91564")
    if nonce not in NONCES:
        return {}, _error(422, "Unknown or expired payment_method_nonce.", attribute="payment_method_nonce",
                          code="91565")
    return {"amount": amount.quantize(Decimal("0.01")), "nonce": nonce, "order_id": order_id}, None


async def _duplicate_of(sale: dict) -> SandboxTransaction | None:
    """An earlier sale with the same card, order and amount, within the window."""
    return await SandboxTransaction.objects.filter(
        order_id=sale["order_id"], amount=sale["amount"], nonce=sale["nonce"],
        status__in=("authorized", "submitted_for_settlement", "settling", "settled"),
        created_at__gte=timezone.now() - DUPLICATE_WINDOW,
    ).afirst()


async def _sell(sale: dict, key: str | None) -> SandboxTransaction:
    answer = by_amount(sale["amount"], NONCES[sale["nonce"]])
    amount = sale["amount"]
    if sale["nonce"] == "fake-valid-partial-amount-nonce":
        amount = (amount / 2).quantize(Decimal("0.01"))
    duplicate = None if key else await _duplicate_of(sale)
    if duplicate is not None:
        answer = Answer("gateway_rejected", rejection="duplicate")
    return await SandboxTransaction.objects.acreate(
        id=secrets.token_hex(4),
        order_id=sale["order_id"],
        amount=amount,
        nonce=sale["nonce"],
        status=answer.status,
        processor_response_code=answer.code,
        processor_response_type=answer.type,
        processor_response_text=answer.text,
        gateway_rejection_reason=answer.rejection,
        duplicate_of=duplicate.id if duplicate else "",
        idempotency_key=key,
    )


@csrf_exempt
@simulated("gateway", _unavailable)
@merchant_only
async def transactions(request: HttpRequest) -> JsonResponse:
    """POST: a sale (submitted for settlement).  GET: the ledger, optionally for one ``order_id``."""
    if request.method == "POST":
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return _error(400, "Body is not valid JSON.")
        sale, error = _validate_sale(body)
        if error:
            return error
        key = request.headers.get("Idempotency-Key") or None
        landing = _land(sale, key, _webhook_url(request), delay=settings.SANDBOX_SALE_DELAY_MS / 1000)
        if not settings.SANDBOX_SALE_DELAY_MS:
            return await landing
        # A sale that reaches the gateway late lands whether or not its
        # caller is still waiting: shielded from the request's cancellation
        # when the caller times out and hangs up.
        task = asyncio.get_running_loop().create_task(landing, context=contextvars.Context())
        _background.add(task)
        task.add_done_callback(_background.discard)
        return await asyncio.shield(task)
    if request.method == "GET":
        queryset = SandboxTransaction.objects.all()
        order_id = request.GET.get("order_id")
        if order_id is not None:
            queryset = queryset.filter(order_id=order_id)
        items = [t.as_json() async for t in queryset[:10000]]
        return JsonResponse({"transactions": items})
    return _error(405, "Method not allowed.")


async def _land(sale: dict, key: str | None, webhook_url: str, *, delay: float) -> JsonResponse:
    """Make the sale, ``delay`` seconds after it arrived: a replay when its key was seen before."""
    if delay:
        await asyncio.sleep(delay)
    if key is not None:
        earlier = await SandboxTransaction.objects.filter(idempotency_key=key).afirst()
        if earlier is not None:
            return _replay(earlier, sale)
    try:
        transaction = await _sell(sale, key)
    except IntegrityError:
        # The same key in two requests at once: the other one made the sale.
        return _replay(await SandboxTransaction.objects.aget(idempotency_key=key), sale)
    logger.info("Sandbox sale %s for %s: %s", transaction.id, sale["order_id"], transaction.status)
    if Decimal("4001") <= sale["amount"] < Decimal("4002") and transaction.holds_money:
        _later(_decline_settlement(transaction.id, webhook_url))
    return JsonResponse(transaction.as_json(), status=201)


def _replay(earlier: SandboxTransaction, sale: dict) -> JsonResponse:
    if (earlier.order_id, earlier.nonce) != (sale["order_id"], sale["nonce"]):
        return _error(422, "This Idempotency-Key was used for another sale.", attribute="idempotency_key",
                      code="idempotency_key_reused")
    response = JsonResponse(earlier.as_json(), status=200)
    response["Idempotent-Replayed"] = "true"
    return response


@simulated("gateway", _unavailable)
@merchant_only
async def transaction_detail(request: HttpRequest, transaction_id: str) -> JsonResponse:
    """GET: one transaction's current state."""
    if request.method != "GET":
        return _error(405, "Method not allowed.")
    transaction = await SandboxTransaction.objects.filter(pk=transaction_id).afirst()
    if transaction is None:
        return _error(404, f"Transaction {transaction_id} not found.")
    if transaction.status == "authorizing" and timezone.now() - transaction.created_at > timedelta(seconds=1):
        # The issuer has answered by now.
        transaction.status, transaction.processor_response_code = "authorized", "1000"
        transaction.processor_response_text, transaction.processor_response_type = "Approved", "approved"
        await transaction.asave()
    return JsonResponse(transaction.as_json())


@csrf_exempt
@simulated("gateway", _unavailable)
@merchant_only
async def submit_for_settlement(request: HttpRequest, transaction_id: str) -> JsonResponse:
    """POST: capture an authorized transaction."""
    if request.method != "POST":
        return _error(405, "Method not allowed.")
    transaction = await SandboxTransaction.objects.filter(pk=transaction_id).afirst()
    if transaction is None:
        return _error(404, f"Transaction {transaction_id} not found.")
    if transaction.status != "authorized":
        return _error(422, "Cannot submit for settlement unless status is authorized.", attribute="status",
                      code="91507")
    transaction.status = "submitted_for_settlement"
    await transaction.asave()
    return JsonResponse(transaction.as_json())


# --- what happens after the sale: settlement and disputes, as webhooks -----------

DISPUTE_KINDS = {"open": "dispute_opened", "won": "dispute_won", "lost": "dispute_lost", "accepted": "dispute_accepted"}


@csrf_exempt
@merchant_only
async def testing(request: HttpRequest, transaction_id: str, action: str) -> JsonResponse:
    """POST ``settle``, ``settlement_decline`` or ``dispute`` (``{"status": ...}``): move a
    transaction on, as Braintree's testing API does, and send the merchant its webhook."""
    if request.method != "POST":
        return _error(405, "Method not allowed.")
    transaction = await SandboxTransaction.objects.filter(pk=transaction_id).afirst()
    if transaction is None:
        return _error(404, f"Transaction {transaction_id} not found.")
    if not transaction.holds_money:
        return _error(422, "Only a transaction that holds money can settle or be disputed.", attribute="status",
                      code="91576")
    dispute_status = ""
    if action == "settle":
        transaction.status, kind = "settled", "transaction_settled"
    elif action == "settlement_decline":
        kind = _decline_settlement_of(transaction)
    elif action == "dispute":
        try:
            dispute_status = str(json.loads(request.body or b"{}").get("status", "open"))
        except (ValueError, AttributeError):
            dispute_status = ""
        if dispute_status not in DISPUTE_KINDS:
            return _error(422, f"A dispute's status is one of {', '.join(DISPUTE_KINDS)}.", attribute="status",
                          code="dispute_status")
        kind = DISPUTE_KINDS[dispute_status]
    else:
        return _error(404, f"No testing action {action!r}.")
    await transaction.asave()
    delivered = await _notify(_webhook_url(request), kind, transaction, dispute_status)
    return JsonResponse({"transaction": transaction.as_json(), "webhook": {"kind": kind, "delivered": delivered}})


def _webhook_url(request: HttpRequest) -> str:
    return settings.SANDBOX_WEBHOOK_URL or request.build_absolute_uri("/webhooks/sandbox/")


_background: set[asyncio.Task] = set()


def _later(coroutine) -> None:
    # A fresh context: the request's own (and its thread executor) ends with its answer.
    task = asyncio.get_running_loop().create_task(coroutine, context=contextvars.Context())
    _background.add(task)
    task.add_done_callback(_background.discard)


def _decline_settlement_of(transaction: SandboxTransaction) -> str:
    """The processor refuses to settle it (Braintree's 4001); the webhook kind that says so."""
    transaction.status = "settlement_declined"
    transaction.processor_response_code, transaction.processor_response_text = "4001", "Settlement Declined"
    return "transaction_settlement_declined"


async def _decline_settlement(transaction_id: str, url: str) -> None:
    await asyncio.sleep(SETTLEMENT_DECLINE_DELAY)
    transaction = await SandboxTransaction.objects.aget(pk=transaction_id)
    kind = _decline_settlement_of(transaction)
    await transaction.asave()
    await _notify(url, kind, transaction, "")


async def _notify(url: str, kind: str, transaction: SandboxTransaction, dispute_status: str) -> bool:
    """POST the signed notification to the merchant; whether it answered 2xx."""
    body = json.dumps({"kind": kind, "transaction": transaction.as_json(), "dispute_status": dispute_status,
                       "timestamp": timezone.now().isoformat()}).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(settings.SANDBOX_GATEWAY_KEY, body)}
    try:
        response = await sync_to_async(requests.post, thread_sensitive=False)(url, data=body, headers=headers,
                                                                              timeout=10)
    except requests.RequestException as exc:
        logger.warning("Sandbox webhook %s to %s failed: %s", kind, url, exc)
        return False
    if not response.ok:
        logger.warning("Sandbox webhook %s to %s answered %s", kind, url, response.status_code)
    return response.ok
