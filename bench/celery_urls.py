"""The product's URLs plus the Celery peers' own (scenario 4).

* ``POST /bench/celery/orders/``: an order handed to the push peer; answers
  202 with the order's id, and the final state comes as a websocket frame.
* ``POST /bench/celery/polled-orders/``: an order handed to the polling peer;
  answers 202 with the order's id and the task id the page polls.
* ``GET /celery-progress/<task_id>/``: celery-progress's own view
  (``celery_progress.urls``, unchanged), which reads the task's state from
  django-celery-results.  Like celery-progress's, it takes no login: the
  task id is the secret, so the peer pays for no authentication there.

The order views mirror ``OrderViewSet.create`` (token auth, the same
throttle, the same validation, one transaction) but write only the order
and queue the Celery task after commit.
"""

from __future__ import annotations

from functools import partial

from celery import uuid
from django.db import transaction
from django.urls import include, path
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.celery_app import pay, pay_polled
from bench.names import CELERY_ORDERS_PATH, CELERY_POLL_ORDERS_PATH, CELERY_PROGRESS_PATH
from orders.models import Order
from orders.serializers import OrderCreateSerializer
from project.throttling import ScopedThrottle
from project.urls import urlpatterns as product_urlpatterns


class CeleryOrderView(APIView):
    throttle_classes = [ScopedThrottle]
    throttle_scope = "orders"

    def post(self, request):
        params = OrderCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        with transaction.atomic():
            order = Order.objects.create(user=request.user, **params.validated_data)
            transaction.on_commit(partial(pay.delay, order.pk))
        return Response({"id": order.pk, "status": order.status}, status=status.HTTP_202_ACCEPTED)


class PolledOrderView(CeleryOrderView):
    def post(self, request):
        params = OrderCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        # The id is chosen here so the answer can carry it: the task is sent after commit.
        task_id = uuid()
        with transaction.atomic():
            order = Order.objects.create(user=request.user, **params.validated_data)
            transaction.on_commit(partial(pay_polled.apply_async, (order.pk,), task_id=task_id))
        return Response({"id": order.pk, "status": order.status, "task_id": task_id},
                        status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path(CELERY_ORDERS_PATH, CeleryOrderView.as_view()),
    path(CELERY_POLL_ORDERS_PATH, PolledOrderView.as_view()),
    path(CELERY_PROGRESS_PATH, include("celery_progress.urls")),
    *product_urlpatterns,
]
