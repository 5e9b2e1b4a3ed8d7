from django.urls import include, path

from sandbox import gateway, network, openlibrary

app_name = "sandbox"

services = [
    path("gateway/transactions/", gateway.transactions, name="gateway-transactions"),
    path("gateway/transactions/<str:transaction_id>/", gateway.transaction_detail, name="gateway-transaction"),
    path("openlibrary/api/books", openlibrary.books, name="openlibrary-books"),
]

urlpatterns = [
    *services,
    # The same services with a latency and a failure rate of the caller's choosing.
    path("simulate/<int:latency_ms>ms/<int:failure_pct>pct/", include((services, "simulate"))),
    path("stats/", network.stats, name="stats"),
]
