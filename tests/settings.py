"""Settings for the test process: the product's own, on development defaults.

Subprocesses started by the end-to-end tests do not use this module; they get
an explicit environment from ``devtools/stack.py``.
"""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
# The test process itself always uses the in-memory layer; tests that need
# Redis start their own server and say so explicitly.
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("EMBEDDED_WORKERS", "0")

from project.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
