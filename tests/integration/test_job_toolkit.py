"""The job toolkit: model references, attrs payloads and chains, run through the real consumer base."""

from __future__ import annotations

from typing import ClassVar

import attrs
import pytest
from django.db import transaction

from books.models import Book
from jobs.kinds import JobKind
from jobs.consumers import ChainConsumer, JobConsumer, Step
from integrations.exceptions import PermanentError, TransientError
from jobs.exceptions import InvalidPayload, ModelNotAllowed
from jobs.models import Job
from jobs.payloads import dump, load
from jobs.services import job_create
from orders.models import Order
from tests.channels import run_in_thread as run
from tests.factories import make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engine]


@attrs.frozen
class Enrichment:
    """A business object that is not a model."""

    field: str = attrs.field(validator=attrs.validators.in_(["amount", "isbn"]))
    times: int = attrs.field(default=1, validator=attrs.validators.ge(1))


class Describe(JobConsumer):
    """One code path for any allowed model: reads a field named in the payload."""

    kind = JobKind(name="describe", channel="tests")
    payload_class = Enrichment

    def handle(self, job: Job) -> str:
        subject = self.subject(job)
        request = self.payload(job)
        return f"{subject._meta.label}:{getattr(subject, request.field)}" * request.times

    def success_message(self, job: Job, result: str) -> str:
        return result


def send(user, subject, payload, kind: str = "describe") -> Job:
    with transaction.atomic():
        return job_create(kind=JobKind(name=kind, channel="tests"), user=user, subject=subject, payload=payload)


def test_one_code_path_handles_two_different_models(user):
    order = make_order(user, amount="7.25")
    book = Book.objects.create(isbn="9780140328721")
    order_job = run(Describe, send(user, order, Enrichment(field="amount")))
    book_job = run(Describe, send(user, book, Enrichment(field="isbn")))
    assert (order_job.status, order_job.message) == ("ok", "orders.Order:7.25")
    assert (book_job.status, book_job.message) == ("ok", "books.Book:9780140328721")


def test_a_model_outside_the_allow_list_fails_the_job(user):
    job = send(user, make_order(user), Enrichment(field="amount"))
    Job.objects.filter(pk=job.pk).update(subject_type="auth.user", subject_id=str(user.pk))
    job = run(Describe, job)
    assert job.status == "failed"
    assert job.error == "Model 'auth.user' is not allowed in jobs (see JOBS_ALLOWED_MODELS)"
    assert job.traceback == ""


def test_sending_work_about_a_model_outside_the_allow_list_is_refused(user):
    with pytest.raises(ModelNotAllowed, match="'auth.user' is not allowed in jobs"):
        send(user, user, Enrichment(field="amount"))
    assert not Job.objects.filter(kind="describe").exists()


def test_an_unknown_label_fails_the_job(user, settings):
    settings.JOBS_ALLOWED_MODELS = [*settings.JOBS_ALLOWED_MODELS, "shop.Widget"]
    job = send(user, make_order(user), Enrichment(field="amount"))
    Job.objects.filter(pk=job.pk).update(subject_type="shop.Widget")
    job = run(Describe, job)
    assert (job.status, job.error) == ("failed", "No model 'shop.Widget' is installed")


@pytest.mark.parametrize("pk", ["987654", "not-a-number"])
def test_a_missing_row_fails_the_job(user, pk):
    job = send(user, make_order(user), Enrichment(field="amount"))
    Job.objects.filter(pk=job.pk).update(subject_id=pk)
    job = run(Describe, job)
    assert (job.status, job.error) == ("failed", f"orders.order {pk} does not exist")


def test_an_attrs_payload_round_trips_through_the_job_row(user):
    job = send(user, make_order(user), Enrichment(field="amount", times=2))
    assert Job.objects.get(pk=job.pk).payload == {"field": "amount", "times": 2}
    assert load(dump(Enrichment(field="isbn", times=3)), Enrichment) == Enrichment(field="isbn", times=3)
    assert run(Describe, job).message == "orders.Order:12.50orders.Order:12.50"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"field": "secret"}, "'field' must be in ['amount', 'isbn'] (got 'secret')"),
        ({"field": "amount", "times": 0}, "'times' must be >= 1: 0"),
        ({"field": "amount", "times": "many"}, "invalid literal for int() with base 10: 'many' @ $.times"),
        ({"field": "amount", "admin": True}, "extra fields found (admin) @ $"),
        ({}, "required field missing @ $.field"),
        (["amount"], "expected an object, got list"),
    ],
)
def test_a_payload_that_does_not_fit_fails_the_job_clearly(user, payload, error):
    job = send(user, make_order(user), Enrichment(field="amount"))
    Job.objects.filter(pk=job.pk).update(payload=payload)
    job = run(Describe, job)
    assert job.status == "failed"
    assert job.error.startswith("Payload does not fit Enrichment: ") and error in job.error
    assert job.traceback == ""
    with pytest.raises(InvalidPayload):
        load(payload, Enrichment)


# --- chains -------------------------------------------------------------------


@attrs.frozen
class Quote:
    amount: str
    source: str


class Charge(ChainConsumer):
    """fetch from a third party -> store atomically -> follow-up, with failures on demand."""

    kind = JobKind(name="charge", channel="tests")
    steps: ClassVar[tuple[Step, ...]] = (
        Step("fetch", returns=Quote),
        Step("store", returns=int, atomic=True),
        Step("follow_up"),
    )
    fail: ClassVar[dict[str, BaseException]] = {}
    calls: ClassVar[list[str]] = []

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail.pop(name)

    def fetch(self, job: Job, previous: None) -> Quote:
        assert previous is None
        self._maybe_fail("fetch")
        return Quote(amount="99.00", source="gateway")

    def store(self, job: Job, quote: Quote) -> int:
        assert isinstance(quote, Quote)  # rebuilt from the row on a retry, too
        order = self.subject(job, for_update=True)
        Order.objects.filter(pk=order.pk).update(amount=quote.amount)
        self._maybe_fail("store")
        return order.pk

    def follow_up(self, job: Job, order_id: int) -> str:
        self._maybe_fail("follow_up")
        return f"order {order_id} repriced"


