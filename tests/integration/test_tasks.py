"""Django's Tasks API on our workers (issue #17): ``ChannelsBackend``, run by the real ``TaskConsumer``.

In this process, against the real database and the in-memory channel
layers: a task is enqueued through the standard API, its message is read off
its queue and run by the consumer routing.py gives that queue (or by a real
``JobWorker``), and its result is read back through the API.  The behaviour a
developer relies on runs again on Django's own Immediate backend, so code
written for ours also runs in a plain Django set-up.  Concurrency is proved
by structure: each async task counts the peers running beside it.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.http import JsonResponse
from django.test import override_settings
from django.urls import path
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import IsAuthenticated

from jobs.concurrency import calling_loop
from jobs.exceptions import TaskArgumentsNotJSON
from jobs.messages import job_message
from jobs.models import Job, JobStatus
from jobs.requeue import requeue_stuck
from jobs.tasks import WORKER_ID, enqueue_as
from jobs.worker import JobWorker
from project.names import EMAILS, JOB_UPDATE, TASKS as DEFAULT_QUEUE
from routing import channel_router
from tests import tasks
from tests.channels import deliver, drain, received
from tests.factories import make_order

try:  # Django 6 ships the API as django.tasks.
    from django.tasks import TaskResultStatus
    from django.tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist, TaskResultMismatch
except ImportError:
    from django_tasks import TaskResultStatus
    from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist, TaskResultMismatch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90), pytest.mark.engine]

QUEUES = [DEFAULT_QUEUE, EMAILS]
OURS = {"default": {"BACKEND": "jobs.backends.ChannelsBackend", "QUEUES": QUEUES}}
IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend", "QUEUES": QUEUES}}
ORIGIN = (b"origin", b"http://localhost:8000")


class Backend:
    """The task backend a test runs on, and how its queued work gets run."""

    def __init__(self, name: str, layer):
        self.name = name
        self.layer = layer

    @property
    def ours(self) -> bool:
        return self.name == "channels"

    async def arun(self) -> int:
        """Run every message waiting on the task queues with the consumer routing.py gives them; how many.

        The Immediate backend ran its tasks in ``enqueue``: nothing waits.
        """
        ran = 0
        if self.ours:
            for queue in QUEUES:
                messages = await drain(self.layer, queue, quiet=0.05)
                if messages:
                    await deliver(queue, *messages)
                ran += len(messages)
        return ran

    def run(self) -> int:
        return async_to_sync(self.arun)()


@pytest.fixture
def ours(settings, channel_layer) -> Backend:
    settings.TASKS = OURS
    return Backend("channels", channel_layer)


@pytest.fixture(params=["channels", "immediate"])
def backend(request, settings, channel_layer) -> Backend:
    """Ours, then Django's Immediate backend: django_tasks drops its backends when ``TASKS`` changes."""
    settings.TASKS = OURS if request.param == "channels" else IMMEDIATE
    return Backend(request.param, channel_layer)


def read_back(result):
    """The result as the backend now has it: a backend that stores results is asked again."""
    if result.task.get_backend().supports_get_result:
        result.refresh()
    return result


async def aread_back(result):
    if result.task.get_backend().supports_get_result:
        await result.arefresh()
    return result


def job_of(result) -> Job:
    return Job.objects.get(pk=int(result.id))


def run_job(job_id: int, queue: str = DEFAULT_QUEUE) -> Job:
    """Deliver one ``job.run`` for ``job_id`` to the queue's consumer; the row after."""
    async_to_sync(deliver)(queue, job_message(job_id))
    return Job.objects.get(pk=job_id)


# --- the same behaviour on ours and on Django's Immediate backend ---------------------------


