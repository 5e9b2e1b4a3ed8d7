"""Names shared by the Celery peer and the scenario that drives it (no imports: cheap everywhere)."""

# The Celery peer's queue, and the URL that hands it an order (scenario 4).
CELERY_QUEUE = "bench-payments"
CELERY_ORDERS_PATH = "bench/celery/orders/"
