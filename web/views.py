"""The pages: payments and books (``/``), the book catalogue, and the favicon."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

from books.kinds import BOOK, BOOK_BATCH
from jobs.kinds import JobKind
from orders.kinds import PAYMENT
from sandbox.gateway import NONCE_CHOICES

# What each sandbox nonce does, in the words of the person choosing one.
NONCE_LABELS = {
    "fake-valid-nonce": "Card approved",
    "fake-valid-authorize-only-nonce": "Card approved, held before settling",
    "fake-authorizing-nonce": "Card approved after a moment",
    "fake-valid-partial-amount-nonce": "Card approved for half the amount",
    "fake-processor-declined-visa-nonce": "Card declined (Do Not Honor)",
    "fake-processor-hard-declined-visa-nonce": "Card declined (Expired Card)",
    "fake-processor-failure-visa-nonce": "Card network unavailable",
    "fake-gateway-rejected-fraud-nonce": "Card refused as possible fraud",
    "fake-consumed-nonce": "Card details already used",
}

# Where the page's toasts about a subject link: the widget's option
# ({% job_progress "mine" ... %}, see jobs/templatetags).
TOAST_LINKS = {"orders.order": "/#order-{id}", "books.bookbatch": "/#batch-{id}"}


# The job kinds the index page follows in its own tables (the orders, the
# batches and their books), by the role each plays there: the page reads
# their names and titles from here, never from literals of its own.
PAGE_KINDS = {"payment": PAYMENT, "book": BOOK, "book_batch": BOOK_BATCH}


def _kinds(kinds: dict[str, JobKind]) -> dict[str, dict[str, str]]:
    return {role: {"name": kind.name, "title": kind.title} for role, kind in kinds.items()}


def _page(request, template: str, context: dict | None = None):
    toasts = {"toast_links": TOAST_LINKS}
    return render(request, template, toasts | (context or {}))


@login_required
@ensure_csrf_cookie
def index(request):
    nonces = [(nonce, NONCE_LABELS.get(nonce, nonce)) for nonce in NONCE_CHOICES]
    return _page(request, "index.html", {
        "nonces": nonces,
        "books_bulk_max": settings.BOOKS_BULK_MAX,
        "job_kinds": _kinds(PAGE_KINDS),
    })


@login_required
@ensure_csrf_cookie
def catalogue(request):
    return _page(request, "catalogue.html")


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request):
    """``/favicon.ico``, which browsers ask for on pages that name no icon (the admin, the API)."""
    path = finders.find("favicon.ico")
    if path is None:
        raise Http404("No favicon.ico among the static files")
    return FileResponse(open(path, "rb"), content_type="image/x-icon")
