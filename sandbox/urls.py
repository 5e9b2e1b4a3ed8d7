from django.urls import include, path

from sandbox import gateway, network, openlibrary

app_name = "sandbox"

services = [
    path("gateway/transactions/", gateway.transactions, name="gateway-transactions"),
    path("gateway/transactions/<str:transaction_id>/", gateway.transaction_detail, name="gateway-transaction"),
    path("gateway/transactions/<str:transaction_id>/submit_for_settlement/", gateway.submit_for_settlement,
         name="gateway-submit-for-settlement"),
    path("openlibrary/api/books", openlibrary.books, name="openlibrary-books"),
]

urlpatterns = [
    *services,
    # The same services with a latency and a failure rate of the caller's choosing.
    path("simulate/<int:latency_ms>ms/<int:failure_pct>pct/", include((services, "simulate"))),
    # Braintree's testing API: settle, decline settlement, dispute; each sends its webhook.
    path("gateway/testing/transactions/<str:transaction_id>/<str:action>/", gateway.testing, name="gateway-testing"),
    path("stats/", network.stats, name="stats"),
]
