"""The Celery peers of scenario 4: the same payment job, run by Celery with a Redis broker.

Two set-ups a Django developer would choose instead of our product, picked by
``BENCH_CELERY_MODE`` (the web process and the workers of one stack agree):

* ``push``: the task pushes its final state to the user's group through the
  product's channel layer, which ``/ws/status/`` forwards as a ``job`` frame.
  No result is stored (``task_ignore_result``): the event is the result.
* ``poll``: the common set-up of Celery with django-celery-results (the
  ``django-db`` result backend, in the product's database) and celery-progress:
  the task records its progress with celery-progress's ``ProgressRecorder`` at
  the two points where our payment job reports progress (10% processing, 60%
  transaction created), returns the outcome as its result, and the page polls
  celery-progress's endpoint every 500 ms until the state is final.

Both do the job's work with the product's own parts: the sandbox gateway
through the product's ``GatewayClient`` (search, sale, find: the same calls
as ``orders.services.payment_process``), and the ``Order`` row written when the
order is created and when it is paid.  A paid order then queues its receipt,
a task of its own on a queue of its own (our product's ``emails`` channel), which
emails the same receipt to the user through Django's mail settings, as
``orders.services.receipt_send`` does.  Neither peer keeps a durable job
record, a claim or progress events of its own beyond what is said above: that
is the work our product does on top, and the comparison counts it against us.

Start a worker with ``DJANGO_SETTINGS_MODULE=bench.celery_settings
celery -A bench.celery_app worker ...``.  Celery, django-celery-results and
celery-progress are benchmark dependencies only (requirements-bench.txt).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.celery_settings")

import django  # noqa: E402

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from celery import Celery  # noqa: E402
from celery.signals import worker_ready  # noqa: E402
from celery_progress.backend import ProgressRecorder  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.mail import send_mail  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.names import CELERY_EMAILS_QUEUE, CELERY_QUEUE, POLL, PUSH  # noqa: E402
from integrations.gateway import Outcome, get_payment_gateway  # noqa: E402
from orders.models import Order, OrderStatus  # noqa: E402
from project.names import JOB_UPDATE, user_group  # noqa: E402

logger = logging.getLogger(__name__)

MODE = settings.BENCH_CELERY_MODE
assert MODE in (PUSH, POLL), MODE

app = Celery("bench", broker=settings.CELERY_BROKER_URL)
app.conf.update(
    task_default_queue=CELERY_QUEUE,
    task_routes={"bench.receipt": {"queue": CELERY_EMAILS_QUEUE}},
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
if MODE == PUSH:
    app.conf.task_ignore_result = True  # the result travels over the channel layer, as ours does
else:
    app.conf.result_backend = "django-db"  # django-celery-results: a TaskResult row per task


@worker_ready.connect
def _ready(**_) -> None:
    # The harness waits for this line (the worker logs at WARNING only, so
    # Celery's per-task INFO lines cost it nothing, as ours log nothing per job).
    print(f"celery worker {os.getpid()} ready", file=sys.stderr, flush=True)


def _events_layer():
    """The layer group events travel on: the product's ``events`` alias when it has one."""
    return get_channel_layer("events" if "events" in settings.CHANNEL_LAYERS else "default")


async def _group_send(group: str, event: dict) -> None:
    # Bounded like every send of ours; the order row stays the truth if it fails.
    try:
        await asyncio.wait_for(_events_layer().group_send(group, event), 10)
    except Exception:
        logger.warning("Could not push to %s", group, exc_info=True)


def _charge(order: Order, progress: ProgressRecorder | None = None) -> tuple[bool, str, str]:
    """The gateway's three calls for one order: (succeeded, transaction id, its status)."""
    gateway = get_payment_gateway()
    if progress:
        progress.set_progress(10, 100, f"Processing payment of {order.amount}")
    existing = [t for t in gateway.find_by_reference(order.reference) if t.holds_money]
    sale = existing[0] if existing else gateway.sale(amount=order.amount, nonce=order.nonce,
                                                     reference=order.reference, idempotency_key=order.reference)
    if progress:
        progress.set_progress(60, 100, f"Transaction {sale.id} created; confirming")
    result = gateway.find(sale.id)
    succeeded = result.outcome is Outcome.SETTLING and result.amount == order.amount
    return succeeded, sale.id, result.status


def _record(order: Order, succeeded: bool, transaction_id: str, transaction_status: str) -> str:
    status = OrderStatus.PAID if succeeded else OrderStatus.DECLINED
    Order.objects.filter(pk=order.pk).update(status=status, transaction_id=transaction_id,
                                             transaction_status=transaction_status, updated_at=timezone.now())
    if succeeded:
        receipt.delay(order.pk)
    return status


@app.task(name="bench.pay")
def pay(order_id: int) -> None:
    """The push peer: charge one order, record it, push its final state to the user's websockets."""
    order = Order.objects.get(pk=order_id)
    succeeded, transaction_id, transaction_status = _charge(order)
    status = _record(order, succeeded, transaction_id, transaction_status)
    event = {
        "type": JOB_UPDATE,
        "job": {
            "id": None,
            "kind": "payment",
            "status": "ok" if succeeded else "failed",
            "progress": 100,
            "subject": {"type": "orders.order", "id": str(order.pk)},
            "finished_at": timezone.now().isoformat(),
        },
        "message": f"Payment of {order.amount} {status} (transaction {transaction_id})",
    }
    async_to_sync(_group_send)(user_group(order.user_id), event)


@app.task(name="bench.pay_polled", bind=True)
def pay_polled(self, order_id: int) -> dict:
    """The polling peer: charge one order with celery-progress's progress, and return the outcome."""
    order = Order.objects.get(pk=order_id)
    succeeded, transaction_id, transaction_status = _charge(order, ProgressRecorder(self))
    status = _record(order, succeeded, transaction_id, transaction_status)
    return {"order": order.pk, "status": status, "transaction": transaction_id,
            "message": f"Payment of {order.amount} {status} (transaction {transaction_id})"}


@app.task(name="bench.receipt")
def receipt(order_id: int) -> str:
    """Email a paid order's receipt, as ``orders.services.receipt_compose`` and ``receipt_send`` do."""
    order = Order.objects.select_related("user").get(pk=order_id)
    if not order.user.email:
        return ""
    send_mail(
        subject=f"Receipt for order #{order.pk}",
        message=(f"Thank you for your payment of {order.amount}.\n"
                 f"Order: #{order.pk}\nTransaction: {order.transaction_id}\n"),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[order.user.email],
    )
    return order.user.email
