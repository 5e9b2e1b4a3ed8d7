"""A ``@task`` of Django's Tasks API across real processes (issue #17).

Enqueued by a management command (``manage.py shell``, as cron or an
operator's script would, with ``enqueue_as`` naming its owner), run by a real
``runworker`` over a real Redis, watched on its owner's real websocket
through daphne, and read back with ``get_result``.  Then the fault every job
survives: its worker is killed mid-task, and ``requeue`` sends it again.  The
task logs each start and finish to a file, so the test counts its runs in
every process, dead ones included.
"""

from __future__ import annotations

import asyncio
import json
import signal
import textwrap

import pytest
import websockets

from project.names import TASKS as DEFAULT_QUEUE

pytestmark = [pytest.mark.e2e, pytest.mark.engine, pytest.mark.timeout(300)]

USER = "alice"


def shell(stack, code: str) -> str:
    """Run ``code`` in ``manage.py shell`` against the stack's database and Redis; its last line of output."""
    result = stack.manage("shell", "-c", textwrap.dedent(code))
    return result.stdout.strip().splitlines()[-1]


def enqueue_slow_task(stack, directory) -> int:
    return int(shell(stack, f"""
        from django.contrib.auth import get_user_model
        from jobs.tasks import enqueue_as
        from tests.tasks import slow_until_released

        with enqueue_as(get_user_model().objects.get(username={USER!r})):
            print(slow_until_released.enqueue({str(directory)!r}).id)
    """))


def result_of(stack, result_id: int) -> dict:
    return json.loads(shell(stack, f"""
        import json
        from tests.tasks import slow_until_released

        result = slow_until_released.get_result({str(result_id)!r})
        print(json.dumps({{
            "status": result.status,
            "return_value": result.return_value if result.is_finished else None,
            "attempts": result.attempts,
            "worker_ids": result.worker_ids,
            "errors": [error.exception_class_path for error in result.errors],
            "ordered": result.enqueued_at <= result.started_at <= result.last_attempted_at <= result.finished_at,
        }}))
    """))


def job_row(stack, job_id: int) -> tuple[str, int]:
    [(status, attempts)] = stack.query("SELECT status, attempts FROM jobs_job WHERE id = %s", (job_id,))
    return status, attempts


async def frames_of(ws, job_id: int, until) -> list[dict]:
    """The job's frames on the socket, up to the first that ``until`` accepts."""
    frames = []
    async with asyncio.timeout(90):
        while not frames or not until(frames[-1]):
            frame = json.loads(await ws.recv())
            if frame["type"] == "job" and frame["job"]["id"] == job_id:
                frames.append(frame)
    return frames


def test_a_task_reports_to_its_owner_survives_a_killed_worker_and_finishes_once(make_stack, tmp_path):
    stack = make_stack()
    token = stack.tokens[USER]
    stack.start_web()
    worker = stack.start_worker("--only-channels", DEFAULT_QUEUE, "--concurrency", "2")
    runs = tmp_path / "runs"
    runs.mkdir()

    async def run():
        async with websockets.connect(stack.ws_url(), additional_headers={"Authorization": f"Token {token}"}) as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            job_id = await asyncio.to_thread(enqueue_slow_task, stack, runs)
            # Its owner hears it queued, then its own progress, as it runs.
            started = await frames_of(ws, job_id, lambda f: f["job"]["progress"] == 10)
            assert started[0]["job"]["status"] == "pending"
            assert started[0]["job"]["kind"] == "tests.tasks.slow_until_released"
            assert (started[-1]["job"]["status"], started[-1]["message"]) == ("running", "Started, waiting for the release")

            # Killed mid-task: nothing is recorded but what it wrote before.
            worker.send_signal(signal.SIGKILL)
            await asyncio.to_thread(worker.wait)
            assert job_row(stack, job_id) == ("running", 1)
            (runs / "release").touch()
            await asyncio.to_thread(stack.start_worker, "--only-channels", DEFAULT_QUEUE)
            # Nothing wakes the job but requeue, once it is older than --older-than.
            requeued = await asyncio.to_thread(
                stack.wait_until,
                lambda: "requeued 1" in stack.manage("requeue", "--older-than", "1s").stdout,
                timeout=60, interval=0.5, what="requeue to send the dead worker's task")
            assert requeued
            finished = await frames_of(ws, job_id, lambda f: f["job"]["status"] in ("ok", "failed"))
            return job_id, finished

    job_id, finished = asyncio.run(run())
    assert (finished[-1]["job"]["status"], finished[-1]["job"]["progress"]) == ("ok", 100)
    assert finished[-1]["message"] == "Released and done"
    assert finished[-1]["job"]["attempts"] == 2

    result = result_of(stack, job_id)
    assert result["status"] == "SUCCESSFUL"
    assert result["return_value"] == "done on attempt 2"
    assert result["attempts"] == 2 and len(set(result["worker_ids"])) == 2, result  # two processes, one each
    assert result["errors"] == []  # a killed worker raised nothing
    assert result["ordered"], result

    # Started twice, finished exactly once; and nothing sends it again.
    log = (runs / "runs.log").read_text().splitlines()
    assert [line.split()[0] for line in log] == ["start", "start", "done"], log
    assert log[1].split()[1] == log[2].split()[1] != log[0].split()[1], "the second worker finished it"
    again = stack.manage("requeue", "--older-than", "1s")
    assert "requeued 0" in again.stdout, again.stdout
    assert job_row(stack, job_id) == ("ok", 2)
