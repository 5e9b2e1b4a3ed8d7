"""Our requests sessions read the proxy settings once, and still go through a configured proxy.

A stand-in proxy and a stand-in vendor are plain HTTP servers in threads.
"""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from integrations.http import new_session

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "no_proxy")


class Recorder(BaseHTTPRequestHandler):
    """Answers every GET with 200 and ``{}``, keeping the request line (a proxy is sent the absolute URL)."""

    def do_GET(self):
        self.server.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """Factory: a recording HTTP server on 127.0.0.1; its URL and what it was asked."""
    servers = []

    def start() -> ThreadingHTTPServer:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        httpd.seen = []
        httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        servers.append(httpd)
        return httpd

    yield start
    for httpd in servers:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def env(monkeypatch):
    """No proxy settings but those the test sets."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_configured_proxy_is_used_and_no_proxy_hosts_go_direct(env, server):
    proxy, vendor = server(), server()
    env.setenv("HTTP_PROXY", proxy.url)
    env.setenv("NO_PROXY", "localhost,.internal.example")
    session = new_session()
    assert session.get("http://api.vendor.example/v1/books", timeout=5).json() == {}
    assert proxy.seen == ["http://api.vendor.example/v1/books"]
    session.get("http://svc.internal.example.invalid/", timeout=5)  # not a suffix match: proxied too
    assert len(proxy.seen) == 2
    env.setenv("NO_PROXY", "127.0.0.1")  # read when the session is made
    new_session().get(vendor.url + "/direct", timeout=5)
    assert vendor.seen == ["/direct"] and len(proxy.seen) == 2


def test_no_proxy_matches_hosts_domains_and_networks(env):
    env.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    env.setenv("NO_PROXY", "localhost, .internal.example,10.0.0.0/8,vendor.example:8443")
    adapter = new_session().get_adapter("https://api.vendor.example/")
    direct = ["https://localhost/x", "https://a.b.internal.example/x", "https://internal.example/",
              "https://10.1.2.3/x", "https://vendor.example:8443/x"]
    proxied = ["https://api.vendor.example/x", "https://notinternal.example/x", "https://11.0.0.1/x"]
    assert [adapter.bypasses(url) for url in direct] == [True] * len(direct)
    assert [adapter.bypasses(url) for url in proxied] == [False] * len(proxied)


def test_calls_read_nothing_from_the_environment(env, server, monkeypatch):
    vendor = server()
    env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy that would refuse
    env.setenv("NO_PROXY", "127.0.0.1")
    session = new_session()

    def read(*args, **kwargs):
        raise AssertionError("the environment was read during a call")

    monkeypatch.setattr(urllib.request, "getproxies_environment", read)
    monkeypatch.setattr(urllib.request, "getproxies", read)
    monkeypatch.setattr(requests.utils, "get_netrc_auth", read)
    monkeypatch.setattr(requests.sessions, "get_netrc_auth", read)
    env.setenv("NO_PROXY", "")  # a later change is not seen either
    assert session.get(vendor.url + "/v1", timeout=5).json() == {}
    assert vendor.seen == ["/v1"]
    assert session.trust_env is False


def test_the_ca_bundle_setting_is_kept(env):
    env.delenv("REQUESTS_CA_BUNDLE", raising=False)
    env.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    assert new_session().verify == "/etc/ssl/certs/ca-certificates.crt"
    env.setenv("REQUESTS_CA_BUNDLE", "/tmp/corporate-ca.pem")
    assert new_session().verify == "/tmp/corporate-ca.pem"
    env.delenv("REQUESTS_CA_BUNDLE")
    env.delenv("CURL_CA_BUNDLE")
    assert new_session().verify is True
