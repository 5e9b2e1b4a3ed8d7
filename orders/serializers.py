from __future__ import annotations

import re
from decimal import Decimal

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from orders.models import Order
from project.api import StrictCharField


# Money travels as a string: a positive amount, at most 8 digits before the
# point and 2 after, no sign, no exponent, no spaces.  The same pattern is in
# the schema, so what the schema allows the API accepts, and nothing else.
# Matched whole (fullmatch): Python's "$" also matches before a final newline.
AMOUNT_PATTERN = r"[1-9][0-9]{0,7}(\.[0-9]{1,2})?|0\.([1-9][0-9]?|0[1-9])"


@extend_schema_field({"type": "string", "pattern": f"^({AMOUNT_PATTERN})$", "example": "12.50"})
class AmountField(serializers.DecimalField):
    default_error_messages = {
        "format": 'Send the amount as a string like "12.50": digits, at most two decimals, no sign.',
    }

    def __init__(self, **kwargs):
        super().__init__(max_digits=10, decimal_places=2, min_value=Decimal("0.01"), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not re.fullmatch(AMOUNT_PATTERN, data):
            self.fail("format")
        return super().to_internal_value(data)


# Gateway nonces are opaque tokens of letters, digits, "-" and "_".  \A and
# \Z, not ^ and $: "$" would let a final newline through, to be stored and
# sent on (drf-spectacular writes them as ^ and $ in the schema).
NONCE_PATTERN = r"\A[A-Za-z0-9_-]{1,100}\Z"


class OrderCreateSerializer(serializers.Serializer):
    amount = AmountField(help_text='Amount to charge, as a string such as "12.50"; more than zero.')
    nonce = StrictCharField(
        max_length=100,
        trim_whitespace=False,
        validators=[RegexValidator(NONCE_PATTERN, "A nonce is letters, digits, '-' and '_' only.")],
        help_text="Payment method nonce from the gateway's client SDK (sandbox: fake-valid-nonce).",
    )


class OrderSerializer(serializers.ModelSerializer):
    job = serializers.PrimaryKeyRelatedField(read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "status",
            "amount",
            "currency",
            "reference",
            "transaction_id",
            "transaction_status",
            "dispute",
            "error",
            "job",
            "url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_url(self, order: Order) -> str:
        return reverse("order-detail", args=[order.pk], request=self.context.get("request"))
