from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from orders import requeue  # noqa: F401  (registers the requeue reasons)