def test_a_task_runs_and_its_result_is_read_back(backend):
    result = tasks.count_in_steps.enqueue(3, label="books")
    assert result.backend == "default"
    backend.run()
    result = read_back(result)
    assert result.status == TaskResultStatus.SUCCESSFUL and result.is_finished
    assert result.return_value == {"counted": 3, "label": "books", "attempt": 1}
    assert (result.args, result.kwargs) == ([3], {"label": "books"})
    assert result.errors == []
    assert result.attempts == 1 and len(result.worker_ids) == 1
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at


def test_a_task_without_context_returns_its_value(backend):
    result = tasks.add.enqueue(2, b=40)
    backend.run()
    assert read_back(result).return_value == 42


async def test_an_async_task_runs_and_aget_result_reads_it(backend):
    result = await tasks.gather.aenqueue(uuid.uuid4().hex, 1)
    await backend.arun()
    result = await aread_back(result)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 1


def test_a_plain_error_fails_the_task_at_once_with_its_traceback(backend):
    result = tasks.broken.enqueue("no such shelf")
    backend.run()
    result = read_back(result)
    assert result.status == TaskResultStatus.FAILED
    assert result.attempts == 1
    [error] = result.errors
    assert error.exception_class is tasks.BrokenOnPurpose
    assert "BrokenOnPurpose: no such shelf" in error.traceback
    assert "raise BrokenOnPurpose(reason)" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018


def test_a_model_instance_is_refused_at_enqueue(backend, user):
    with pytest.raises(TypeError):
        tasks.add.enqueue(user, 1)
    assert not Job.objects.exists()


def test_an_unknown_queue_is_refused(backend):
    with pytest.raises(InvalidTaskError, match="'nope'"):
        tasks.add.using(queue_name="nope").enqueue(1, 2)
    assert not Job.objects.exists()


def test_progress_and_metadata_never_get_in_the_way_of_a_task(backend, user):
    with enqueue_as(user):
        result = tasks.count_in_steps.enqueue(20)
    backend.run()
    assert read_back(result).return_value["counted"] == 20
    # Ours keeps them in the job record; Immediate has none, and none is made.
    if backend.ours:
        job = job_of(result)
        assert (job.progress, job.message) == (100, "Step 20 of 20")
        assert job.metadata == {"label": "", "steps": 20}
    else:
        assert not Job.objects.exists()


# --- enqueue: the durable record, and the message after commit ----------------------------------


def test_enqueue_writes_the_job_record_and_sends_its_message(ours, channel_layer):
    result = tasks.count_in_steps.enqueue(3, label="x")
    job = job_of(result)
    assert result.status == TaskResultStatus.READY
    assert (job.kind, job.channel, job.backend) == ("tests.tasks.count_in_steps", DEFAULT_QUEUE, "default")
    assert job.payload == {"args": [3], "kwargs": {"label": "x"}}
    assert (job.status, job.attempts, job.user_id, job.subject_type) == (JobStatus.PENDING, 0, None, "")
    assert received(channel_layer, DEFAULT_QUEUE) == [job_message(job.pk)]


def test_inside_a_transaction_the_message_goes_only_after_commit(ours, channel_layer):
    with transaction.atomic():
        result = tasks.add.enqueue(1, 2)
        assert Job.objects.filter(pk=int(result.id)).exists()
        assert received(channel_layer, DEFAULT_QUEUE) == []
    assert received(channel_layer, DEFAULT_QUEUE) == [job_message(int(result.id))]


def test_a_rolled_back_enqueue_leaves_neither_record_nor_message(ours, channel_layer):
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.add.enqueue(1, 2)
        raise RuntimeError("the view failed after enqueueing")
    assert not Job.objects.exists()
    assert received(channel_layer, DEFAULT_QUEUE) == []


def test_a_task_goes_to_the_channel_its_queue_names_with_its_priority(ours, channel_layer):
    result = tasks.on_emails.enqueue("hello")
    job = job_of(result)
    assert (job.channel, job.priority) == (EMAILS, 3)
    assert received(channel_layer, EMAILS) == [job_message(job.pk)]
    assert received(channel_layer, DEFAULT_QUEUE) == []
    assert run_job(job.pk, EMAILS).result == "HELLO"


