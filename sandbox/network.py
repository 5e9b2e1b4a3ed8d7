"""What happens to every sandbox call on its way, as on a real network: latency
and failures, and a count of how many calls it held at once.

Latency and failure rate come from ``SANDBOX_LATENCY_MS`` and
``SANDBOX_FAILURE_RATE``, or per request from the URL
(``/sandbox/simulate/<ms>ms/<percent>pct/...``), so one server can be a fast,
a slow and a failing third party at once.  The latency is an
``asyncio.sleep``: it holds no thread, just as a slow real vendor would not.

The counts prove concurrency by structure: a worker that really runs twenty
payments at once makes the gateway hold about twenty calls at once.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from functools import wraps

import attrs
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt


@attrs.define
class Traffic:
    """Calls one sandbox service has served since start-up or the last reset."""

    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    #: Calls refused with 429 for going over a rate limit.
    throttled: int = 0


# Per process: daphne runs these async views on its one event loop, so plain
# counters are exact without a lock.
TRAFFIC: defaultdict[str, Traffic] = defaultdict(Traffic)

View = Callable[..., Awaitable[HttpResponse]]


def simulated(service: str, unavailable: Callable[[str], HttpResponse]) -> Callable[[View], View]:
    """Count the view's calls under ``service``, and delay or fail them as configured."""

    def decorator(view: View) -> View:
        @wraps(view)
        async def wrapper(request: HttpRequest, *args, latency_ms: int | None = None,
                          failure_pct: int | None = None, **kwargs) -> HttpResponse:
            traffic = TRAFFIC[service]
            traffic.requests += 1
            traffic.in_flight += 1
            traffic.peak_in_flight = max(traffic.peak_in_flight, traffic.in_flight)
            try:
                latency = settings.SANDBOX_LATENCY_MS if latency_ms is None else latency_ms
                rate = settings.SANDBOX_FAILURE_RATE if failure_pct is None else failure_pct / 100
                if latency:
                    await asyncio.sleep(latency / 1000)
                if rate and random.random() < rate:
                    return unavailable(f"Sandbox {service} is temporarily unavailable (simulated failure).")
                return await view(request, *args, **kwargs)
            finally:
                traffic.in_flight -= 1

        return wrapper

    return decorator


@csrf_exempt
async def stats(request: HttpRequest) -> JsonResponse:
    """GET: the traffic of each service.  DELETE: the same, then start counting afresh."""
    if request.method not in ("GET", "DELETE"):
        return JsonResponse({"message": "Method not allowed."}, status=405)
    body = {service: attrs.asdict(traffic) for service, traffic in TRAFFIC.items()}
    if request.method == "DELETE":
        for traffic in TRAFFIC.values():
            traffic.requests = traffic.throttled = 0
            traffic.peak_in_flight = traffic.in_flight
    return JsonResponse(body)
