"""The one place that maps websocket paths and background channels to consumers."""

from channels.routing import ChannelNameRouter
from django.urls import path

from consumers.books import BookBatchConsumer, BookConsumer
from consumers.emails import ReceiptConsumer
from consumers.payments import PaymentConsumer
from consumers.status import StatusConsumer
from project import names

websocket_urlpatterns = [
    path(names.WS_STATUS_PATH, StatusConsumer.as_asgi()),
]

channel_routes = {
    names.PAYMENTS: PaymentConsumer.as_asgi(),
    names.EMAILS: ReceiptConsumer.as_asgi(),
    names.BOOKS: BookConsumer.as_asgi(),
    names.BOOK_BATCHES: BookBatchConsumer.as_asgi(),
}

channel_router = ChannelNameRouter(channel_routes)
