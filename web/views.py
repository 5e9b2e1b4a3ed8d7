from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from project import names
from sandbox.gateway import NONCE_CHOICES


@login_required
@ensure_csrf_cookie
def index(request):
    return render(
        request,
        "index.html",
        {"nonces": NONCE_CHOICES, "ws_path": "/" + names.WS_STATUS_PATH, "books_bulk_max": settings.BOOKS_BULK_MAX},
    )
