"""The payment gateway: a Braintree-shaped two-step flow (sale, then find)."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from integrations.gateway.client import GatewayClient, Transaction

__all__ = ["GatewayClient", "Transaction", "get_payment_gateway"]


@lru_cache(maxsize=1)
def _client(base_url: str, connect: float, read: float) -> GatewayClient:
    return GatewayClient(base_url=base_url, timeout=(connect, read))


def get_payment_gateway() -> GatewayClient:
    """The configured gateway client, shared by all of a process's threads."""
    return _client(
        settings.PAYMENT_GATEWAY_URL,
        settings.GATEWAY_CONNECT_TIMEOUT,
        settings.GATEWAY_READ_TIMEOUT,
    )
