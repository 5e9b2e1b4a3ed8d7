"""Factories for test data, built through the product's own services."""

from __future__ import annotations

from decimal import Decimal

from orders.models import Order
from orders.services import order_create


def make_order(user, *, amount: str = "12.50", nonce: str = "fake-valid-nonce") -> Order:
    return order_create(user=user, amount=Decimal(amount), nonce=nonce)
