"""``/ws/status/``: who may connect, what they get, and what they never see."""

from __future__ import annotations

import json
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from rest_framework.authtoken.models import Token

from jobs.serializers import job_report
from project.asgi import application
from project.names import JOB_UPDATE, WS_CLOSE_TOO_BIG, user_group
from tests.factories import make_order

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(30)]

ORIGIN = (b"origin", b"http://localhost:8000")


def ws(*headers) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/status/", headers=list(headers))


def token_header(key: str):
    return (b"authorization", f"Token {key}".encode())


async def _token(user) -> str:
    return (await Token.objects.aget_or_create(user=user))[0].key


async def test_anonymous_is_refused(channel_layer):
    communicator = ws(ORIGIN)
    connected, code = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_invalid_token_is_refused_even_with_a_session_origin(channel_layer):
    communicator = ws(ORIGIN, token_header("not-a-real-token"))
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_foreign_origin_is_refused_even_with_a_valid_token(channel_layer, user):
    communicator = ws((b"origin", b"http://evil.example"), token_header(await _token(user)))
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_session_cookie_authenticates_the_browser(channel_layer, user, client):
    await sync_to_async(client.force_login)(user)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    communicator = ws(ORIGIN, (b"cookie", cookie.encode()))
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "snapshot"
    await communicator.disconnect()


async def test_session_without_origin_is_refused(channel_layer, user, client):
    await sync_to_async(client.force_login)(user)
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}"
    communicator = ws((b"cookie", cookie.encode()))
    connected, _ = await communicator.connect()
    assert not connected
    await communicator.disconnect()


async def test_snapshot_lists_the_users_own_unfinished_and_recent_jobs(channel_layer, make_user):
    alice, bob = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    mine = await sync_to_async(make_order)(alice)
    await sync_to_async(make_order)(bob)
    communicator = ws(token_header(await _token(alice)))
    connected, _ = await communicator.connect()
    assert connected
    snapshot = await communicator.receive_json_from()
    assert snapshot["type"] == "snapshot"
    assert [job["id"] for job in snapshot["jobs"]] == [mine.job_id]
    assert snapshot["jobs"][0]["subject"] == {"type": "orders.order", "id": str(mine.pk)}
    await communicator.disconnect()


async def test_two_users_only_ever_receive_their_own_events(events_layer, make_user):
    alice, bob = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    sockets = {}
    for user in (alice, bob):
        sockets[user.pk] = ws(token_header(await _token(user)))
        assert (await sockets[user.pk].connect())[0]
        await sockets[user.pk].receive_json_from()  # snapshot
    alice_order = await sync_to_async(make_order)(alice)
    bob_order = await sync_to_async(make_order)(bob)
    # make_order already pushed one "queued" event each; push many more.
    for i in range(50):
        for user, order in ((alice, alice_order), (bob, bob_order)):
            job = await sync_to_async(lambda o: o.job)(order)
            await events_layer.group_send(
                user_group(user.pk), {"type": JOB_UPDATE, "job": job_report(job), "message": f"event {i}"}
            )
    for user, order in ((alice, alice_order), (bob, bob_order)):
        received = [await sockets[user.pk].receive_json_from() for _ in range(51)]
        assert {frame["type"] for frame in received} == {"job"}
        assert {frame["job"]["id"] for frame in received} == {order.job_id}
        assert await sockets[user.pk].receive_nothing()
        await sockets[user.pk].disconnect()


async def test_ping_pong_and_bad_frames_get_an_error_not_a_disconnect(channel_layer, user):
    communicator = ws(token_header(await _token(user)))
    assert (await communicator.connect())[0]
    await communicator.receive_json_from()
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    for frame in ("not json", json.dumps([1, 2]), json.dumps({"type": "subscribe", "group": "user.1"})):
        await communicator.send_to(text_data=frame)
        reply = await communicator.receive_json_from()
        assert reply["type"] == "error" and reply["error"] == "unsupported_frame"
    await communicator.send_to(bytes_data=b"\x00\xff garbage")
    assert (await communicator.receive_json_from())["type"] == "error"
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_oversized_frame_closes_with_a_code_a_server_may_send(channel_layer, user, caplog):
    communicator = ws(token_header(await _token(user)))
    assert (await communicator.connect())[0]
    await communicator.receive_json_from()
    await communicator.send_to(text_data="x" * 4097)
    assert await communicator.receive_output() == {"type": "websocket.close", "code": WS_CLOSE_TOO_BIG}
    await communicator.disconnect()
    # RFC 6455 leaves 3000-4999 to applications; daphne (autobahn) refuses
    # to send 1009 for us, and closes with 1011 after logging an error.
    assert 4000 <= WS_CLOSE_TOO_BIG <= 4999
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_frame_of_exactly_4_kib_is_still_read(channel_layer, user):
    communicator = ws(token_header(await _token(user)))
    assert (await communicator.connect())[0]
    await communicator.receive_json_from()
    await communicator.send_to(text_data=json.dumps({"type": "ping", "pad": "x" * 4060}).ljust(4096))
    assert await communicator.receive_json_from() == {"type": "pong"}
    await communicator.disconnect()


async def test_a_flooding_client_does_not_disturb_another_user(channel_layer, make_user):
    noisy, quiet = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    flooder, listener = ws(token_header(await _token(noisy))), ws(token_header(await _token(quiet)))
    for communicator in (flooder, listener):
        assert (await communicator.connect())[0]
        await communicator.receive_json_from()
    for i in range(2000):
        await flooder.send_to(text_data=json.dumps({"type": "ping"}) if i % 2 else "garbage")
    order = await sync_to_async(make_order)(quiet)
    frame = await listener.receive_json_from(timeout=5)
    assert frame["type"] == "job" and frame["job"]["id"] == order.job_id
    # The flooder is answered, in order, and still connected.
    replies = [await flooder.receive_json_from(timeout=5) for _ in range(2000)]
    assert [r["type"] for r in replies[:2]] == ["error", "pong"]
    await flooder.send_json_to({"type": "ping"})
    assert await flooder.receive_json_from() == {"type": "pong"}
    await flooder.disconnect()
    await listener.disconnect()


def _synthetic_isbns(n: int) -> list[str]:
    from books.isbn import isbn13_check_digit

    return [f"9795{i:08d}" + isbn13_check_digit(f"9795{i:08d}") for i in range(n)]


async def test_snapshot_restores_every_unfinished_batch_however_many_lookups_run(channel_layer, user):
    from books.services import books_register
    from jobs.selectors import job_snapshot_for_user

    # A batch's job is created before its lookups: 250 of them push it out
    # of the 200 newest unfinished jobs.
    batch = (await sync_to_async(books_register)(user=user, values=_synthetic_isbns(250))).batch
    order = await sync_to_async(make_order)(user)
    newest = await sync_to_async(job_snapshot_for_user)(user_id=user.pk)
    assert batch.job_id not in {job.pk for job in newest}

    communicator = ws(token_header(await _token(user)))
    assert (await communicator.connect())[0]
    snapshot = await communicator.receive_json_from()
    listed = [job["id"] for job in snapshot["jobs"]]
    assert batch.job_id in listed and order.job_id in listed
    # The 200 newest unfinished jobs (the payment's among them), and the batch missing from them.
    assert len(listed) == len(set(listed)) == 201
    restored = next(job for job in snapshot["jobs"] if job["id"] == batch.job_id)
    assert restored["kind"] == "book_batch" and restored["subject"] == {"type": "books.bookbatch", "id": str(batch.pk)}
    await communicator.disconnect()
