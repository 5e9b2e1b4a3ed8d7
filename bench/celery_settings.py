"""The product's settings plus what the Celery peers (scenario 4) need.

The URL configuration adds the endpoints that create an order and hand it
to Celery, and celery-progress's endpoint; ``django_celery_results`` keeps
the polling peer's task results in the product's own database.  Database,
channel layers, gateway client, email and everything else are the product's
own.
"""

from project.settings import *  # noqa: F401,F403
from project.settings import INSTALLED_APPS
from project.env import env_str

ROOT_URLCONF = "bench.celery_urls"
INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_results"]
CELERY_BROKER_URL = env_str("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/1")
# "push": results travel over the channel layer, none is stored.
# "poll": results and progress are stored by django-celery-results, and pages poll them.
BENCH_CELERY_MODE = env_str("BENCH_CELERY_MODE", "push")
