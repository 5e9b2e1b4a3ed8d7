"""The product's settings plus what the Celery peer (scenario 4) needs.

Only the URL configuration differs: it adds the endpoint that creates an
order and hands it to Celery.  Database, channel layer, gateway client and
everything else are the product's own.
"""

from project.settings import *  # noqa: F401,F403
from project.env import env_str

ROOT_URLCONF = "bench.celery_urls"
CELERY_BROKER_URL = env_str("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/1")
