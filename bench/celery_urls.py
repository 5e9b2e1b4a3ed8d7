"""The product's URLs plus ``POST /bench/celery/orders/``: an order handed to Celery.

The view mirrors ``OrderViewSet.create`` (token auth, the same throttle, the
same validation, one transaction) but writes only the order and queues the
Celery task after commit; it answers 202 with the order's id.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.urls import path
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from bench.celery_app import pay
from bench.names import CELERY_ORDERS_PATH
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


urlpatterns = [path(CELERY_ORDERS_PATH, CeleryOrderView.as_view()), *product_urlpatterns]
