"""Django settings: the one place that reads the environment.

Every value has a default that runs the product on one machine with no
services (SQLite, the in-memory channel layer, the sandbox).  Anything that
is unsafe in production is refused loudly with ``ImproperlyConfigured``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from limits import parse as _parse_rate

from project.env import env_bool, env_float, env_int, env_list, env_str, load_env_file
from project.names import EMAILS, EVENTS_LAYER, TASKS as TASKS_QUEUE

BASE_DIR = Path(__file__).resolve().parent.parent
# `make run` writes .env (DEBUG and a SECRET_KEY of its own), so manage.py,
# honcho and cron see the same configuration as the server.
ENV_FILE = load_env_file(BASE_DIR)

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY or SECRET_KEY == _DEV_SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a long random value when DEBUG is off "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
        )
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Before "channels", so our runworker replaces Channels' command.
    "jobs",
    "channels",
    "django_tasks",
    "orders",
    "books",
    "integrations",
    "sandbox",
    "web",
]

MIDDLEWARE = [
    "project.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A task a view enqueues reports to the request's signed-in user.
    "jobs.tasks.TaskOwnerMiddleware",
    # Last: the chain above runs in one thread (see its docstring).
    "project.middleware.OneThreadMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Security -----------------------------------------------------------------
# Secure by default when DEBUG is off; each can be relaxed from the environment.

if env_bool("BEHIND_TLS_PROXY", False):
    # The proxy terminates TLS and says so in this header; trust it only then.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Bodies larger than this are refused with 413 before anything reads them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BODY_BYTES", 256 * 1024, minimum=1024)

# --- Database -----------------------------------------------------------------

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Under ASGI every request may run on a thread of its own, so a
        # connection kept per thread would leak.  PostgreSQL gets a pool
        # instead (below); SQLite connections are cheap to open.
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A connection the server dropped (a restart, a failover, an idle
    # killer) sits in the pool looking alive until it is used.  With health
    # checks the pool checks each one on its way out (one round trip), and
    # our backend (project/postgresql) sweeps the whole pool once it meets a
    # dead one: a dead connection is replaced instead of failing a request
    # or a job.
    DATABASES["default"]["ENGINE"] = "project.postgresql"
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        # Enough for a worker's threads plus a few requests; keep the sum over
        # all processes under PostgreSQL's max_connections (100 by default).
        "max_size": env_int("DB_POOL_MAX_SIZE", 20, minimum=1),
        "timeout": 10,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes write to the same file: WAL lets readers run
    # beside a writer, IMMEDIATE takes the write lock up front so two
    # transactions never deadlock upgrading a read lock, and the timeout
    # waits for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / ".test-db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer ------------------------------------------------------------

REDIS_URL = env_str("REDIS_URL", "")
CHANNEL_LAYER_CAPACITY = env_int("CHANNEL_LAYER_CAPACITY", 1000, minimum=1)
CHANNEL_LAYER_EXPIRY = env_int("CHANNEL_LAYER_EXPIRY", 60, minimum=1)


def _redis_host(url: str) -> dict:
    # redis-py 8 defaults socket_timeout to 5 s, the same as channels-redis'
    # blocking BZPOPMIN, so an idle receive would time out and kill the
    # consumer every few seconds (django/channels_redis#422).  A longer read
    # timeout plus keepalive and health checks keeps idle connections alive
    # and still notices a dead server.
    return {
        "address": url,
        "socket_timeout": 15,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry_on_timeout": True,
    }


REDIS_SENTINELS = env_list("REDIS_SENTINELS")  # host:port,host:port
if REDIS_SENTINELS:
    try:
        _sentinels = [(host, int(port)) for host, port in (item.rsplit(":", 1) for item in REDIS_SENTINELS)]
    except ValueError:
        raise ImproperlyConfigured("REDIS_SENTINELS must be host:port pairs separated by commas.") from None
    _redis_hosts = [
        {
            "sentinels": _sentinels,
            "master_name": env_str("REDIS_SENTINEL_MASTER", "mymaster"),
            "sentinel_kwargs": {"socket_timeout": 5, "socket_connect_timeout": 5},
            **{k: v for k, v in _redis_host("").items() if k != "address"},
        }
    ]
else:
    # Several URLs shard the layer: channels, groups and process channels
    # are spread over them by consistent hashing (project.layers).
    _redis_hosts = [_redis_host(url) for url in env_list("REDIS_URL")]

if _redis_hosts:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "project.layers.RedisChannelLayer",
            "CONFIG": {
                "hosts": _redis_hosts,
                "capacity": CHANNEL_LAYER_CAPACITY,
                # Every websocket of one daphne process shares one Redis list
                # ("specific.<process>!"), so the per-channel capacity is
                # really per process; at 1,000 a burst of events for many
                # users is silently dropped by group_send.  Expiry bounds it.
                "channel_capacity": {"specific.*": env_int("CHANNEL_LAYER_PROCESS_CAPACITY", 100_000, minimum=1)},
                "expiry": CHANNEL_LAYER_EXPIRY,
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "asgi"),
            },
        },
        # Group events (job updates for the user's websockets) on Redis
        # pub/sub: one PUBLISH per event, pushed to every daphne that has a
        # subscriber, where the list-based layer costs each daphne a receive
        # of several round trips per event.  Nothing is stored: an event
        # published while Redis is away is lost, and the websockets get a
        # snapshot when the layer reconnects (project.layers).
        EVENTS_LAYER: {
            "BACKEND": "project.layers.EventsChannelLayer",
            "CONFIG": {"hosts": _redis_hosts, "prefix": env_str("CHANNEL_LAYER_PREFIX", "asgi") + ".events"},
        },
    }
    _encryption_keys = env_list("CHANNEL_LAYER_ENCRYPTION_KEYS")
    if _encryption_keys:
        for _layer in CHANNEL_LAYERS.values():
            _layer["CONFIG"]["symmetric_encryption_keys"] = _encryption_keys
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_LAYER_CAPACITY, "expiry": CHANNEL_LAYER_EXPIRY},
        },
        EVENTS_LAYER: {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": CHANNEL_LAYER_CAPACITY, "expiry": CHANNEL_LAYER_EXPIRY},
        },
    }

# Rate limits shared by every process of the deployment (OpenLibrary's
# pace) live in Redis when there is one; in memory for the one-process default.
if REDIS_SENTINELS:
    RATE_LIMIT_STORAGE_URI = (
        "redis+sentinel://" + ",".join(REDIS_SENTINELS) + "/" + env_str("REDIS_SENTINEL_MASTER", "mymaster")
    )
elif REDIS_URL:
    RATE_LIMIT_STORAGE_URI = env_list("REDIS_URL")[0]
else:
    RATE_LIMIT_STORAGE_URI = "memory://"

# Throttle counters must be shared by every web process, so they live in
# Redis when there is one (project.throttling counts there atomically).  One
# connection pool per process: Django's own would make one per request under
# daphne.  Short timeouts, because the throttle lets requests through when
# Redis is unreachable, and should not first hold each one for seconds.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_list("REDIS_URL")[0],
        "OPTIONS": {
            "pool_class": "project.throttling.SharedConnectionPool",
            "socket_connect_timeout": 1,
            "socket_timeout": 1,
        },
    }
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Without Redis there is no way for a separate worker process to reach the
# server's channels, so the server runs the background workers itself.
EMBEDDED_WORKERS = env_bool("EMBEDDED_WORKERS", not _redis_hosts)
# With embedded workers no other process can reach their in-memory channels,
# so the server requeues stuck work itself: everything unfinished once at
# start (nothing else can be running it), then every EMBEDDED_REQUEUE_INTERVAL
# seconds what has been untouched for EMBEDDED_REQUEUE_OLDER_THAN.
EMBEDDED_REQUEUE_INTERVAL = env_float("EMBEDDED_REQUEUE_INTERVAL", 60.0, minimum=1.0)
EMBEDDED_REQUEUE_OLDER_THAN = env_float("EMBEDDED_REQUEUE_OLDER_THAN", 300.0, minimum=0.0)

# --- Jobs and workers ---------------------------------------------------------

WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 10, minimum=1)
JOBS_SEND_TIMEOUT = env_float("JOBS_SEND_TIMEOUT", 2.0, minimum=0.1)
JOBS_RETRY_BASE_DELAY = env_float("JOBS_RETRY_BASE_DELAY", 1.0, minimum=0.0)
JOBS_RETRY_MAX_DELAY = env_float("JOBS_RETRY_MAX_DELAY", 60.0, minimum=0.0)
# The job kinds, each declared by its app (orders/kinds.py, books/kinds.py)
# and listed with its consumer in routing.py; a kind names its own setting
# of attempts among these.
JOBS_KINDS = "routing.job_kinds"
# Django's Tasks API (django-tasks; django.tasks on Django 6) runs on our
# workers: each queue is a background channel, routed to the task consumer
# (routing.py), so `runworker --only-channels emails` picks it like any
# other.  TASKS_BACKEND=immediate runs every task in its caller instead,
# as plain Django does (no worker, no record).
TASKS_BACKEND = env_str("TASKS_BACKEND", "channels").strip().lower()
if TASKS_BACKEND not in ("channels", "immediate"):
    raise ImproperlyConfigured(f"TASKS_BACKEND must be 'channels' or 'immediate', got {TASKS_BACKEND!r}.")
TASKS = {
    "default": {
        "BACKEND": "jobs.backends.ChannelsBackend"
        if TASKS_BACKEND == "channels"
        else "django_tasks.backends.immediate.ImmediateBackend",
        "QUEUES": [TASKS_QUEUE, EMAILS],
    }
}
PAYMENT_MAX_ATTEMPTS = env_int("PAYMENT_MAX_ATTEMPTS", 10, minimum=1)
RECEIPT_MAX_ATTEMPTS = env_int("RECEIPT_MAX_ATTEMPTS", 5, minimum=1)
BOOKS_MAX_ATTEMPTS = env_int("BOOKS_MAX_ATTEMPTS", 5, minimum=1)
# Attempts of a payment whose card was softly declined, or whose nonce was
# spent with no charge of ours to be found: worth a second look, rarely a tenth.
PAYMENT_DECLINE_ATTEMPTS = env_int("PAYMENT_DECLINE_ATTEMPTS", 3, minimum=1)
# Seconds a sale whose answer was lost may still take to land at a gateway
# that honours no idempotency key (Braintree): until then no second sale is
# sent, only searches.  Well past GATEWAY_READ_TIMEOUT, and past how long a
# request can linger on the network.
PAYMENT_LOST_SALE_WAIT = env_float("PAYMENT_LOST_SALE_WAIT", 120.0, minimum=0.0)
JOBS_SNAPSHOT_RECENT = env_int("JOBS_SNAPSHOT_RECENT", 20, minimum=0)
# A running job's updates (running, progress) are held back this long, so a
# job that ends sooner is only "queued" then "ok" on the page, and then sent
# at most once per interval, the newest winning (jobs.events).  Queued,
# retrying and final states always go out at once.
JOBS_EVENT_HOLD = env_float("JOBS_EVENT_HOLD", 0.25, minimum=0.0)
JOBS_EVENT_INTERVAL = env_float("JOBS_EVENT_INTERVAL", 1.0, minimum=0.0)
# Bytes a websocket's server may hold for a client that reads too slowly
# (or not at all) before it is closed with 4008; its reconnect gets a
# snapshot.  Bounds daphne's memory per socket.
WS_SEND_BUFFER_MAX = env_int("WS_SEND_BUFFER_MAX", 1024 * 1024, minimum=1024)
# The models a job message may name as "<app_label>.<Model>"; anything else
# fails the job.  Checked against the app registry once apps are ready.
JOBS_ALLOWED_MODELS = env_list(
    "JOBS_ALLOWED_MODELS",
    ["orders.Order", "books.Book", "books.BookBatch"],
)

# --- Third parties ------------------------------------------------------------

SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", DEBUG)
SANDBOX_LATENCY_MS = env_int("SANDBOX_LATENCY_MS", 0, minimum=0)
SANDBOX_FAILURE_RATE = env_float("SANDBOX_FAILURE_RATE", 0.0, minimum=0.0, maximum=1.0)
# A sale reaches the sandbox gateway this long after it was sent, and lands
# even if its caller timed out meanwhile: the slow gateway of issue #19.
SANDBOX_SALE_DELAY_MS = env_int("SANDBOX_SALE_DELAY_MS", 0, minimum=0)

# Which payment gateway get_payment_gateway() returns: "sandbox" is the
# Braintree-shaped JSON gateway at PAYMENT_GATEWAY_URL (our own sandbox by
# default), "braintree" is Braintree itself through its official SDK.
PAYMENT_GATEWAY = env_str("PAYMENT_GATEWAY", "sandbox").strip().lower()
if PAYMENT_GATEWAY not in ("sandbox", "braintree"):
    raise ImproperlyConfigured(f"PAYMENT_GATEWAY must be 'sandbox' or 'braintree', got {PAYMENT_GATEWAY!r}.")

PAYMENT_GATEWAY_URL = env_str(
    "PAYMENT_GATEWAY_URL",
    # Not derived from PORT: worker processes (under honcho, say) have ports
    # of their own.  Set it when the web server is elsewhere.
    "http://127.0.0.1:8000/sandbox/gateway/" if SANDBOX_ENABLED else "",
)
if PAYMENT_GATEWAY == "sandbox" and not PAYMENT_GATEWAY_URL:
    raise ImproperlyConfigured(
        "PAYMENT_GATEWAY_URL must be set when the sandbox is disabled (or set PAYMENT_GATEWAY=braintree)."
    )

def _derived_key(purpose: str) -> str:
    # Every process of one deployment shares SECRET_KEY, so each derives the same key.
    return hmac.new(SECRET_KEY.encode(), purpose.encode(), hashlib.sha256).hexdigest()[:40]


# The sandbox gateway refuses any call without its merchant key, as a real
# gateway refuses calls without API keys; the client sends PAYMENT_GATEWAY_KEY.
SANDBOX_GATEWAY_KEY = env_str("SANDBOX_GATEWAY_KEY", _derived_key("sandbox-gateway-merchant-key"))
PAYMENT_GATEWAY_KEY = env_str("PAYMENT_GATEWAY_KEY", SANDBOX_GATEWAY_KEY if SANDBOX_ENABLED else "")
if PAYMENT_GATEWAY == "sandbox" and not PAYMENT_GATEWAY_KEY:
    raise ImproperlyConfigured(
        "PAYMENT_GATEWAY_KEY must be set: the merchant key of the gateway at PAYMENT_GATEWAY_URL."
    )
# Where the sandbox sends its webhooks; by default the product's own /webhooks/sandbox/ on the caller's host.
SANDBOX_WEBHOOK_URL = env_str("SANDBOX_WEBHOOK_URL", "")

# What an order is charged in: a transaction in another currency is never taken as its payment.
PAYMENT_CURRENCY = env_str("PAYMENT_CURRENCY", "USD").strip().upper()
if not re.fullmatch(r"[A-Z]{3}", PAYMENT_CURRENCY):
    raise ImproperlyConfigured(f"PAYMENT_CURRENCY must be an ISO 4217 code such as USD, got {PAYMENT_CURRENCY!r}.")
# Each order is sent to the gateway as this prefix plus a UUID of its own, so
# no other deployment or database on the same merchant account can share it.
PAYMENT_REFERENCE_PREFIX = env_str("PAYMENT_REFERENCE_PREFIX", "order-")
if not re.fullmatch(r"[A-Za-z0-9_.-]{0,40}", PAYMENT_REFERENCE_PREFIX):
    raise ImproperlyConfigured("PAYMENT_REFERENCE_PREFIX must be at most 40 letters, digits, '.', '_' or '-'.")

# Bound every gateway call, the JSON client's and the Braintree SDK's alike.
GATEWAY_CONNECT_TIMEOUT = env_float("GATEWAY_CONNECT_TIMEOUT", 5.0, minimum=0.1)
GATEWAY_READ_TIMEOUT = env_float("GATEWAY_READ_TIMEOUT", 20.0, minimum=0.1)

# Braintree's API keys (Control Panel → Settings → API).  "sandbox" here is
# Braintree's own sandbox, not ours.
BRAINTREE_MERCHANT_ID = env_str("BRAINTREE_MERCHANT_ID", "")
BRAINTREE_PUBLIC_KEY = env_str("BRAINTREE_PUBLIC_KEY", "")
BRAINTREE_PRIVATE_KEY = env_str("BRAINTREE_PRIVATE_KEY", "")
BRAINTREE_ENVIRONMENT = env_str("BRAINTREE_ENVIRONMENT", "sandbox").strip().lower()
# The merchant account decides the currency of a sale; empty: the account's default.
BRAINTREE_MERCHANT_ACCOUNT_ID = env_str("BRAINTREE_MERCHANT_ACCOUNT_ID", "")
if BRAINTREE_ENVIRONMENT not in ("sandbox", "production"):
    raise ImproperlyConfigured(
        f"BRAINTREE_ENVIRONMENT must be 'sandbox' or 'production', got {BRAINTREE_ENVIRONMENT!r}."
    )
if PAYMENT_GATEWAY == "braintree":
    _missing = [
        name
        for name, value in (
            ("BRAINTREE_MERCHANT_ID", BRAINTREE_MERCHANT_ID),
            ("BRAINTREE_PUBLIC_KEY", BRAINTREE_PUBLIC_KEY),
            ("BRAINTREE_PRIVATE_KEY", BRAINTREE_PRIVATE_KEY),
        )
        if not value.strip()
    ]
    if _missing:
        raise ImproperlyConfigured(f"PAYMENT_GATEWAY=braintree needs {', '.join(_missing)}.")

# The sandbox's OpenLibrary sits beside its gateway: deriving it from
# PAYMENT_GATEWAY_URL keeps `make run PORT=...` and the e2e stacks, which set
# only that URL, pointing at their own server.
_SANDBOX_BASE = (
    PAYMENT_GATEWAY_URL.removesuffix("gateway/")
    if PAYMENT_GATEWAY_URL.endswith("/sandbox/gateway/")
    else "http://127.0.0.1:8000/sandbox/"
)
OPENLIBRARY_URL = env_str(
    "OPENLIBRARY_URL", _SANDBOX_BASE + "openlibrary" if SANDBOX_ENABLED else "https://openlibrary.org"
).rstrip("/")
OPENLIBRARY_CONNECT_TIMEOUT = env_float("OPENLIBRARY_CONNECT_TIMEOUT", 5.0, minimum=0.1)
OPENLIBRARY_READ_TIMEOUT = env_float("OPENLIBRARY_READ_TIMEOUT", 20.0, minimum=0.1)
# OpenLibrary blocks clients that do not name themselves with a contact (an
# email or a URL) with 403.  Only the sandbox may be called without one.
_OPENLIBRARY_SANDBOX = OPENLIBRARY_URL.startswith(_SANDBOX_BASE) or "/sandbox/" in OPENLIBRARY_URL
OPENLIBRARY_USER_AGENT = env_str(
    "OPENLIBRARY_USER_AGENT", "books-catalogue/0.1 (+http://127.0.0.1/sandbox/)" if _OPENLIBRARY_SANDBOX else ""
)
if not _OPENLIBRARY_SANDBOX and not re.search(r"[^@\s()]+@[^@\s()]+\.\w+|https?://\S+", OPENLIBRARY_USER_AGENT):
    raise ImproperlyConfigured(
        "OPENLIBRARY_USER_AGENT must name this application with a contact (an email or a URL), e.g. "
        "'MyLibrary/1.0 (ops@example.com)': OpenLibrary blocks clients that do not."
    )
# OpenLibrary allows an identified client about 180 requests a minute; we keep
# below it, for other clients on the same name and for clocks that disagree.
# Every worker process shares it (in Redis when there is one).
OPENLIBRARY_RATE_LIMIT = env_str("OPENLIBRARY_RATE_LIMIT", "150/minute")
# What the sandbox OpenLibrary allows each client, answering 429 beyond it, as OpenLibrary does.
SANDBOX_OPENLIBRARY_RATE_LIMIT = env_str("SANDBOX_OPENLIBRARY_RATE_LIMIT", "180/minute")
for _name, _rate in (("OPENLIBRARY_RATE_LIMIT", OPENLIBRARY_RATE_LIMIT),
                     ("SANDBOX_OPENLIBRARY_RATE_LIMIT", SANDBOX_OPENLIBRARY_RATE_LIMIT)):
    try:
        _parse_rate(_rate)
    except ValueError:
        raise ImproperlyConfigured(f"{_name} must be a rate such as 180/minute or '60 per 5 seconds', got {_rate!r}.")
# ISBNs one POST /api/books/bulk/ may carry.
BOOKS_BULK_MAX = env_int("BOOKS_BULK_MAX", 500, minimum=1)

# --- Email (receipts) ----------------------------------------------------------

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "receipts@localhost")

# --- Demo user ----------------------------------------------------------------

DEMO_USER_ENABLED = env_bool("DEMO_USER_ENABLED", DEBUG)
DEMO_USERNAME = env_str("DEMO_USERNAME", "demo")
DEMO_PASSWORD = env_str("DEMO_PASSWORD", "demo-password")

# --- API ----------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's, with JSON nested too deep for the parser a 400, not a 500.
    "DEFAULT_PARSER_CLASSES": ["project.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "project.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "project.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        # Per user: creating orders costs a gateway call each.
        "orders": env_str("ORDER_THROTTLE_RATE", "120/minute"),
        # Per user: each bulk registration costs up to BOOKS_BULK_MAX lookups.
        "books": env_str("BOOKS_THROTTLE_RATE", "30/minute"),
        # Per client address: password guessing on the token endpoint.
        "auth": env_str("AUTH_THROTTLE_RATE", "30/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Background jobs API",
    "DESCRIPTION": "Accept slow third-party work, run it in the background, watch it live.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's assets are served from our static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Three serializers share the book status; one name for its enum.
    "ENUM_NAME_OVERRIDES": {"BookStatusEnum": "books.models.BookStatus"},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "project.openapi.add_error_responses",
    ],
}

# --- Auth, i18n, static ---------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the source folders so a fresh clone needs no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": sys.stderr, "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "daphne": {"level": "WARNING"},
    },
}
