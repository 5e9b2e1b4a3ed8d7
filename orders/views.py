from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from project.throttling import ScopedThrottle

from orders.selectors import orders_for_user
from orders.serializers import OrderCreateSerializer, OrderSerializer
from orders.services import order_create


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Payments: accepted at once, charged in the background."""

    serializer_class = OrderSerializer
    # Bounded so a huge id is a 404 from the URL, not an overflow in the database.
    lookup_value_regex = r"[0-9]{1,18}"
    throttle_scope = "orders"

    def get_throttles(self):
        # Only creating costs money; reading is never throttled.
        return [ScopedThrottle()] if self.action == "create" else []

    def get_queryset(self):
        return orders_for_user(user=self.request.user)

    @extend_schema(request=OrderCreateSerializer, responses={202: OrderSerializer})
    def create(self, request):
        """Accept a payment: answers 202 at once; follow it on /ws/status/ or at `url`."""
        params = OrderCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        order = order_create(user=request.user, **params.validated_data)
        body = OrderSerializer(order, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]})
