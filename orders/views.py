from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from integrations.gateway import get_payment_gateway
from integrations.gateway.client import SIGNATURE_HEADER
from integrations.gateway.exceptions import InvalidWebhook
from orders.selectors import orders_for_user
from orders.serializers import OrderCreateSerializer, OrderSerializer
from orders.services import order_create, payment_event_receive
from project.throttling import ScopedThrottle

logger = logging.getLogger(__name__)


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


# --- webhooks: the gateway's word after the sale ---------------------------------------


def _refused(exc: InvalidWebhook) -> JsonResponse:
    logger.warning("Refused a payment webhook: %s", exc)
    return JsonResponse({"code": "invalid_webhook", "message": str(exc)}, status=400)


@csrf_exempt
@require_POST
def braintree_webhook(request: HttpRequest) -> HttpResponse:
    """Braintree's webhooks (``bt_signature`` and ``bt_payload``), verified by its SDK with our keys."""
    if settings.PAYMENT_GATEWAY != "braintree":
        return JsonResponse({"code": "not_found", "message": "Braintree is not this deployment's gateway."},
                            status=404)
    try:
        notification = get_payment_gateway().parse_webhook(
            signature=request.POST.get("bt_signature", ""), payload=request.POST.get("bt_payload", "")
        )
    except InvalidWebhook as exc:
        return _refused(exc)
    payment_event_receive(source="braintree", notification=notification)
    return HttpResponse(status=200)


@csrf_exempt
@require_POST
def sandbox_webhook(request: HttpRequest) -> HttpResponse:
    """The sandbox gateway's webhooks: JSON, signed with the merchant key."""
    if settings.PAYMENT_GATEWAY != "sandbox":
        return JsonResponse({"code": "not_found", "message": "The sandbox is not this deployment's gateway."},
                            status=404)
    try:
        notification = get_payment_gateway().parse_webhook(
            body=request.body, signature=request.headers.get(SIGNATURE_HEADER, "")
        )
    except InvalidWebhook as exc:
        return _refused(exc)
    payment_event_receive(source="sandbox", notification=notification)
    return HttpResponse(status=200)
