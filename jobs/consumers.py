"""The bases of background-channel consumers: ``JobConsumer``, and ``ChainConsumer`` with its ``Step``.

For each ``job.run`` message it claims the job (a repeated delivery is a
logged no-op), with the subclass's first writes (``on_claim``) in the
claim's transaction, runs the subclass's ``handle`` in the worker's thread
pool, and records the outcome through ``on_success`` / ``on_retry`` /
``on_failure``.  Every state change reaches the user's group via the job
services.  A subclass holds only its business steps.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from datetime import datetime, timedelta
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar, TypeVar

import attrs
from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer
from channels.utils import await_many_dispatch
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.utils import timezone

from integrations.exceptions import PermanentError, Throttled, TransientError
from jobs.concurrency import run_blocking
from jobs.exceptions import InvalidJobMessage, JobRejected
from jobs.kinds import JobKind
from jobs.messages import parse_job_message
from jobs.models import Job
from jobs.payloads import dump, load
from jobs.refs import resolve
from jobs.scheduler import wake_at
from jobs.services import job_claim, job_fail, job_schedule_retry, job_step_done, job_succeed, retry_delay
from project.names import JOB_RUN

logger = logging.getLogger(__name__)

# The job machinery's own writes (the claim, the retry, the failure) ride out
# a dropped database connection: again on a fresh connection after each of
# these pauses, about 15 s in all, before the message is given up to the
# resend below and the job row to requeue.
RECORD_RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0)
# A message whose job could not even be claimed (the database is down) is
# sent again after this long, from this process: never dropped.
RESEND_AFTER_DATABASE_ERROR = 5.0
# What a lost connection raises: psycopg's OperationalError arrives as
# DatabaseError, a connection already closed as InterfaceError.
DATABASE_ERRORS = (DatabaseError, InterfaceError)

T = TypeVar("T")


@attrs.frozen
class Handled:
    """What the async side must do after a message was handled: the retries to wake up, ``(job id, due time)``."""

    job_id: int | None = None
    retries: tuple[tuple[int, datetime], ...] = ()
    #: A claimed job whose work runs on the event loop (``run_on_loop``), not settled yet.
    on_loop: Job | None = None


class JobConsumer(AsyncConsumer):
    """Runs one kind of job from a background channel."""

    kind: ClassVar[JobKind]
    #: The attrs class of the job's payload, rebuilt and validated by ``payload()``.
    payload_class: ClassVar[type | None] = None
    #: Errors worth another attempt.  Database errors count: a locked SQLite
    #: file or a dropped PostgreSQL connection usually passes.
    transient_errors: ClassVar[tuple[type[BaseException], ...]] = (TransientError, *DATABASE_ERRORS)

    async def __call__(self, scope, receive, send):
        # Unlike AsyncConsumer, no per-instance reply channel: a background
        # consumer only reads its own channel, and listening on a fresh one
        # would cost a channel-layer receive for every message.
        self.scope = scope
        self.base_send = send
        try:
            await await_many_dispatch([receive], self.dispatch)
        except StopConsumer:
            pass

    async def dispatch(self, message) -> None:
        # Anything can arrive on a channel.  Only job.run is handled: mapping
        # any dotted type to a method name would let a message call methods
        # that were never meant as handlers.  The rest is logged and dropped,
        # and this consumer goes on with the next message.
        if isinstance(message, dict) and message.get("type") == JOB_RUN:
            # No aclose_old_connections() here, as Channels' dispatch does:
            # run_blocking closes stale connections in the job's own thread,
            # before and after, and a hop to another thread for it would cost
            # every job one more.
            await self.job_run(message)
        else:
            logger.warning("Dropped a message on %s that is not %s: %.200r",
                           self.scope.get("channel"), JOB_RUN, message)

    async def job_run(self, message: dict) -> None:
        try:
            outcome = await run_blocking(self.run, message)
            if outcome.on_loop is not None:
                outcome = await self.run_on_loop(outcome.on_loop)
        except DATABASE_ERRORS:
            # The database stayed away through every retry of the machinery's
            # writes.  The message is sent again later: a job never claimed
            # runs then, one claimed and stuck stays for requeue.
            logger.error("Could not run %.200r: the database is unreachable; sending it again in %.0fs",
                         message, RESEND_AFTER_DATABASE_ERROR, exc_info=True)
            job_id = message.get("job")
            if isinstance(job_id, int):
                wake_at(self.scope["channel"], job_id, timezone.now() + timedelta(seconds=RESEND_AFTER_DATABASE_ERROR),
                        loop=asyncio.get_running_loop())
            return
        except Exception:
            # The job machinery itself failed.  The job row, if any, is
            # untouched and requeue will find it.
            logger.error("Could not run %.200r", message, exc_info=True)
            return
        # A retry is due at the time stored with it: this process wakes it
        # then, and requeue does if this process is gone by then.
        for job_id, when in outcome.retries:
            wake_at(self.scope["channel"], job_id, when, loop=asyncio.get_running_loop())

    # --- the synchronous part, in a worker thread --------------------------

    def run(self, message: dict) -> Handled:
        try:
            job_id = parse_job_message(message)
        except InvalidJobMessage:
            logger.warning("Dropped a message that names no job on %s: %r", self.scope.get("channel"), message)
            return Handled()
        job, refused = self.record("claim", job_id, lambda: self._claim(job_id))
        if job is None:
            logger.info("Job %s is not pending or retrying (a repeated delivery); nothing to do", job_id)
            return Handled(job_id=job_id)
        if not self.accepts(job):
            self._fail(job, PermanentError(f"{self.kind.name} consumer cannot run a {job.kind!r} job"))
            return Handled(job_id=job_id)
        if refused is None and self.runs_on_loop(job):
            return Handled(job_id=job.pk, on_loop=job)
        return self.settled(job, self.handle if refused is None else partial(_reraise, refused))

    def settled(self, job: Job, work: Callable[[Job], Any]) -> Handled:
        """``settle`` the message's own job; what the async side must do after."""
        self._retries: list[tuple[int, datetime]] = []
        self.settle(job, work)
        return Handled(job_id=job.pk, retries=tuple(self.retry_messages(self._retries)))

    def runs_on_loop(self, job: Job) -> bool:
        """Whether the claimed job's work is a coroutine for the event loop (``run_on_loop``), not ``handle``."""
        return False

    async def run_on_loop(self, job: Job) -> Handled:
        """Do a claimed job's work on the event loop, then settle it in a thread; for ``runs_on_loop`` jobs."""
        raise NotImplementedError

    def _claim(self, job_id: int) -> tuple[Job | None, Exception | None]:
        """Claim the job, with ``on_claim``'s writes in the same transaction; the job, and what ``on_claim`` raised.

        A consumer without ``on_claim`` claims in one statement and no
        transaction.  Should ``on_claim`` raise, its transaction takes the
        claim along: the job is claimed again, bare, and what was raised
        becomes the outcome of its work (a retry or a failure, as if
        ``handle`` had raised it).  A failed claim itself is raised, for
        ``record`` to try again on a fresh connection.
        """
        if not self.writes_on_claim():
            return job_claim(job_id=job_id), None
        job = None
        try:
            with transaction.atomic():
                job = job_claim(job_id=job_id)
                if job is not None and self.accepts(job):
                    self.on_claim(job)
        except Exception as exc:
            if job is None:
                raise
            return job_claim(job_id=job_id), exc
        return job, None

    def accepts(self, job: Job) -> bool:
        """Whether this consumer runs ``job``: one of its kind."""
        return job.kind == self.kind.name

    def retry_messages(self, retries: list[tuple[int, datetime]]) -> list[tuple[int, datetime]]:
        """The retry messages this run sends, ``(job id, when)``: one per job, when it is due.

        A consumer that takes other jobs along (``job_claim_many``) may send
        one of a group first and the others after it.
        """
        return retries

    def settle(self, job: Job, work: Callable[[Job], Any]) -> None:
        """Run ``work(job)`` and record its outcome on the job: done, retrying or failed.

        ``run`` settles the message's own job; a consumer that takes other
        jobs along (a batch of lookups in one call) settles each of them too.
        """
        try:
            result = work(job)
            with transaction.atomic():
                self.on_success(job, result)
        except self.transient_errors as exc:
            # A third party that only asked us to wait (a 429) costs no attempt.
            throttled = isinstance(exc, Throttled)
            if not throttled and job.attempts >= self.max_attempts(exc):
                logger.warning("Job %s failed after %s attempts: %s", job.pk, job.attempts, exc)
                self._fail(job, exc)
                return
            if throttled:
                job.attempts -= 1
                delay = max(exc.retry_after, 0.1)
            else:
                delay = self.retry_delay(job, exc)
            logger.info("Job %s attempt %s failed (%s); retrying in %.1fs", job.pk, job.attempts, exc, delay)
            self.record("retry", job.pk, lambda: self._atomically(self.on_retry, job, exc, delay))
            self._retries.append((job.pk, job.next_attempt_at))
            return
        except Exception as exc:
            if not isinstance(exc, (PermanentError, JobRejected)):
                logger.error("Job %s crashed", job.pk, exc_info=True)
            self._fail(job, exc)

    def _fail(self, job: Job, exc: BaseException) -> None:
        self.record("failure", job.pk, lambda: self._atomically(self.on_failure, job, exc))

    @staticmethod
    def _atomically(write: Callable[..., None], *args: Any) -> None:
        with transaction.atomic():
            write(*args)

    def record(self, what: str, job_id: int, write: Callable[[], T]) -> T:
        """Run one of the machinery's own writes; on a lost connection, again on a fresh one.

        Without this, a job whose retry met the dead connection its work
        had just failed on would stay ``running`` until requeue.  A write
        inside a caller's transaction cannot move to a fresh connection,
        and fails at once.
        """
        for delay in RECORD_RETRY_DELAYS:
            try:
                return write()
            except DATABASE_ERRORS as exc:
                if connection.in_atomic_block:
                    raise
                logger.warning("Recording the %s of job %s failed (%s: %s); again on a fresh connection in %.1fs",
                               what, job_id, exc.__class__.__name__, exc, delay,
                               extra={"job_id": job_id, "job_kind": self.kind.name})
                _drop_if_dead()
                time.sleep(delay)
        return write()

    # --- what subclasses provide and may override ---------------------------

    def on_claim(self, job: Job) -> None:
        """The job's first writes, made in the claim's own transaction: one commit, not two.

        For the database only (never a third party: it would hold the
        claim's transaction open across the network), and its events go out
        with the claim's.  Raise as ``handle`` would: the claim stays, these
        writes do not, and the job retries or fails.  A consumer keeps what
        it read here for ``handle``.  Without one the claim is a single
        statement.
        """

    def writes_on_claim(self) -> bool:
        """Whether this consumer's ``on_claim`` writes; if not, its claim needs no transaction."""
        return type(self).on_claim is not JobConsumer.on_claim

    def handle(self, job: Job) -> Any:
        """Do the work.  Raise TransientError to retry, anything else to fail."""
        raise NotImplementedError

    def subject(self, job: Job, *, for_update: bool = False):
        """The row the job works on, whatever its model, if that model is allowed."""
        return resolve(job.subject_ref, for_update=for_update)

    def payload(self, job: Job) -> Any:
        """The job's payload, rebuilt as ``payload_class`` when there is one."""
        return load(job.payload, self.payload_class) if self.payload_class else job.payload

    def retry_delay(self, job: Job, exc: BaseException) -> float:
        """Seconds until the next attempt, after ``job.attempts`` attempts failed."""
        return retry_delay(job.attempts)

    def describe(self, job: Job, exc: BaseException) -> str:
        """The error recorded on the job."""
        if isinstance(exc, (PermanentError, TransientError, JobRejected)):
            return str(exc)
        return f"Internal error: {exc.__class__.__name__}: {exc}"

    def max_attempts(self, exc: BaseException | None = None) -> int:
        """How many attempts the job gets, given the error the last one met."""
        return self.kind.max_attempts

    def on_success(self, job: Job, result: Any) -> None:
        job_succeed(job=job, message=self.success_message(job, result))

    def on_retry(self, job: Job, exc: BaseException, delay: float) -> None:
        error = self.describe(job, exc)
        job_schedule_retry(
            job=job,
            error=error,
            message=f"Temporary problem ({error}); trying again in {delay:.1f}s",
            delay=delay,
        )

    def on_failure(self, job: Job, exc: BaseException) -> None:
        job_fail(
            job=job,
            error=self.describe(job, exc),
            message=self.failure_message(job, exc),
            traceback="" if isinstance(exc, (PermanentError, JobRejected)) else traceback.format_exc(),
        )

    def success_message(self, job: Job, result: Any) -> str:
        return f"{job.kind.capitalize()} done"

    def failure_message(self, job: Job, exc: BaseException) -> str:
        return f"{job.kind.capitalize()} failed: {exc}"


