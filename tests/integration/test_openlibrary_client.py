"""The OpenLibrary client against the sandbox OpenLibrary over real HTTP, and against recorded answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from books.isbn import isbn10_to_isbn13
from devtools.processes import free_port
from integrations.exceptions import Throttled, TransientError
from integrations.openlibrary import Link, OpenLibraryClient
from integrations.openlibrary.exceptions import OpenLibraryBlocked
from integrations.ratelimit import RateLimiter

AGENT = "books-tests/1.0 (tests@example.com)"
RECORDED = Path(__file__).resolve().parent.parent / "fixtures" / "openlibrary"


def sandbox_url(gateway_url: str) -> str:
    return gateway_url.removesuffix("gateway/") + "openlibrary"


@pytest.fixture
def client(sandbox_server):
    return OpenLibraryClient(base_url=sandbox_url(sandbox_server()), timeout=(2, 5), user_agent=AGENT)


def test_a_known_isbn_gives_its_record(client):
    record = client.book("9780451526342")
    assert (record.title, record.pages, record.publish_date, record.key) == ("Animal Farm", 140, "1996", "/books/OL9176998M")
    assert record.authors == (Link("George Orwell", "https://openlibrary.org/authors/OL118077A/George_Orwell"),)
    assert "Snowball" in [p.name for p in record.people]
    assert client.session.headers["User-Agent"] == AGENT


def test_an_unknown_isbn_is_none(client):
    assert client.book("9780000000026") is None


def test_many_isbns_in_one_call_each_with_its_record_or_none(client, sandbox):
    sandbox.stats(reset=True)
    found = client.books(["9780451526342", "9780000000026", "9795000000019"])
    assert found["9780451526342"].title == "Animal Farm"
    assert found["9780000000026"] is None
    assert found["9795000000019"].title.startswith("Sandbox Book")
    assert sandbox.stats()["openlibrary"]["requests"] == 1


def test_a_batch_answered_with_nothing_is_asked_again_one_by_one(client, sandbox):
    # OpenLibrary answers {} also when it fails inside: {} for many is not proof of none.
    sandbox.stats(reset=True)
    assert client.books(["9780000000026", "9780000000033"]) == {"9780000000026": None, "9780000000033": None}
    assert sandbox.stats()["openlibrary"]["requests"] == 3


def test_the_sandbox_speaks_the_real_apis_shape(sandbox_server):
    url = sandbox_url(sandbox_server()) + "/api/books"
    headers = {"User-Agent": AGENT}
    both = requests.get(url, params={"bibkeys": "ISBN:0451526341,ISBN:9780000000026", "jscmd": "data",
                                     "format": "json"}, headers=headers, timeout=5).json()
    assert list(both) == ["ISBN:0451526341"]  # by ISBN-10 too; unknown keys are simply absent
    assert both["ISBN:0451526341"]["notes"].startswith("Sandbox data")
    script = requests.get(url, params={"bibkeys": "ISBN:9780451526342", "jscmd": "data"}, headers=headers, timeout=5)
    assert script.text.startswith("var _OLBookInfo = {")


@pytest.mark.parametrize("agent", ["", "python-requests/2.34", "MyLibrary/1.0"])
def test_a_client_that_names_no_contact_is_blocked_and_told_why(sandbox_server, agent):
    nameless = OpenLibraryClient(base_url=sandbox_url(sandbox_server()), timeout=(2, 5), user_agent=agent)
    if not agent:
        nameless.session.headers["User-Agent"] = ""
    with pytest.raises(OpenLibraryBlocked, match="OPENLIBRARY_USER_AGENT"):
        nameless.book("9780451526342")


def test_an_outage_is_transient(sandbox_server):
    failing = OpenLibraryClient(base_url=sandbox_url(sandbox_server(failure_rate=1.0)), timeout=(2, 5),
                                user_agent=AGENT)
    with pytest.raises(TransientError, match="OpenLibrary answered 503"):
        failing.book("9780451526342")


def test_a_slow_or_absent_openlibrary_is_transient(sandbox_server):
    slow = OpenLibraryClient(base_url=sandbox_url(sandbox_server(latency_ms=500)), timeout=(1, 0.1),
                             user_agent=AGENT)
    with pytest.raises(TransientError, match="unreachable"):
        slow.book("9780451526342")
    gone = OpenLibraryClient(base_url=f"http://127.0.0.1:{free_port()}", timeout=(0.5, 0.5))
    with pytest.raises(TransientError, match="unreachable"):
        gone.book("9780451526342")


def test_the_shared_limiter_keeps_the_pace_and_a_429_pauses_it(sandbox_server, settings):
    limiter = RateLimiter(rate="4 per 2 seconds", key="tests-openlibrary")
    client = OpenLibraryClient(base_url=sandbox_url(sandbox_server()), timeout=(2, 5), user_agent=AGENT,
                               limiter=limiter)
    for _ in range(4):
        client.book("9780451526342")
    assert limiter.limiter.get_window_stats(limiter.item, limiter.key).remaining == 0
    # A fifth call waits its turn (the window frees within 2 s) instead of being refused.
    assert limiter.wait() > 0
    limiter.exhaust()
    assert not limiter.limiter.test(limiter.item, limiter.key)


# --- recorded answers, replayed over HTTP ---------------------------------------------


class Replay:
    """A local HTTP server answering each request with the next recorded (status, headers, body)."""

    def __init__(self, answers: list[tuple[int, dict, str]]):
        self.answers = list(answers)
        self.seen: list[str] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                replay.seen.append(self.path)
                status, headers, body = replay.answers.pop(0)
                data = body.encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replay():
    servers: list[Replay] = []

    def make(*answers) -> OpenLibraryClient:
        server = Replay(list(answers))
        servers.append(server)
        return OpenLibraryClient(base_url=server.url, timeout=(2, 5), user_agent=AGENT)

    yield make
    for server in servers:
        server.close()


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def test_a_recorded_answer_keeps_the_authors_in_openlibrarys_order(replay):
    client = replay((200, {}, recorded("isbn_0201558025_concrete_mathematics.json").replace(
        '"ISBN:0201558025"', '"ISBN:9780201558029"')))
    record = client.book("9780201558029")
    assert [a.name for a in record.authors] == ["Ronald L. Graham", "Donald Knuth", "Oren Patashnik"]
    assert record.subtitle == "a foundation for computer science"
    assert record.by_statement.startswith("Ronald L. Graham")


def test_a_recorded_answer_under_another_bibkey_is_still_the_one_asked_for(replay):
    # OpenLibrary echoes the bibkey as it was sent: here a bare ISBN-10, "0575043636".
    client = replay((200, {}, recorded("bare_0575043636_wyrd_sisters.json")))
    wyrd = client.book(isbn10_to_isbn13("0575043636"))
    assert [a.name for a in wyrd.authors] == ["Terry Pratchett", "Joanne Harris", "Stephen Briggs", "Celia Imrie"]
    assert [p.name for p in wyrd.places] == ["Lancre (Imaginary place)", "Ankh-Morpork (Imaginary place)"]
    assert "Sorcières" in [s.name for s in wyrd.subjects]
    assert wyrd.subtitle and wyrd.by_statement == "by Terry Pratchett."


def test_a_recorded_answer_without_a_page_count_takes_it_from_the_pagination(replay):
    body = json.loads(recorded("isbn_9781778041303_plague_of_models_no_number_of_pages.json"))
    client = replay((200, {}, json.dumps(body)))
    record = client.book("9781778041303")
    assert record.pages == 242
    assert [a.name for a in record.authors] == ["Kenneth P. Green", "Benjamin Zycher", "Steven F. Hayward"]


@pytest.mark.parametrize("name, date", [("isbn_9780980200447_slow_reading.json", "March 2009"),
                                        ("isbn_9780316030571_use_of_weapons.json", "July 28, 2008")])
def test_recorded_publish_dates_are_kept_as_written(replay, name, date):
    body = json.loads(recorded(name))
    [(key, _)] = body.items()
    client = replay((200, {}, json.dumps(body)))
    assert client.book(key.removeprefix("ISBN:")).publish_date == date


def test_openlibrarys_recorded_429_is_throttled_for_as_long_as_it_asks(replay):
    body = recorded("http_429_too_many_requests.json")
    client = replay((429, {"Retry-After": "7"}, body), (429, {}, body))
    with pytest.raises(Throttled, match="Too Many Requests") as asked:
        client.book("9780451526342")
    assert asked.value.retry_after == 7
    with pytest.raises(Throttled) as unsaid:
        client.book("9780451526342")
    assert unsaid.value.retry_after == 60  # no Retry-After (none was ever seen from OpenLibrary): a minute


@pytest.mark.parametrize("body", ["[]", '"text"', '{"ISBN:9780451526342": "x"}', "not json"])
def test_an_unreadable_answer_is_transient(replay, body):
    client = replay((200, {}, body))
    with pytest.raises(TransientError):
        client.book("9780451526342")


def test_a_limiter_that_would_hold_a_thread_too_long_says_how_long_to_wait_instead():
    limiter = RateLimiter(rate="1 per 10 seconds", key="tests-long-wait", longest_wait=0.05)
    assert limiter.wait() == 0
    with pytest.raises(Throttled) as waiting:
        limiter.wait()
    assert 0 < waiting.value.retry_after <= 10
