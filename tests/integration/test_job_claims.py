"""Claims: one statement each, one winner among claimers, on PostgreSQL nobody waiting on a held row;
and a consumer's first writes (``on_claim``) in the claim's transaction."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest
from django.db import OperationalError, close_old_connections, connection, transaction

from jobs.kinds import JobKind
from jobs.consumers import ChainConsumer, JobConsumer, Step
from integrations.exceptions import PermanentError, TransientError
from jobs.models import Job, JobStatus
from jobs.services import job_claim, job_claim_many, job_create
from orders.models import Order
from tests.channels import run_in_thread as run
from tests.factories import make_order
from tests.transactions import watching

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120), pytest.mark.engine]

# How long a thread holding a row waits for the other side before it gives
# up: only bounds a test that fails, never measured.
HOLD_AT_MOST = 30


def send(user, kind: str = "tally") -> Job:
    with transaction.atomic():
        return job_create(kind=JobKind(name=kind, channel="tests"), user=user, subject=make_order(user))


def test_a_claim_is_one_statement_outside_any_transaction(user):
    job = send(user)
    with watching() as seen:
        claimed = job_claim(job_id=job.pk)
    assert [len(group) for group in seen.groups] == [1]
    assert seen.statements[0].startswith("UPDATE") and "RETURNING" in seen.statements[0]
    assert (claimed.pk, claimed.status, claimed.attempts, claimed.message) == (job.pk, "running", 1, "Started")
    assert claimed.last_attempt_at is not None and claimed.next_attempt_at is None
    assert claimed.last_attempt_at == Job.objects.get(pk=job.pk).last_attempt_at
    # Claimed once, it is not claimable again.
    with watching() as seen:
        assert job_claim(job_id=job.pk) is None
    assert len(seen.statements) == 1


def test_claiming_many_is_one_statement_too(user):
    jobs = [send(user, kind="lookup") for _ in range(3)]
    with watching() as seen:
        claimed = job_claim_many(among=Job.objects.values("pk"), kind="lookup", limit=2)
    assert len(seen.statements) == 1
    # The first ones by id, handed back newest first as any list of jobs.
    assert [job.pk for job in claimed] == [jobs[1].pk, jobs[0].pk]
    assert {job.status for job in claimed} == {JobStatus.RUNNING}


def test_of_claimers_at_once_exactly_one_gets_the_job(user):
    job = send(user)
    threads = 6
    barrier = threading.Barrier(threads)
    got: list[Job | None] = []
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            barrier.wait()
            got.append(job_claim(job_id=job.pk))
        except BaseException as exc:  # asserted on below
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    workers = [threading.Thread(target=claim) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(HOLD_AT_MOST)
    close_old_connections()
    assert errors == []
    assert len([claimed for claimed in got if claimed is not None]) == 1
    assert Job.objects.get(pk=job.pk).attempts == 1


def holding(job_ids, *, claim) -> tuple[threading.Thread, threading.Event, threading.Event, list]:
    """A thread that claims ``job_ids`` in a transaction it keeps open until ``done`` is set.

    Returns the thread, ``held`` (set once its rows are locked), ``done``
    (set it to let the thread commit) and what it claimed.
    """
    held, done, claimed = threading.Event(), threading.Event(), []

    def hold() -> None:
        try:
            with transaction.atomic():
                claimed.extend(claim(job_ids))
                held.set()
                done.wait(HOLD_AT_MOST)
        finally:
            held.set()
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread, held, done, claimed


@pytest.fixture
def postgres_only():
    # `make test` runs these (marked postgres) in its PostgreSQL pass only.
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no row locks: a writer waits for the file's lock")


@pytest.mark.postgres
def test_a_claim_skips_a_job_another_transaction_holds_and_does_not_wait(user, postgres_only):
    job = send(user)
    thread, held, done, theirs = holding(job.pk, claim=lambda pk: [job_claim(job_id=pk)])
    assert held.wait(HOLD_AT_MOST) and [j.pk for j in theirs] == [job.pk]
    try:
        # Had this claim waited for the other's lock, it could only return
        # once the other gave up waiting for ``done`` and committed.
        assert job_claim(job_id=job.pk) is None
        assert thread.is_alive(), "the claim returned only after the holder let go"
    finally:
        done.set()
        thread.join(HOLD_AT_MOST)
    assert Job.objects.get(pk=job.pk).attempts == 1


@pytest.mark.postgres
def test_claiming_many_takes_the_free_jobs_and_leaves_a_held_one_without_waiting(user, postgres_only):
    jobs = [send(user, kind="lookup") for _ in range(3)]
    thread, held, done, theirs = holding(jobs[0].pk, claim=lambda pk: [job_claim(job_id=pk)])
    assert held.wait(HOLD_AT_MOST) and theirs
    try:
        ours = job_claim_many(among=Job.objects.values("pk"), kind="lookup", limit=10)
        assert thread.is_alive(), "the claim returned only after the holder let go"
    finally:
        done.set()
        thread.join(HOLD_AT_MOST)
    assert sorted(job.pk for job in ours) == [jobs[1].pk, jobs[2].pk]
    assert all(job.attempts == 1 for job in Job.objects.filter(kind="lookup"))


# --- the consumer's claim and the machinery's retry of it -------------------------------


class Tally(JobConsumer):
    kind = JobKind(name="tally", channel="tests")

    def handle(self, job: Job) -> str:
        return "counted"


class TallyOnClaim(Tally):
    def on_claim(self, job: Job) -> None:
        Job.objects.filter(pk=job.pk).update(progress=5)


@pytest.fixture
def claim_fails_once(monkeypatch):
    """The claim meets a dropped connection once, then works."""
    import jobs.consumers

    calls = []

    def claim(*, job_id):
        calls.append(job_id)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return job_claim(job_id=job_id)

    monkeypatch.setattr(jobs.consumers, "job_claim", claim)
    monkeypatch.setattr(jobs.consumers, "RECORD_RETRY_DELAYS", (0.01,))
    return calls


@pytest.mark.parametrize("consumer_class", [Tally, TallyOnClaim])
def test_a_claim_that_meets_a_dropped_connection_is_made_again(user, claim_fails_once, consumer_class):
    job = run(consumer_class, send(user))
    assert len(claim_fails_once) == 2
    assert (job.status, job.attempts) == ("ok", 1)


@pytest.mark.parametrize("consumer_class", [Tally, TallyOnClaim])
def test_a_claim_inside_a_callers_transaction_fails_at_once(user, claim_fails_once, consumer_class):
    job = send(user)
    with pytest.raises(OperationalError), transaction.atomic():
        run(consumer_class, job)
    assert len(claim_fails_once) == 1
    assert Job.objects.get(pk=job.pk).status == "pending"


# --- on_claim: a job's first writes, in the claim's transaction ------------------------


class Reprice(Tally):
    """Writes its subject on claim; then fails as ``fail`` says, if it says."""

    fail: BaseException | None = None

    def on_claim(self, job: Job) -> None:
        Order.objects.filter(pk=job.subject_id).update(amount="99.00")
        if self.fail is not None:
            raise self.fail


def amount_of(job: Job) -> str:
    return str(Order.objects.get(pk=job.subject_id).amount)


def test_on_claim_writes_commit_with_the_claim_in_one_transaction(user):
    job = send(user)
    with watching() as seen:
        job = run(Reprice, job)
    assert len(seen.group_of("RETURNING", 'UPDATE "orders_order"')) == 2
    assert (job.status, job.attempts, amount_of(job)) == ("ok", 1, "99.00")


@pytest.mark.parametrize(
    ("fail", "status", "error"),
    [(PermanentError("refused"), "failed", "refused"), (TransientError("busy"), "retrying", "busy")],
)
def test_what_on_claim_raises_is_the_jobs_outcome_and_its_writes_are_undone(user, settings, fail, status, error):
    settings.JOBS_RETRY_BASE_DELAY = 30
    job = send(user)
    consumer = type("RepriceFailing", (Reprice,), {"fail": fail})
    job = run(consumer, job)
    # Claimed once all the same: one attempt, and nothing of what on_claim wrote.
    assert (job.status, job.error, job.attempts, amount_of(job)) == (status, error, 1, "12.50")


class StoreThenCall(ChainConsumer):
    """An atomic step first (in the claim's transaction), then one that would call a third party."""

    kind = JobKind(name="tally", channel="tests")
    steps: ClassVar[tuple[Step, ...]] = (Step("store", returns=int, atomic=True), Step("call"))
    fail: BaseException | None = None

    def store(self, job: Job, _previous: None) -> int:
        Order.objects.filter(pk=job.subject_id).update(amount="99.00")
        if self.fail is not None:
            raise self.fail
        return int(job.subject_id)

    def call(self, job: Job, order_id: int) -> str:
        return f"order {order_id} called"


def test_a_chains_atomic_first_step_runs_and_is_recorded_in_the_claims_transaction(user):
    job = send(user)
    with watching() as seen:
        job = run(StoreThenCall, job)
    claim = seen.group_of("RETURNING", 'UPDATE "orders_order"')
    assert len(claim) == 3 and '"step"' in claim[2]
    assert (job.status, job.step, job.message, amount_of(job)) == ("ok", 2, "Tally done", "99.00")


def test_a_chains_atomic_first_step_that_fails_is_named_and_its_writes_undone(user):
    job = send(user)
    job = run(type("StoreFailing", (StoreThenCall,), {"fail": PermanentError("no")}), job)
    assert (job.status, job.error, job.step, job.attempts) == ("failed", "Step 'store' failed: no", 0, 1)
    assert amount_of(job) == "12.50"