def test_priority_is_stored_and_read_back(ours):
    result = tasks.add.using(priority=7).enqueue(1, 2)
    assert job_of(result).priority == 7
    assert tasks.add.get_result(result.id).task.priority == 7


def test_a_model_instance_is_refused_with_a_message_that_says_what_to_pass(ours, user):
    with pytest.raises(TaskArgumentsNotJSON, match=rf"User instance.*pass its primary key \({user.pk}\)"):
        tasks.add.enqueue(1, b=user)
    with pytest.raises(TypeError, match=r"argument \[0\]\['when'\] is a datetime"):
        tasks.add.enqueue({"when": timezone.now()}, 1)
    with pytest.raises(TypeError, match="JSON keys are strings"):
        tasks.add.enqueue({1: "one"}, 1)
    for number in (float("nan"), float("inf"), -float("inf")):
        # JSON has no such numbers: the database would refuse them, less clearly.
        with pytest.raises(TaskArgumentsNotJSON, match=r"argument \[0\]\[1\] is .*not a JSON number"):
            tasks.add.enqueue([1, number], 1)
    assert not Job.objects.exists()


def test_an_unknown_queue_names_the_known_ones(ours):
    with pytest.raises(InvalidTaskError, match="'nope'.*its queues are default, emails"):
        tasks.add.using(queue_name="nope")
    assert not Job.objects.exists()


# --- results read from the record -----------------------------------------------------------------


def test_get_result_follows_the_record_from_ready_to_successful(ours):
    result = tasks.count_in_steps.enqueue(2)
    assert tasks.count_in_steps.get_result(result.id).status == TaskResultStatus.READY
    with pytest.raises(ValueError, match="not finished"):
        tasks.count_in_steps.get_result(result.id).return_value  # noqa: B018
    job = run_job(int(result.id))
    read = tasks.count_in_steps.get_result(result.id)
    assert read.status == TaskResultStatus.SUCCESSFUL
    assert read.return_value == {"counted": 2, "label": "", "attempt": 1}
    assert read.worker_ids == [WORKER_ID]
    assert (read.enqueued_at, read.started_at, read.finished_at) == (job.created_at, job.started_at, job.finished_at)


async def test_aget_result_reads_the_record(ours):
    result = await tasks.add.aenqueue(20, 22)
    await ours.arun()
    read = await tasks.add.aget_result(result.id)
    assert (read.status, read.return_value) == (TaskResultStatus.SUCCESSFUL, 42)


@pytest.mark.parametrize("result_id", ["999999", "abc", "", "1" * 40])
def test_an_unknown_result_id_does_not_exist(ours, result_id):
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result(result_id)


def test_another_tasks_result_is_not_this_tasks(ours):
    result = tasks.add.enqueue(1, 2)
    with pytest.raises(TaskResultMismatch):
        tasks.broken.get_result(result.id)


def test_a_declared_jobs_record_is_no_tasks_result(ours, user):
    order = make_order(user)
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result(str(order.job_id))


@pytest.mark.parametrize("what", sorted(tasks.NOT_JSON))
def test_a_return_value_that_is_not_json_fails_the_task_at_once(ours, what):
    result = tasks.returns_no_json.enqueue(what)
    ours.run()
    result = read_back(result)
    assert (result.status, result.attempts) == (TaskResultStatus.FAILED, 1)
    assert [error.exception_class_path for error in result.errors] == ["jobs.exceptions.TaskResultNotJSON"]
    assert "not JSON" in job_of(result).error


# --- retries: TransientError with backoff, anything else at once ---------------------------


