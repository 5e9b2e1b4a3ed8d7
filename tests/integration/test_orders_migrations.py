"""Orders made before references existed keep the id the gateway knows them by."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]

BEFORE = [("orders", "0001_initial")]
AFTER = [("orders", "0002_order_reference_and_payment_events")]


def test_existing_orders_are_referenced_by_their_id_as_they_were_sold(django_user_model):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    user = old.get_model("auth", "User").objects.create(username="before-references")
    ids = [old.get_model("orders", "Order").objects.create(user_id=user.pk, amount="9.99", nonce="n").pk
           for _ in range(3)]
    try:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        references = dict(new.get_model("orders", "Order").objects.filter(pk__in=ids).values_list("pk", "reference"))
        # The bare id, as earlier versions sent it as Braintree's order_id: a retry's search still finds the sale.
        assert references == {pk: str(pk) for pk in ids}
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
