"""The client of scenarios 2 and 4: POST payments, and wait for their final websocket event.

Every user has one websocket open on ``/ws/status/`` (token in the
``Authorization`` header, as non-browser clients connect).  ``window``
posters each POST an order over a keep-alive HTTP/1.1 connection and wait
for that order's final ``job`` frame (a payment job ``ok`` or ``failed``)
before posting the next, so at most ``window`` jobs are in flight: the
system is kept saturated without ever filling the channel (capacity 1,000)
and the latency is that of a saturated system, not of an ever-growing
backlog.  Latency is from the start of the POST to the final frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

import websockets

from bench.harness import percentile

logger = logging.getLogger("bench.load")

FINAL = ("ok", "failed")


@dataclass
class LoadResult:
    posted: int = 0
    done: int = 0
    failed: int = 0  # final, but not ok
    refused: int = 0  # POST not answered 202
    lost: int = 0  # no final frame within the job timeout
    cut: int = 0  # in flight or never posted when the run's time limit came
    seconds: float = float("nan")
    latencies_ms: list[float] = field(default_factory=list)
    frames: int = 0  # websocket frames received, all kinds
    cpu: str = ""  # where the CPU went, filled in by the scenario
    cpu_ms: float = float("nan")  # CPU of every process of the system per job
    machine_busy: float = float("nan")  # share of all cores busy during the run, whoever used them
    profile: str = ""  # py-spy summaries, with BENCH_PROFILE=1

    @property
    def throughput(self) -> float:
        return self.done / self.seconds if self.seconds and self.done else float("nan")

    def pct(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def summary(self) -> str:
        return (f"{self.done}/{self.posted} final in {self.seconds:.1f}s = {self.throughput:.1f} jobs/s; "
                f"p50 {self.pct(50):.0f} ms, p90 {self.pct(90):.0f} ms, p99 {self.pct(99):.0f} ms; "
                f"failed {self.failed}, refused {self.refused}, lost {self.lost}, cut {self.cut}")


class HttpConnection:
    """A minimal keep-alive HTTP/1.1 JSON client: cheap enough not to be the bottleneck."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post_json(self, path: str, body: dict, token: str) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        data = json.dumps(body).encode()
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Token {token}\r\nContent-Type: application/json\r\nAccept: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n")
        self.writer.write(head.encode() + data)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            raw = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while size := int((await self.reader.readline()).strip() or b"0", 16):
                raw += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        else:
            raw = await self.reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, (json.loads(raw) if raw else {})

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def drive(*, host: str, port: int, post_path: str, tokens: list[str], count: int, window: int,
                timeout: float, job_timeout: float = 60.0) -> LoadResult:
    """Run ``count`` payments through the system; see the module docstring."""
    loop = asyncio.get_running_loop()
    finals: dict[int, asyncio.Future] = {}
    result = LoadResult()
    starts: list[float] = []
    ends: list[float] = []

    def final_of(order_id: int) -> asyncio.Future:
        return finals.setdefault(order_id, loop.create_future())

    async def listen(ws) -> None:
        async for frame in ws:
            now = time.perf_counter()
            result.frames += 1
            event = json.loads(frame)
            job = event.get("job") if event.get("type") == "job" else None
            if job and job.get("kind") == "payment" and job.get("status") in FINAL:
                future = final_of(int(job["subject"]["id"]))
                if not future.done():
                    future.set_result((now, job["status"]))

    counter = iter(range(count))

    async def poster(slot: int) -> None:
        http = HttpConnection(host, port)
        try:
            for i in counter:
                token = tokens[i % len(tokens)]
                started = time.perf_counter()
                try:
                    status, body = await http.post_json(
                        post_path, {"amount": f"{10 + i % 90}.{i % 100:02d}", "nonce": "fake-valid-nonce"}, token
                    )
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    logger.warning("POST failed", exc_info=True)
                    await http.close()
                    result.refused += 1
                    continue
                result.posted += 1
                if status != 202:
                    result.refused += 1
                    logger.warning("POST answered %s: %.300s", status, body)
                    continue
                try:
                    finished, outcome = await asyncio.wait_for(asyncio.shield(final_of(int(body["id"]))), job_timeout)
                except TimeoutError:
                    result.lost += 1
                    continue
                starts.append(started)
                ends.append(finished)
                result.done += 1
                result.failed += outcome != "ok"
                result.latencies_ms.append((finished - started) * 1000)
        finally:
            await http.close()

    sockets = []
    listeners = []
    try:
        for token in tokens:
            ws = await websockets.connect(f"ws://{host}:{port}/ws/status/", max_size=2**22, ping_interval=None,
                                          additional_headers={"Authorization": f"Token {token}"})
            sockets.append(ws)
            snapshot = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert snapshot.get("type") == "snapshot", snapshot
            listeners.append(asyncio.create_task(listen(ws)))
        posters = [asyncio.create_task(poster(k)) for k in range(window)]
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*posters)
        except TimeoutError:
            logger.warning("the load run hit its %.0fs time limit after %d jobs", timeout, result.done)
            for task in posters:
                task.cancel()
            await asyncio.gather(*posters, return_exceptions=True)
            result.cut = count - result.done - result.refused - result.lost
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for ws in sockets:
            await ws.close()
    if starts:
        result.seconds = max(ends) - min(starts)
    return result
