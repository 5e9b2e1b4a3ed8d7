import pytest

from jobs.exceptions import InvalidJobMessage
from jobs.messages import job_message, parse_job_message
from jobs.services import retry_delay
from project.names import JOB_RUN, user_group


def test_job_message_round_trips():
    assert job_message(42) == {"type": JOB_RUN, "job": 42}
    assert parse_job_message(job_message(42)) == 42


@pytest.mark.parametrize(
    "message",
    [None, [], {}, {"job": None}, {"job": "42"}, {"job": -1}, {"job": 0}, {"job": True}, {"job": 4.2}, {"job": 2**63}],
)
def test_a_message_that_names_no_job_is_invalid(message):
    with pytest.raises(InvalidJobMessage):
        parse_job_message(message)


def test_retry_delay_grows_exponentially_with_jitter_and_is_capped(settings):
    settings.JOBS_RETRY_BASE_DELAY = 1.0
    settings.JOBS_RETRY_MAX_DELAY = 60.0
    for attempts, ceiling in [(1, 1), (2, 2), (3, 4), (6, 32), (7, 60), (30, 60)]:
        delays = {retry_delay(attempts) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1, "jitter spreads retries out"


def test_user_groups_are_per_user():
    assert user_group(1) != user_group(2)
    assert user_group("7") == "user.7"


def test_lookups_refused_together_come_back_with_one_message_first():
    from datetime import datetime, timedelta, timezone

    from consumers.books import FOLLOW_AFTER, BookConsumer

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def at(seconds: float) -> datetime:
        return start + timedelta(seconds=seconds)

    consumer = BookConsumer()
    # One call's 25 lookups, refused with one Retry-After: the latest due
    # goes first; the others follow it, never before.
    messages = consumer.retry_messages([(job, at(60.0 + job / 1000)) for job in range(1, 26)])
    assert messages[0] == (25, at(60.025))
    assert sorted(job for job, _ in messages) == list(range(1, 26))  # every job keeps a message
    assert {when for _, when in messages[1:]} == {at(60.025) + FOLLOW_AFTER}
    # Backoffs seconds apart come due apart: each group leads with its own.
    assert consumer.retry_messages([(1, at(2.0)), (2, at(2.4)), (3, at(30.0))]) == [
        (3, at(30.0)), (2, at(2.4)), (1, at(2.4) + FOLLOW_AFTER)]
