"""The Celery peer of scenario 4: the same payment job, run by Celery with a Redis broker.

The task does exactly the job's three steps with the product's own parts:
it calls the sandbox gateway through the product's ``GatewayClient`` (search,
sale, find: the same calls as ``orders.services.payment_process``), writes
the ``Order`` row, and pushes a ``job.update`` event to the user's group
through the product's channel layer, which ``/ws/status/`` forwards as a
``job`` frame.  It keeps no durable job record, claim or progress events:
that is the work our product does on top, and the comparison counts it
against us.

Start a worker with ``DJANGO_SETTINGS_MODULE=bench.celery_settings
celery -A bench.celery_app worker ...``.  Celery is a benchmark dependency
only (requirements-bench.txt).
"""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.celery_settings")

import django  # noqa: E402

django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from celery import Celery  # noqa: E402
from celery.signals import worker_ready  # noqa: E402
from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.names import CELERY_QUEUE  # noqa: E402
from integrations.gateway import Outcome, get_payment_gateway  # noqa: E402
from jobs.messages import send_group_event  # noqa: E402
from orders.models import Order, OrderStatus  # noqa: E402
from project.names import JOB_UPDATE, user_group  # noqa: E402

logger = logging.getLogger(__name__)

app = Celery("bench", broker=settings.CELERY_BROKER_URL)
app.conf.update(
    task_default_queue=CELERY_QUEUE,
    task_ignore_result=True,  # the result travels over the channel layer, as ours does
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@worker_ready.connect
def _ready(**_) -> None:
    # The harness waits for this line (the worker logs at WARNING only, so
    # Celery's per-task INFO lines cost it nothing, as ours log nothing per job).
    print(f"celery worker {os.getpid()} ready", file=sys.stderr, flush=True)


@app.task(name="bench.pay")
def pay(order_id: int) -> None:
    """Charge one order: gateway, order row, status event."""
    order = Order.objects.get(pk=order_id)
    gateway = get_payment_gateway()
    existing = [t for t in gateway.find_by_reference(order.reference) if t.holds_money]
    sale = existing[0] if existing else gateway.sale(amount=order.amount, nonce=order.nonce,
                                                     reference=order.reference, idempotency_key=order.reference)
    result = gateway.find(sale.id)
    succeeded = result.outcome is Outcome.SETTLING and result.amount == order.amount
    status = OrderStatus.PAID if succeeded else OrderStatus.DECLINED
    now = timezone.now()
    Order.objects.filter(pk=order.pk).update(
        status=status, transaction_id=sale.id, transaction_status=result.status, updated_at=now
    )
    event = {
        "type": JOB_UPDATE,
        "job": {
            "id": None,
            "kind": "payment",
            "status": "ok" if succeeded else "failed",
            "progress": 100,
            "subject": {"type": "orders.order", "id": str(order.pk)},
            "finished_at": now.isoformat(),
        },
        "message": f"Payment of {order.amount} {status} (transaction {sale.id})",
    }
    async_to_sync(send_group_event)(user_group(order.user_id), event)