def test_a_transient_error_retries_then_succeeds_with_every_attempt_on_record(ours):
    result = tasks.flaky.enqueue(2)
    job_id = int(result.id)
    first = run_job(job_id)
    assert (first.status, first.attempts) == (JobStatus.RETRYING, 1)
    assert tasks.flaky.get_result(result.id).status == TaskResultStatus.READY
    run_job(job_id)
    job = run_job(job_id)
    read = tasks.flaky.get_result(result.id)
    assert read.status == TaskResultStatus.SUCCESSFUL
    assert read.return_value == 3 == job.attempts == read.attempts
    assert read.worker_ids == [WORKER_ID] * 3
    assert [error.exception_class_path for error in read.errors] == ["integrations.exceptions.TransientError"] * 2
    assert "not yet (attempt 1)" in read.errors[0].traceback and "not yet (attempt 2)" in read.errors[1].traceback
    # Started with the first attempt; last attempted with the third.
    assert read.started_at == first.last_attempt_at < read.last_attempted_at == job.last_attempt_at


def test_a_retry_waits_for_its_backoff_in_the_record(ours):
    result = tasks.flaky_slowly.enqueue()
    job = run_job(int(result.id))
    assert job.status == JobStatus.RETRYING
    # Between half the delay and the delay (equal jitter), stored with the retry.
    assert timedelta(seconds=30) <= job.next_attempt_at - job.last_attempt_at <= timedelta(seconds=61)
    # A message before it is due (a repeated delivery, a requeue) runs nothing.
    assert run_job(job.pk).attempts == 1
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    job = run_job(job.pk)
    assert (job.status, job.attempts, job.result) == (JobStatus.OK, 2, 2)


def test_transient_errors_fail_the_task_once_its_attempts_are_spent(ours):
    result = tasks.always_transient.enqueue()
    run_job(int(result.id))
    job = run_job(int(result.id))
    read = read_back(result)
    assert (job.status, read.status, read.attempts) == (JobStatus.FAILED, TaskResultStatus.FAILED, 2)
    assert len(read.errors) == 2
    assert "still down (attempt 2)" in job.error


def test_a_plain_error_is_never_retried_whatever_the_tasks_attempts(ours):
    result = tasks.broken.enqueue("bad input")
    job = run_job(int(result.id))
    assert (job.status, job.attempts, job.next_attempt_at) == (JobStatus.FAILED, 1, None)
    assert "BrokenOnPurpose: bad input" in job.error and "Traceback" in job.traceback
    assert run_job(job.pk).attempts == 1  # a repeated delivery runs nothing


async def until(predicate, *, timeout: float = 30):
    async with asyncio.timeout(timeout):
        while not (value := await predicate()):
            await asyncio.sleep(0.05)
    return value


async def finished(job_id: int) -> Job | None:
    job = await Job.objects.aget(pk=job_id)
    return job if job.is_finished else None


async def start_worker(layer, *, concurrency: int = 2, channels=(DEFAULT_QUEUE,)) -> tuple[JobWorker, asyncio.Task]:
    """A worker on this test's loop, started: the loop serves as runworker's does before anything is enqueued."""
    worker = JobWorker(application=channel_router, channels=list(channels), channel_layer=layer,
                       concurrency=concurrency, grace=30)
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0)  # run() marks the loop serving before its first wait
    assert calling_loop() is asyncio.get_running_loop()
    return worker, running


async def stopped(worker: JobWorker, running: asyncio.Task) -> int:
    worker.stop()
    async with asyncio.timeout(30):
        return await running


async def test_a_worker_wakes_each_retry_when_due_with_no_requeue(ours, channel_layer):
    worker, running = await start_worker(channel_layer)
    try:
        result = await tasks.flaky_briefly.aenqueue(2)
        job = await until(lambda: finished(int(result.id)))
    finally:
        assert await stopped(worker, running) == 0
    assert (job.status, job.attempts, job.result) == (JobStatus.OK, 3, 3)
    assert worker.processed == 3  # one message per attempt: the first, and one wake-up per retry


# --- the requeue guarantee, and code that moved -----------------------------------------------


