"""``{% job_progress %}``: live job progress in any template, with no build step.

    {% load job_progress %}
    {% job_progress "mine" %}          toasts for every job of the signed-in user
    {% job_progress job.pk %}          a progress bar and its message, for one job

Both render markup plus ``<script type="module" src=".../jobs/progress.js">``
and its stylesheet; the module opens one websocket to ``/ws/status/`` per
page, however many widgets it has.

Which jobs get a toast, and what it says, is the server's: a job gets a
toast of its own when its report has a ``title`` ("Order #12", or a task's
name in words), titled by it.  A job with an empty title (a book's lookup, a
payment's receipt) is not shown, except that once it ends it adds one line
to an open toast about the same subject.  Titles live with the job kinds
(``JobKind.title``, ``task_options(title=...)``), so any ``@task`` shows
here with no option to set.  The one option of ``"mine"``:

* ``links={"orders.order": "/orders/{id}/"}``: where a toast about a subject
  of that type links to; ``{id}`` is the subject's id.  A dict from the
  view's context, or a JSON string.
"""

from __future__ import annotations

import json

from django import template
from django.urls import reverse

from jobs.models import Job, JobStatus
from jobs.selectors import jobs_for_user
from jobs.serializers import job_report
from project.names import WS_STATUS_PATH

register = template.Library()

MINE = "mine"
# What a bar says before its job has told it anything.
WAITING = "Waiting for news of this job"
# A retry's message carries the error that caused it; the page says it plainly.
RETRYING = "Delayed by a temporary problem; trying again shortly"


def _json(value) -> str:
    if value is None or value == "":
        return "{}"
    if isinstance(value, str):
        value = json.loads(value)  # a template's mistake fails loudly, at render
    if not isinstance(value, dict):
        raise template.TemplateSyntaxError("job_progress: links is a dict")
    return json.dumps(value)


@register.inclusion_tag("jobs/progress.html", takes_context=True)
def job_progress(context, target=MINE, *, links=None, label="Progress"):
    """Toasts for the user's jobs (``"mine"``), or a bar bound to one job (an id or a ``Job``)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    base = {"ws_path": "/" + WS_STATUS_PATH, "signed_in": bool(user and user.is_authenticated)}
    if target == MINE:
        return base | {"mode": MINE, "links": _json(links)}
    try:
        job_id = target.pk if isinstance(target, Job) else int(target)
    except (TypeError, ValueError):
        raise template.TemplateSyntaxError(f'job_progress takes "mine", a job id or a Job, not {target!r}') from None
    job = jobs_for_user(user=user).filter(pk=job_id).first() if base["signed_in"] else None
    report = job_report(job) if job else None
    if report is None:
        text = WAITING
    elif report["status"] == JobStatus.RETRYING:
        text = RETRYING
    else:
        text = report["message"]
    return base | {
        "mode": "job",
        "job_id": job_id,
        "job_url": reverse("job-detail", args=[job_id]),
        "label": label,
        "status": report["status"] if report else JobStatus.PENDING,
        "progress": report["progress"] if report else 0,
        "text": text,
    }