def _reraise(exc: Exception, job: Job) -> Any:
    raise exc


def _drop_if_dead() -> None:
    """Close this thread's connection if it met an error and no longer answers.

    The next query then takes a live one from the pool.
    """
    try:
        connection.close_if_unusable_or_obsolete()
    except DATABASE_ERRORS:
        pass  # handing a broken connection back can fail too; it is dropped either way


@attrs.frozen
class Step:
    """One step of a ``ChainConsumer``: the method ``name(job, previous)``.

    ``returns`` is the attrs class (or type) of its result, rebuilt for the
    next step from the stored plain data.  An ``atomic`` step runs in the
    transaction that records it as done, so its database writes and the
    record of them happen together (the claim's transaction, when the chain
    stands at it as the job is claimed); a step that calls a third party
    should not be atomic, or it would hold a transaction open across the
    network.
    """

    name: str
    returns: Any = None
    atomic: bool = False


class ChainConsumer(JobConsumer):
    """A job made of steps, each fed the previous one's result.

    Each finished step is recorded on the job with its result, so a
    transient failure retries only the step that failed, never the ones
    already done.  A failure names its step in the job's error.  The last
    step is recorded with the job's outcome, in its transaction.
    """

    steps: ClassVar[tuple[Step, ...]]

    def __init__(self, **initkwargs):
        super().__init__(**initkwargs)
        # By job: the result of a last step not recorded yet.
        self._unrecorded: dict[int, Any] = {}

    def writes_on_claim(self) -> bool:
        return any(step.atomic for step in self.steps)

    def on_claim(self, job: Job) -> None:
        # An atomic step the chain stands at runs in the claim's transaction:
        # the claim, the step's writes and its record are one commit.  One
        # step only, so a failure is always the step the job names.
        if job.step < len(self.steps) and (step := self.steps[job.step]).atomic:
            self._done(job, job.step, getattr(self, step.name)(job, self._previous(job)))

    def handle(self, job: Job) -> Any:
        result = self._previous(job)
        for index in range(job.step, len(self.steps)):
            step = self.steps[index]
            if step.atomic:
                with transaction.atomic():
                    result = getattr(self, step.name)(job, result)
                    self._done(job, index, result)
            elif index == len(self.steps) - 1:
                # Recorded with the job's success, in one commit (see
                # _record_last), but checked now: a result that cannot be
                # stored fails its step, never the recording of an outcome.
                result = getattr(self, step.name)(job, result)
                self._stored(index, result)
                self._unrecorded[job.pk] = result
            else:
                result = getattr(self, step.name)(job, result)
                self._done(job, index, result)
        return result

    def on_success(self, job: Job, result: Any) -> None:
        self._record_last(job)
        super().on_success(job, result)

    def on_retry(self, job: Job, exc: BaseException, delay: float) -> None:
        self._record_last(job)
        super().on_retry(job, exc, delay)

    def on_failure(self, job: Job, exc: BaseException) -> None:
        self._record_last(job)
        super().on_failure(job, exc)

    def _record_last(self, job: Job) -> None:
        # Whatever the outcome: a success whose transaction failed leaves the
        # record to the retry or failure that follows, so a step done is
        # never done again.  Forgotten only once it is committed.
        if job.pk in self._unrecorded:
            self._done(job, len(self.steps) - 1, self._unrecorded[job.pk])
            transaction.on_commit(partial(self._unrecorded.pop, job.pk, None))

    def _previous(self, job: Job) -> Any:
        if job.step == 0 or job.step > len(self.steps):
            return None
        returns = self.steps[job.step - 1].returns
        return job.step_result if returns is None else load(job.step_result, returns)

    def _done(self, job: Job, index: int, result: Any) -> None:
        job_step_done(job=job, step=index + 1, of=len(self.steps), result=self._stored(index, result),
                      message=self.step_message(job, self.steps[index], result))

    def _stored(self, index: int, result: Any) -> Any:
        # The stored result is what the next step would be rebuilt from, so
        # a step whose result cannot be stored fails here, not on a retry.
        data = dump(result)
        if (returns := self.steps[index].returns) is not None:
            load(data, returns)
        return data

    def describe(self, job: Job, exc: BaseException) -> str:
        name = self.steps[job.step].name if job.step < len(self.steps) else "finish"
        return f"Step '{name}' failed: {super().describe(job, exc)}"

    def step_message(self, job: Job, step: Step, result: Any) -> str:
        return f"{job.kind.capitalize()}: {step.name} done"