def test_a_task_whose_message_was_lost_is_sent_again_by_requeue(ours, channel_layer):
    result = tasks.add.enqueue(1, 2)
    assert received(channel_layer, DEFAULT_QUEUE) == [job_message(int(result.id))]  # and lost: nobody runs it
    Job.objects.filter(pk=int(result.id)).update(updated_at=timezone.now() - timedelta(hours=1))
    report = requeue_stuck(older_than=timedelta(minutes=5))
    assert (report.found, report.requeued) == (1, 1)
    ours.run()
    assert (read_back(result).status, read_back(result).return_value) == (TaskResultStatus.SUCCESSFUL, 3)


def test_a_task_whose_worker_died_runs_again_after_requeue(ours, channel_layer):
    result = tasks.count_in_steps.enqueue(2)
    received(channel_layer, DEFAULT_QUEUE)
    # What a worker killed mid-task leaves: the job running, its attempt and its worker on record.
    Job.objects.filter(pk=int(result.id)).update(
        status=JobStatus.RUNNING, attempts=1, worker_ids=["dead-host:1"], last_attempt_at=timezone.now(),
        started_at=timezone.now(), updated_at=timezone.now() - timedelta(hours=1))
    assert requeue_stuck(older_than=timedelta(minutes=5)).requeued == 1
    assert ours.run() == 1
    read = read_back(result)
    assert read.status == TaskResultStatus.SUCCESSFUL
    assert read.worker_ids == ["dead-host:1", WORKER_ID]
    assert read.return_value["attempt"] == 2


def test_a_task_no_longer_in_the_code_fails_and_has_no_result(ours):
    result = tasks.add.enqueue(1, 2)
    Job.objects.filter(pk=int(result.id)).update(kind="tests.tasks.renamed_since")
    job = run_job(int(result.id))
    assert job.status == JobStatus.FAILED
    assert "No task tests.tasks.renamed_since" in job.error
    with pytest.raises(TaskResultDoesNotExist, match="no longer exists"):
        tasks.add.get_result(result.id)


# --- run_after -----------------------------------------------------------------------------------


def test_run_after_keeps_the_task_until_it_is_due(ours, channel_layer):
    due = timezone.now() + timedelta(hours=1)
    result = tasks.add.using(run_after=due).enqueue(1, 2)
    job = job_of(result)
    assert (job.status, job.next_attempt_at, job.message) == (JobStatus.PENDING, due, "Scheduled")
    assert received(channel_layer, DEFAULT_QUEUE) == []  # nothing to wake a worker for an hour
    # A message that comes early (a duplicate, a requeue) runs nothing.
    job = run_job(job.pk)
    assert (job.status, job.attempts) == (JobStatus.PENDING, 0)
    assert read_back(result).status == TaskResultStatus.READY


def test_a_run_after_already_past_is_sent_at_once_where_no_loop_lives(ours, channel_layer):
    # Enqueued where no loop lives on (a command, cron): nothing would wake it later.
    result = tasks.add.using(run_after=timezone.now() - timedelta(minutes=1)).enqueue(1, 2)
    assert ours.run() == 1  # its message was sent at enqueue
    assert read_back(result).return_value == 3


def test_a_run_after_that_came_with_nobody_to_wake_it_is_sent_by_requeue(ours, channel_layer):
    # Enqueued where no loop lives on, for later: the due time is in the row,
    # and requeue sends it once it is overdue, however fresh the row.
    result = tasks.add.using(run_after=timezone.now() + timedelta(minutes=10)).enqueue(1, 2)
    assert received(channel_layer, DEFAULT_QUEUE) == []
    assert requeue_stuck(older_than=timedelta(hours=1)).requeued == 0  # not due yet
    Job.objects.filter(pk=int(result.id)).update(next_attempt_at=timezone.now() - timedelta(minutes=1))  # time passes
    assert requeue_stuck(older_than=timedelta(hours=1)).requeued == 1
    assert ours.run() == 1
    assert read_back(result).return_value == 3


