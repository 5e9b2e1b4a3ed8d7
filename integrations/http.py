"""JSON over HTTP with requests, with errors converted at the boundary."""

from __future__ import annotations

import ipaddress
import os
import urllib.request
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.util.retry import Retry

from integrations.exceptions import PermanentError, Refused, Throttled, TransientError


class _Adapter(requests.adapters.HTTPAdapter):
    """An adapter that applies proxies read once, honouring ``NO_PROXY`` itself.

    With ``trust_env`` off, requests uses the session's proxies for every
    host and ignores ``no_proxy``, so the choice per request is made here.
    """

    def __init__(self, *, proxies: dict[str, str], no_proxy: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.proxies = proxies
        self.no_proxy = no_proxy
        self.no_proxy_networks = []
        for entry in no_proxy.split(","):
            try:
                self.no_proxy_networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                pass  # a host name, which proxy_bypass_environment matches

    def bypasses(self, url: str) -> bool:
        """Whether ``NO_PROXY`` sends ``url`` direct: a host, a domain suffix, ``*``, or (as requests does) a CIDR."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if urllib.request.proxy_bypass_environment(f"{host}:{parts.port}" if parts.port else host,
                                                   {"no": self.no_proxy}):
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.no_proxy_networks)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if self.proxies:
            kwargs["proxies"] = {} if self.no_proxy and self.bypasses(request.url or "") else self.proxies
        return super().send(request, *args, **kwargs)


def new_session(*, pool_size: int = 50) -> requests.Session:
    """A session for a busy worker's threads.

    Reads (GET) that meet a 502/503/504 or a refused connection are retried
    twice at once by urllib3: they are idempotent, and a blip should not cost
    a whole job attempt.  Writes are never retried here; the job machinery
    retries them after searching for what the first try may have done.

    The environment is read here, once, not on every call: with
    ``trust_env`` on, requests scans the whole environment for proxies twice
    and looks for a ``~/.netrc`` on each request, about as much CPU as the
    rest of the call.  ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and
    ``NO_PROXY`` (either case) and ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE``
    still apply, as they were when the session was made: the clients are
    made once per process, so a change takes a restart.  ``.netrc``
    credentials are no longer used; our vendors authenticate with headers.
    """
    session = requests.Session()
    session.trust_env = False
    proxies = urllib.request.getproxies()  # what requests itself reads on each call
    no_proxy = proxies.pop("no", "")
    session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    retry = Retry(
        total=2,
        read=0,  # a read timeout already waited the full timeout: leave it to the job
        backoff_factor=0.05,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,  # hand the last answer back so we classify it
        # Never sleep out a vendor's Retry-After in a worker thread: a 429 is
        # handed back (as Throttled) and the job waits without holding a thread.
        respect_retry_after_header=False,
    )
    adapter = _Adapter(proxies=proxies, no_proxy=no_proxy, pool_connections=4, pool_maxsize=pool_size,
                       max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["Accept"] = "application/json"
    return session


def error_text(response: requests.Response) -> str:
    """The vendor's own explanation from an error answer, as one line."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:300]
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str):
                return body[key][:300]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)[:300]
    return str(body)[:300]


def error_codes(response: requests.Response) -> frozenset[str]:
    """The vendor's error codes in an error answer (``{"errors": [{"code": ...}]}``), if any."""
    try:
        body = response.json()
    except ValueError:
        return frozenset()
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return frozenset()
    return frozenset(str(e["code"]) for e in errors if isinstance(e, dict) and e.get("code"))


def retry_after(response: requests.Response, *, default: float = 60.0, longest: float = 3600.0) -> float:
    """Seconds the vendor asked us to wait (``Retry-After``: seconds or an HTTP date), within bounds."""
    raw = (response.headers.get("Retry-After") or "").strip()
    seconds = default
    if raw.isdigit():
        seconds = float(raw)
    elif raw:
        try:
            seconds = (parsedate_to_datetime(raw) - datetime.now(timezone.utc)).total_seconds()
        except (TypeError, ValueError):
            seconds = default
    return min(max(seconds, 0.0), longest)


def _cause(exc: requests.RequestException) -> str:
    # urllib3 wraps the real cause (a read timeout, a refused connection) in
    # MaxRetryError once its retries are spent; name the real one.
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return (reason or exc).__class__.__name__


def request_json(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: tuple[float, float],
    vendor: str,
    **kwargs: Any,
) -> Any:
    """Send a request and return the decoded JSON body.

    Raises ``TransientError`` for what may pass (network, timeouts, 5xx, an
    undecodable body), ``Throttled`` for a 429 with how long to wait, and
    ``Refused`` (a ``PermanentError``) for any other 4xx.
    """
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientError(f"{vendor} unreachable: {_cause(exc)}") from exc
    except requests.RequestException as exc:
        raise PermanentError(f"{vendor} request could not be made: {exc}") from exc

    if response.status_code == 429:
        raise Throttled(f"{vendor} answered 429: {error_text(response) or response.reason}",
                        retry_after=retry_after(response))
    if response.status_code >= 500:
        raise TransientError(
            f"{vendor} answered {response.status_code}: {error_text(response) or response.reason}"
        )
    if response.status_code >= 400:
        raise Refused(error_text(response) or f"{vendor} answered {response.status_code}",
                      status=response.status_code, codes=error_codes(response))
    try:
        return response.json()
    except ValueError as exc:
        raise TransientError(f"{vendor} answered {response.status_code} with a body that is not JSON") from exc
