"""Braintree itself, through its official SDK: chosen with ``PAYMENT_GATEWAY=braintree``."""

from integrations.braintree.client import BraintreeClient

__all__ = ["BraintreeClient"]