@pytest.mark.parametrize("offset", [timedelta(seconds=-5), timedelta(seconds=1)], ids=["past", "near-future"])
async def test_a_worker_runs_a_task_when_its_run_after_comes(ours, channel_layer, offset):
    worker, running = await start_worker(channel_layer)
    try:
        due = timezone.now() + offset
        result = await tasks.add.using(run_after=due).aenqueue(1, 2)
        job = await until(lambda: finished(int(result.id)))
    finally:
        assert await stopped(worker, running) == 0
    assert (job.status, job.result) == (JobStatus.OK, 3)
    assert job.started_at >= due


# --- live progress and metadata, to the owner's websockets -------------------------------------


async def _token(user) -> str:
    return (await Token.objects.aget_or_create(user=user))[0].key


async def status_socket(user) -> WebsocketCommunicator:
    from project.asgi import application

    communicator = WebsocketCommunicator(application, "/ws/status/",
                                         headers=[(b"authorization", f"Token {await _token(user)}".encode())])
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "snapshot"
    return communicator


async def frames_until(communicator, job_id: int, last) -> list[dict]:
    """The job's frames on the socket, up to the first that ``last`` accepts."""
    frames = []
    async with asyncio.timeout(30):
        while not frames or not last(frames[-1]):
            frame = await communicator.receive_json_from(timeout=30)
            assert frame["type"] == "job" and frame["job"]["id"] == job_id, frame
            frames.append(frame)
    return frames


async def test_progress_and_metadata_reach_the_owners_websocket(ours, serving_loop, make_user, tmp_path):
    owner, other = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    mine, theirs = await status_socket(owner), await status_socket(other)
    try:
        with enqueue_as(owner):
            result = await tasks.slow_until_released.aenqueue(str(tmp_path))
        [message] = await drain(ours.layer, DEFAULT_QUEUE, quiet=0.05)
        running = asyncio.create_task(deliver(DEFAULT_QUEUE, message))
        # While the task waits, its owner sees how far it is and what it said, however updates are paced.
        waiting = await frames_until(mine, int(result.id), lambda f: f["job"]["progress"] == 10)
        assert waiting[0]["job"]["status"] == "pending"
        assert waiting[0]["job"]["kind"] == "tests.tasks.slow_until_released"
        assert (waiting[-1]["job"]["status"], waiting[-1]["message"]) == ("running", "Started, waiting for the release")
        assert waiting[-1]["job"]["metadata"] == {"waited_on": str(tmp_path / "release")}
        (tmp_path / "release").touch()
        done = await frames_until(mine, int(result.id), lambda f: f["job"]["status"] in ("ok", "failed"))
        await running
        # The task said how it went: its last word stands.
        assert (done[-1]["job"]["status"], done[-1]["job"]["progress"]) == ("ok", 100)
        assert done[-1]["message"] == "Released and done"
        assert await theirs.receive_nothing()
    finally:
        await mine.disconnect()
        await theirs.disconnect()


async def test_a_task_for_nobody_runs_and_tells_nobody(ours, serving_loop, user):
    socket = await status_socket(user)
    try:
        result = await tasks.count_in_steps.aenqueue(2)
        await ours.arun()
        assert (await aread_back(result)).status == TaskResultStatus.SUCCESSFUL
        assert await socket.receive_nothing()
    finally:
        await socket.disconnect()


async def test_a_task_that_fails_tells_its_owner_why(ours, events_layer, serving_loop, user):
    listener = await events_layer.new_channel()
    await events_layer.group_add(f"user.{user.pk}", listener)
    with enqueue_as(user):
        result = await tasks.broken.aenqueue("no such shelf")
    await ours.arun()
    events = await drain(events_layer, listener)
    assert {event["type"] for event in events} == {JOB_UPDATE}
    last = events[-1]
    assert last["job"]["status"] == "failed" and "no such shelf" in last["job"]["error"]
    assert last["job"]["id"] == int(result.id)


# --- the owner: the request's signed-in user, or enqueue_as -------------------------------------


def enqueue_view(request):
    result = tasks.add.enqueue(1, 2)
    return JsonResponse({"id": result.id}, status=202)


