"""Names shared by the Celery peers and the scenario that drives them (no imports: cheap everywhere)."""

# The Celery peers' queues: payments, and the receipts each paid order sends
# (our product's ``emails`` channel).
CELERY_QUEUE = "bench-payments"
CELERY_EMAILS_QUEUE = "bench-emails"
# The URL that hands the push peer an order (its final state comes as a websocket frame).
CELERY_ORDERS_PATH = "bench/celery/orders/"
# The URL that hands the polling peer an order and answers with the task id to poll.
CELERY_POLL_ORDERS_PATH = "bench/celery/polled-orders/"
# celery-progress's own endpoint, mounted where its README mounts it: GET <prefix><task id>/.
CELERY_PROGRESS_PATH = "celery-progress/"
# celery-progress's default poll interval (celery_progress.js, pollInterval), in seconds.
CELERY_PROGRESS_INTERVAL = 0.5
# BENCH_CELERY_MODE: which peer a process of the Celery stack belongs to.
PUSH = "push"
POLL = "poll"
