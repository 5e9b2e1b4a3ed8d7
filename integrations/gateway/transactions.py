"""A gateway transaction, and what its status and processor response mean.

Braintree's semantics, which both clients share (the sandbox speaks the same
shape).  A transaction is only money when its status says the gateway holds
or settles it; everything else is classified here once, so the payment flow
decides on an ``Outcome``, never on raw strings.

Sources (see ``tests/fixtures/braintree/PROVENANCE.md``): Braintree's
transaction statuses and ``processor_response_type`` (``approved``,
``soft_declined``, ``hard_declined``); its authorization responses (1000s
approved, 2000s declined, 3000s a problem in the processing network); and its
per-code soft/hard table, used when an older answer carries no type.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import attrs


class Outcome(enum.Enum):
    """What a transaction means for the order it was made for."""

    #: Submitted for settlement, settling or settled: the money is, or will be, ours.
    SETTLING = "settling"
    #: Authorized only: the amount is held, and must be submitted for settlement.
    AUTHORIZED = "authorized"
    #: Still being authorized: ask again later.
    PENDING = "pending"
    #: Declined by the bank for now; it may accept later (2000 Do Not Honor, 2001 Insufficient Funds...).
    SOFT_DECLINE = "soft_decline"
    #: Declined for good (2004 Expired Card, 2015 Transaction Not Allowed...).
    HARD_DECLINE = "hard_decline"
    #: The processing network failed (status ``failed``, the 3000s): nobody declined anything.
    PROCESSOR_UNAVAILABLE = "processor_unavailable"
    #: Refused by the gateway's own rules (fraud, AVS, CVV...).
    REJECTED = "rejected"
    #: Refused as a duplicate of an earlier transaction, which it names.
    DUPLICATE = "duplicate"
    #: Money that was held or settled and is not any more (voided, settlement declined, expired).
    REVERSED = "reversed"
    UNKNOWN = "unknown"


SETTLING_STATUSES = frozenset(
    {"submitted_for_settlement", "settlement_pending", "settling", "settled", "settlement_confirmed"}
)
REVERSED_STATUSES = frozenset({"voided", "settlement_declined", "authorization_expired"})

# Braintree's hard declines (processor response codes); every other 2000s code
# is soft.  From Braintree's authorization-responses table, two independent
# copies of it agreeing code by code (PROVENANCE.md, "Processor response codes").
HARD_DECLINE_CODES = frozenset(
    {2004, 2005, 2006, 2007, 2008, 2009, 2010, 2011, 2012, 2013, 2014, 2015, 2017, 2018, 2019, 2020, 2021,
     2022, 2023, 2024, 2027, 2028, 2029, 2030, 2031, 2032, 2033, 2036, 2037, 2039, 2041, 2043, 2044, 2045,
     2047, 2049, 2050, 2051, 2052, 2053, 2054, 2055, 2056, 2058, 2059, 2060, 2061, *range(2063, 2078), 2079,
     *range(2081, 2092), *range(2093, 2099), 2100, 2107, 2108}
)


def decline_kind(code: str, response_type: str) -> Outcome:
    """Soft or hard, from the processor's response type, else from its code."""
    if response_type == "hard_declined":
        return Outcome.HARD_DECLINE
    if response_type == "soft_declined":
        return Outcome.SOFT_DECLINE
    try:
        number = int(code)
    except (TypeError, ValueError):
        return Outcome.HARD_DECLINE  # nothing to go on: never retry a card blindly
    return Outcome.HARD_DECLINE if number in HARD_DECLINE_CODES else Outcome.SOFT_DECLINE


@attrs.frozen
class Transaction:
    """A gateway transaction, as far as the payment flow needs it."""

    id: str
    status: str
    amount: Decimal
    #: The reference we sent as Braintree's ``order_id``.
    order_id: str
    currency: str = ""
    processor_response_code: str = ""
    processor_response_type: str = ""
    processor_response_text: str = ""
    gateway_rejection_reason: str = ""
    #: For a duplicate rejection, the transaction that did go through.
    duplicate_of: str = ""
    type: str = "sale"

    @property
    def outcome(self) -> Outcome:
        status = self.status
        if status in SETTLING_STATUSES:
            return Outcome.SETTLING
        if status == "authorized":
            return Outcome.AUTHORIZED
        if status == "authorizing":
            return Outcome.PENDING
        if status == "processor_declined":
            return decline_kind(self.processor_response_code, self.processor_response_type)
        if status == "failed":
            return Outcome.PROCESSOR_UNAVAILABLE
        if status == "gateway_rejected":
            return Outcome.DUPLICATE if self.gateway_rejection_reason == "duplicate" else Outcome.REJECTED
        if status in REVERSED_STATUSES:
            return Outcome.REVERSED
        return Outcome.UNKNOWN

    @property
    def holds_money(self) -> bool:
        """Whether this sale has charged, or holds, the customer's money (a credit never does)."""
        return self.type == "sale" and self.outcome in (Outcome.SETTLING, Outcome.AUTHORIZED, Outcome.PENDING)

    @property
    def decline_reason(self) -> str:
        """The processor's (or the gateway's) words for what happened, for the order's error."""
        if self.gateway_rejection_reason:
            return f"Gateway rejected: {self.gateway_rejection_reason}"
        text = self.processor_response_text or self.status.replace("_", " ").capitalize()
        return f"{text} ({self.processor_response_code})" if self.processor_response_code else text

    def describe(self) -> str:
        return f"transaction {self.id} ({self.status}, {self.amount} {self.currency or ''})".replace(" )", ")")


@attrs.frozen
class Notification:
    """A webhook from the gateway, once its signature is verified.

    ``kind`` is Braintree's (``transaction_settled``,
    ``transaction_settlement_declined``, ``dispute_opened`` ...);
    ``transaction`` is the transaction it is about, as the notification
    carries it.
    """

    kind: str
    transaction: Transaction
    dispute_status: str = ""
    #: When the gateway says it happened; None when the notification does not say.
    timestamp: datetime | None = None
