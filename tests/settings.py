"""Settings for the test process: the product's own, on development defaults.

Subprocesses started by the end-to-end tests do not use this module; they get
an explicit environment from ``devtools/stack.py``.
"""

import os

# Never a developer's .env: the suite runs on the environment it sets itself.
os.environ["ENV_FILE"] = ""
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
# The test process itself always uses the in-memory layer; tests that need
# Redis start their own server and say so explicitly.
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("EMBEDDED_WORKERS", "0")
# The merchant key of the sandbox server the tests start (devtools.sandbox),
# and of the sandbox mounted in this process.
from devtools.stack import MERCHANT_KEY  # noqa: E402

os.environ.setdefault("SANDBOX_GATEWAY_KEY", MERCHANT_KEY)
os.environ.setdefault("PAYMENT_GATEWAY_KEY", MERCHANT_KEY)

from project.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
