from django.urls import path

from sandbox import gateway, openlibrary

app_name = "sandbox"

urlpatterns = [
    path("gateway/transactions/", gateway.transactions, name="gateway-transactions"),
    path("gateway/transactions/<str:transaction_id>/", gateway.transaction_detail, name="gateway-transaction"),
    path("openlibrary/api/books", openlibrary.books, name="openlibrary-books"),
]
