"""Job kinds: what each kind of job is called, where it runs, and how it retries.

Each app declares its own kinds beside its services (``orders/kinds.py``);
``routing.py`` lists them with their consumers, the one map, and the
``JOBS_KINDS`` setting names that list, as ``ASGI_APPLICATION`` names the
application.  Nothing registers itself by being imported.  A task of
Django's Tasks API is a kind of its own, named by its function's path; it
needs no declaration.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import attrs
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from jobs.models import Job

#: Attempts of a kind that names no setting of its own, and of a task without a retry policy.
DEFAULT_MAX_ATTEMPTS = 5


@attrs.frozen
class JobKind:
    """One kind of job: its name on the record, its channel, and what the machinery needs to know of it."""

    name: str
    channel: str
    #: The page's title for a job of this kind, ``{id}`` being its subject's
    #: id; a kind without one gets no toast of its own (a receipt is a line in
    #: its payment's).
    title: str = ""
    #: The setting that holds how many attempts a job of this kind gets.
    max_attempts_setting: str | None = None
    #: Dotted path of ``f(jobs) -> {job id: reason}``: why stuck jobs of this
    #: kind are stuck, finer than their status, in one query (requeue's report).
    stuck_reasons: str | None = None
    #: Dotted path of ``f(jobs) -> {job id: why not}``, run in the transaction
    #: of the admin's retry of failed jobs: it may put their subjects back in
    #: a state the job can work on, and refuses the ones that must not run again.
    reopen: str | None = None
    #: Whether a page reloaded mid-work must get every unfinished job of this
    #: kind in its snapshot, however many other jobs are running.
    whole: bool = False

    @property
    def max_attempts(self) -> int:
        if self.max_attempts_setting is None:
            return DEFAULT_MAX_ATTEMPTS
        return getattr(settings, self.max_attempts_setting)

    def hook(self, name: str) -> Callable[[list[Job]], dict[int, str]] | None:
        """One of the dotted-path hooks above, imported; None when the kind has none."""
        path = getattr(self, name)
        return _imported(path) if path else None


@cache
def _imported(path: str):
    return import_string(path)


def job_kinds() -> dict[str, JobKind]:
    """The declared kinds by name, from the list ``JOBS_KINDS`` names."""
    return _kinds(settings.JOBS_KINDS)


@cache
def _kinds(path: str) -> dict[str, JobKind]:
    try:
        kinds = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"JOBS_KINDS names {path!r}, which cannot be imported: {exc}") from exc
    by_name: dict[str, JobKind] = {}
    for kind in kinds:
        if not isinstance(kind, JobKind):
            raise ImproperlyConfigured(f"{path} holds {kind!r}, not a JobKind")
        if kind.name in by_name:
            raise ImproperlyConfigured(f"{path} declares the job kind {kind.name!r} twice")
        by_name[kind.name] = kind
    return by_name


def kind_of(name: str) -> JobKind | None:
    """The declared kind called ``name``; None for a task's (or an unknown) kind."""
    return job_kinds().get(name)


def job_title(*, kind: str, backend: str, subject_id: str) -> str:
    """What the page calls a job: its kind's title, a task's, or "" for a job with no toast of its own."""
    declared = kind_of(kind)
    if declared is not None:
        template = declared.title
    elif backend:
        template = task_title(kind)
    else:
        template = ""
    return template.replace("{id}", subject_id)


@cache
def task_title(path: str) -> str:
    """A task's title: its ``task_options(title=...)``, or its function's name in words ("Send receipt")."""
    from jobs.tasks import options_of

    try:
        task = import_string(path)
    except ImportError:
        return path.rpartition(".")[2].replace("_", " ").capitalize()
    return options_of(task).title_of(task)