@pytest.fixture
def charge():
    Charge.fail.clear()
    Charge.calls.clear()
    return Charge


@pytest.mark.parametrize("step", ["fetch", "store", "follow_up"])
def test_a_chain_failing_at_each_step_fails_the_job_naming_the_step(user, charge, step):
    order = make_order(user)
    charge.fail[step] = PermanentError("refused by the third party")
    job = run(charge, send(user, order, None, kind="charge"))
    assert job.status == "failed"
    assert job.error == f"Step '{step}' failed: refused by the third party"
    done = ["fetch", "store", "follow_up"].index(step)
    assert job.step == done
    assert charge.calls == ["fetch", "store", "follow_up"][: done + 1]
    # The atomic store step either happened with its record, or not at all.
    order.refresh_from_db()
    assert str(order.amount) == ("99.00" if step == "follow_up" else "12.50")


def test_a_chain_step_that_crashes_keeps_its_traceback(user, charge):
    charge.fail["store"] = KeyError("boom")
    job = run(charge, send(user, make_order(user), None, kind="charge"))
    assert job.error == "Step 'store' failed: Internal error: KeyError: 'boom'"
    assert "KeyError" in job.traceback


def test_a_transient_failure_retries_only_the_failed_step(user, charge, settings):
    settings.JOBS_RETRY_BASE_DELAY = 0
    charge.fail["follow_up"] = TransientError("gateway timed out")
    job = run(charge, send(user, make_order(user), None, kind="charge"))
    assert job.status == "retrying" and job.step == 2
    assert job.error == "Step 'follow_up' failed: gateway timed out"
    job = run(charge, job)
    assert job.status == "ok" and job.attempts == 2 and job.progress == 100
    assert charge.calls == ["fetch", "store", "follow_up", "follow_up"]
    assert job.message == "Charge done"


def test_a_retried_step_gets_the_previous_result_rebuilt_from_the_row(user, charge, settings):
    settings.JOBS_RETRY_BASE_DELAY = 0
    charge.fail["store"] = TransientError("database busy")
    job = run(charge, send(user, make_order(user), None, kind="charge"))
    assert job.status == "retrying" and job.step == 1
    assert job.step_result == {"amount": "99.00", "source": "gateway"}
    job = run(charge, job)
    assert job.status == "ok"
    assert charge.calls == ["fetch", "store", "store", "follow_up"]


def test_the_last_step_is_recorded_in_the_jobs_success_transaction(user, charge):
    from tests.transactions import watching

    job = send(user, make_order(user), None, kind="charge")
    with watching() as seen:
        job = run(charge, job)
    assert (job.status, job.step, job.step_result) == ("ok", 3, f"order {job.subject_id} repriced")
    last = seen.groups[-2]  # the last is run()'s own refresh
    assert len(last) == 2 and '"step"' in last[0] and '"finished_at"' in last[1]


class ChargeThenRecord(Charge):
    """``Charge`` whose success fails as ``fail_success`` says, once."""

    fail_success: ClassVar[list[BaseException]] = []

    def on_success(self, job: Job, result: str) -> None:
        super().on_success(job, result)
        if self.fail_success:
            raise self.fail_success.pop()


@pytest.mark.parametrize(("error", "status"), [(TransientError("database busy"), "retrying"),
                                                (PermanentError("refused"), "failed")])
def test_a_last_step_whose_success_failed_is_recorded_all_the_same_and_never_run_again(user, charge, settings,
                                                                                       error, status):
    settings.JOBS_RETRY_BASE_DELAY = 0
    ChargeThenRecord.fail_success[:] = [error]
    job = run(ChargeThenRecord, send(user, make_order(user), None, kind="charge"))
    assert (job.status, job.step, job.error) == (status, 3, f"Step 'finish' failed: {error}")
    if status == "retrying":
        job = run(ChargeThenRecord, job)
        assert (job.status, job.attempts) == ("ok", 2)
    assert charge.calls == ["fetch", "store", "follow_up"]


def test_claiming_companions_takes_pending_jobs_and_due_retries_but_not_early_ones(user):
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import JobStatus
    from jobs.services import job_claim_many

    pending, due, unsent_retry, early, done = [send(user, make_order(user), {}, kind="lookup") for _ in range(5)]
    now = timezone.now()
    # Throttled together (a 429 for the whole call): their retry times are
    # milliseconds apart, and come due together.
    Job.objects.filter(pk=due.pk).update(status=JobStatus.RETRYING, next_attempt_at=now + timedelta(milliseconds=300))
    Job.objects.filter(pk=unsent_retry.pk).update(status=JobStatus.RETRYING, next_attempt_at=None)
    Job.objects.filter(pk=early.pk).update(status=JobStatus.RETRYING, next_attempt_at=now + timedelta(minutes=5))
    Job.objects.filter(pk=done.pk).update(status=JobStatus.OK)

    claimed = job_claim_many(among=Job.objects.values("pk"), kind="lookup", limit=10)

    assert sorted(job.pk for job in claimed) == [pending.pk, due.pk, unsent_retry.pk]
    assert {job.status for job in claimed} == {JobStatus.RUNNING}
    assert Job.objects.get(pk=early.pk).status == JobStatus.RETRYING
    # A second claimer gets none of them.
    assert job_claim_many(among=Job.objects.values("pk"), kind="lookup", limit=10) == []
