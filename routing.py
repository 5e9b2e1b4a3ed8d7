"""The one place that maps websocket paths and background channels to consumers.

Each declared job kind runs on its channel's consumer; each queue of
Django's Tasks API (``TASKS``, ``jobs.backends.ChannelsBackend``) is a
channel of its own, run by the task consumer.
"""

from channels.routing import ChannelNameRouter
from django.core.exceptions import ImproperlyConfigured
from django.urls import path

from books.kinds import BOOK, BOOK_BATCH
from consumers.books import BookBatchConsumer, BookConsumer
from consumers.payments import PaymentConsumer
from consumers.status import StatusConsumer
from jobs.backends import task_queues
from jobs.tasks import TaskConsumer
from orders.kinds import PAYMENT
from project import names

websocket_urlpatterns = [
    path(names.WS_STATUS_PATH, StatusConsumer.as_asgi()),
]

#: The declared job kinds (``JOBS_KINDS`` names this list).
job_kinds = (PAYMENT, BOOK, BOOK_BATCH)

channel_routes = {
    PAYMENT.channel: PaymentConsumer.as_asgi(),
    BOOK.channel: BookConsumer.as_asgi(),
    BOOK_BATCH.channel: BookBatchConsumer.as_asgi(),
}
for _queue in task_queues():
    if _queue in channel_routes:
        raise ImproperlyConfigured(f"Task queue {_queue!r} is already the channel of a job kind; name another queue")
    channel_routes[_queue] = TaskConsumer.as_asgi()

channel_router = ChannelNameRouter(channel_routes)
