"""What a gateway transaction means: Braintree's statuses and processor responses, classified once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from integrations.gateway.transactions import Outcome, Transaction


def tx(status: str, code: str = "", kind: str = "", **fields) -> Transaction:
    return Transaction(id="t1", status=status, amount=Decimal("10.00"), order_id="order-x",
                       processor_response_code=code, processor_response_type=kind, **fields)


@pytest.mark.parametrize("status", ["submitted_for_settlement", "settlement_pending", "settling", "settled",
                                    "settlement_confirmed"])
def test_settling_statuses_are_money(status):
    assert tx(status, "1000", "approved").outcome is Outcome.SETTLING
    assert tx(status).holds_money


def test_authorized_holds_money_but_is_not_settling():
    authorized = tx("authorized", "1000", "approved")
    assert authorized.outcome is Outcome.AUTHORIZED and authorized.holds_money
    assert tx("authorizing").outcome is Outcome.PENDING


@pytest.mark.parametrize(
    "code, kind, expected",
    [
        ("2000", "soft_declined", Outcome.SOFT_DECLINE),  # Do Not Honor
        ("2001", "soft_declined", Outcome.SOFT_DECLINE),  # Insufficient Funds
        ("2004", "hard_declined", Outcome.HARD_DECLINE),  # Expired Card
        # Older answers carry no type: Braintree's code table decides.
        ("2000", "", Outcome.SOFT_DECLINE),
        ("2046", "", Outcome.SOFT_DECLINE),
        ("2004", "", Outcome.HARD_DECLINE),
        ("2015", "", Outcome.HARD_DECLINE),
        ("2047", "", Outcome.HARD_DECLINE),
        ("2500", "", Outcome.SOFT_DECLINE),  # the generic "Processor Declined" range
        # Nothing to go on: never retry a card blindly.
        ("", "", Outcome.HARD_DECLINE),
    ],
)
def test_declines_are_soft_or_hard_by_type_then_code(code, kind, expected):
    declined = tx("processor_declined", code, kind)
    assert declined.outcome is expected and not declined.holds_money


def test_a_processor_network_failure_is_neither_money_nor_a_decline():
    failed = tx("failed", "3000", "soft_declined", processor_response_text="Processor Network Unavailable - Try Again")
    assert failed.outcome is Outcome.PROCESSOR_UNAVAILABLE
    assert failed.decline_reason == "Processor Network Unavailable - Try Again (3000)"


def test_gateway_rejections_and_the_duplicate():
    assert tx("gateway_rejected", gateway_rejection_reason="fraud").outcome is Outcome.REJECTED
    duplicate = tx("gateway_rejected", gateway_rejection_reason="duplicate", duplicate_of="t0")
    assert duplicate.outcome is Outcome.DUPLICATE and duplicate.decline_reason == "Gateway rejected: duplicate"


@pytest.mark.parametrize("status", ["voided", "settlement_declined", "authorization_expired"])
def test_money_that_went_away(status):
    assert tx(status).outcome is Outcome.REVERSED and not tx(status).holds_money


def test_an_unknown_status_is_never_money():
    assert tx("something_new").outcome is Outcome.UNKNOWN and not tx("something_new").holds_money