def enqueue_for_nobody_view(request):
    with enqueue_as(None):
        result = tasks.add.enqueue(1, 2)
    return JsonResponse({"id": result.id}, status=202)


@api_view(["POST"])
@authentication_classes([TokenAuthentication])
@permission_classes([IsAuthenticated])
def enqueue_api_view(request):
    result = tasks.add.enqueue(1, 2)
    return JsonResponse({"id": result.id}, status=202)


urlpatterns = [
    path("enqueue/", enqueue_view),
    path("enqueue-for-nobody/", enqueue_for_nobody_view),
    path("api/enqueue/", enqueue_api_view),
]


def owner_of(response) -> int | None:
    assert response.status_code == 202, response.content
    return Job.objects.get(pk=int(response.json()["id"])).user_id


@override_settings(ROOT_URLCONF=__name__)
def test_a_task_a_view_enqueues_belongs_to_the_signed_in_user(ours, client, user):
    client.force_login(user)
    assert owner_of(client.get("/enqueue/")) == user.pk


@override_settings(ROOT_URLCONF=__name__)
def test_a_task_an_anonymous_request_enqueues_belongs_to_nobody(ours, client):
    assert owner_of(client.get("/enqueue/")) is None


@override_settings(ROOT_URLCONF=__name__)
def test_a_token_authenticated_api_view_makes_the_tokens_user_the_owner(ours, client, user):
    key = Token.objects.create(user=user).key
    assert owner_of(client.post("/api/enqueue/", HTTP_AUTHORIZATION=f"Token {key}")) == user.pk


@override_settings(ROOT_URLCONF=__name__)
def test_enqueue_as_overrides_the_requests_user(ours, client, user):
    client.force_login(user)
    assert owner_of(client.get("/enqueue-for-nobody/")) is None


@override_settings(ROOT_URLCONF=__name__)
def test_the_requests_user_is_forgotten_when_its_response_is_done(ours, client, user):
    client.force_login(user)
    owner_of(client.get("/enqueue/"))
    assert job_of(tasks.add.enqueue(1, 2)).user_id is None


def test_enqueue_as_names_the_owner_and_subject_outside_a_request(ours, channel_layer, events_layer, user):
    order = make_order(user)
    async_to_sync(events_layer.group_add)(f"user.{user.pk}", "listener")
    with enqueue_as(user, subject=order):
        job = job_of(tasks.add.enqueue(1, 2))
    with enqueue_as(user.pk, announce=False):
        quiet = job_of(tasks.add.enqueue(3, 4))
    assert (job.user_id, job.subject_type, job.subject_id) == (user.pk, "orders.order", str(order.pk))
    assert quiet.user_id == user.pk
    heard = [event["job"]["id"] for event in received(events_layer, "listener")]
    assert job.pk in heard and quiet.pk not in heard  # announce=False: no "queued"
    assert job_of(tasks.add.enqueue(5, 6)).user_id is None  # only inside the block


# --- async tasks: on the worker's event loop, as many at once as its concurrency -----------------


async def test_async_tasks_run_at_once_on_one_worker_up_to_its_concurrency(ours, channel_layer):
    peers = 5
    key = uuid.uuid4().hex
    worker, running = await start_worker(channel_layer, concurrency=peers)
    try:
        results = [await tasks.gather.aenqueue(key, peers) for _ in range(peers)]
        jobs = [await until(lambda r=r: finished(int(r.id)), timeout=60) for r in results]
    finally:
        assert await stopped(worker, running) == 0
    # Each saw every one of its peers running beside it: all five at once.
    assert [job.result for job in jobs] == [peers] * peers
    assert {job.status for job in jobs} == {JobStatus.OK}
    # On the worker's event loop (this test's, in the main thread), never in its threads.
    assert tasks.on_loop_thread(key) == [True] * peers
    assert tasks.present(key) == 0
    assert worker.processed == peers
