from django.db.models import QuerySet

from orders.models import Order


def orders_for_user(*, user) -> QuerySet[Order]:
    """Only the caller's own orders: everything else is a 404, never a 403."""
    return Order.objects.filter(user=user).select_related("job")
