"""The OpenLibrary client against the sandbox OpenLibrary over real HTTP."""

import pytest
import requests

from integrations.exceptions import TransientError
from integrations.openlibrary import Link, OpenLibraryClient
from devtools.processes import free_port


def sandbox_url(gateway_url: str) -> str:
    return gateway_url.removesuffix("gateway/") + "openlibrary"


@pytest.fixture
def client(sandbox_server):
    return OpenLibraryClient(base_url=sandbox_url(sandbox_server()), timeout=(2, 5), user_agent="tests/1.0")


def test_a_known_isbn_gives_its_record(client):
    record = client.book("9780451526342")
    assert (record.title, record.pages, record.publish_date, record.key) == ("Animal Farm", 140, "1996", "/books/OL9176998M")
    assert record.authors == (Link("George Orwell", "https://openlibrary.org/authors/OL118077A/George_Orwell"),)
    assert "Snowball" in [p.name for p in record.people]
    assert client.session.headers["User-Agent"] == "tests/1.0"


def test_an_unknown_isbn_is_none(client):
    assert client.book("9780000000026") is None


def test_the_sandbox_speaks_the_real_apis_shape(sandbox_server):
    url = sandbox_url(sandbox_server()) + "/api/books"
    both = requests.get(url, params={"bibkeys": "ISBN:0451526341,ISBN:9780000000026", "jscmd": "data",
                                     "format": "json"}, timeout=5).json()
    assert list(both) == ["ISBN:0451526341"]  # by ISBN-10 too; unknown keys are simply absent
    assert both["ISBN:0451526341"]["notes"].startswith("Sandbox data")
    script = requests.get(url, params={"bibkeys": "ISBN:9780451526342", "jscmd": "data"}, timeout=5)
    assert script.text.startswith("var _OLBookInfo = {")


def test_an_outage_is_transient(sandbox_server):
    failing = OpenLibraryClient(base_url=sandbox_url(sandbox_server(failure_rate=1.0)), timeout=(2, 5))
    with pytest.raises(TransientError, match="OpenLibrary answered 503"):
        failing.book("9780451526342")


def test_a_slow_or_absent_openlibrary_is_transient(sandbox_server):
    slow = OpenLibraryClient(base_url=sandbox_url(sandbox_server(latency_ms=500)), timeout=(1, 0.1))
    with pytest.raises(TransientError, match="unreachable"):
        slow.book("9780451526342")
    gone = OpenLibraryClient(base_url=f"http://127.0.0.1:{free_port()}", timeout=(0.5, 0.5))
    with pytest.raises(TransientError, match="unreachable"):
        gone.book("9780451526342")


@pytest.mark.parametrize("body", ["[]", '"text"', '{"ISBN:9780451526342": "x"}', "not json"])
def test_an_unreadable_answer_is_transient(body):
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter()

    def send(request, **kwargs):
        response = requests.Response()
        response.status_code, response._content, response.url = 200, body.encode(), request.url
        return response

    adapter.send = send
    session.mount("http://", adapter)
    with pytest.raises(TransientError):
        OpenLibraryClient(base_url="http://openlibrary.test", session=session).book("9780451526342")
