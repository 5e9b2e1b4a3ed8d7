"""Channel names, group names and message types, defined once.

Routing, senders, consumers, the Procfile and the tests all import these.
Message types are dotted; Channels maps ``job.run`` to the handler ``job_run``.
"""

# Background channels.
PAYMENTS = "payments"
EMAILS = "emails"  # a task queue (Django's Tasks API): receipts
TASKS = "default"  # the task queue of a @task that names none
BOOKS = "books"  # one OpenLibrary lookup per message
# A batch's own job: it finishes with its last book; a message here only
# re-checks a batch (on creation, and when requeue finds it stalled).
BOOK_BATCHES = "book-batches"

# Message types.
JOB_RUN = "job.run"  # channel message: run (or resume) the job with this id
JOB_UPDATE = "job.update"  # group message: a job changed state
ORDER_UPDATE = "order.update"  # group message: the gateway changed an order after its job (a webhook)
# Local message: the events layer lost its connection and has it back, so
# events may have been missed; a websocket answers it with a fresh snapshot.
EVENTS_RESYNC = "events.resync"

# The channel layer alias that group events travel on (Redis pub/sub when
# there is Redis); job.run stays on the default, list-based layer.
EVENTS_LAYER = "events"

# Websocket event types, as the browser sees them.
EVENT_SNAPSHOT = "snapshot"
EVENT_JOB = "job"
EVENT_ORDER = "order"
EVENT_ERROR = "error"
EVENT_PONG = "pong"

# Websocket paths.
WS_STATUS_PATH = "ws/status/"

# Websocket close codes of our own, in the range RFC 6455 leaves to applications.
# A client frame over the status socket's 4 KiB: RFC 6455's 1009 means the same,
# but autobahn lets a server application close only with 1000 or 3000-4999, so
# daphne would log an error and close with 1011 instead.
WS_CLOSE_TOO_BIG = 4009


def user_group(user_id: int) -> str:
    """The group every websocket of one user joins, and only that user's."""
    return f"user.{int(user_id)}"
