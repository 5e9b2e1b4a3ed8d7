"""A channel worker that runs several messages at once, with a real bound.

Channels' own worker feeds each channel into a single application instance,
so one slow gateway call holds up every message behind it.  This worker
starts one application instance per message instead, and bounds them:

* a listener takes a slot *before* it receives, so the process never pulls a
  message it cannot start at once and the backlog stays in the channel layer;
* blocking handler code runs in a thread pool the size of the bound, so the
  number of threads and database connections is bounded too;
* a failing receive (Redis restarting, a dropped connection) is retried with
  exponential backoff, never a crash or a busy loop;
* ``stop()`` stops receiving, lets in-flight messages finish for ``grace``
  seconds and reports what it left behind.  The job rows of anything left
  are still there for the requeue command.  A stop always wins: listeners
  watch for it besides being cancelled (a cancel can be lost: on Python
  3.11 redis-py's ``wait_for`` swallows one that lands as its read
  completes), the wait for them is bounded, and a second ``stop()`` ends
  the drain at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from channels.exceptions import StopConsumer

from jobs.concurrency import blocking_executor

logger = logging.getLogger(__name__)

RECONNECT_MIN_DELAY = 0.5
RECONNECT_MAX_DELAY = 30.0
# How long listeners get to notice a stop before the worker goes on without them.
LISTENER_STOP_TIMEOUT = 5.0


class JobWorker:
    def __init__(self, *, application, channels, channel_layer, concurrency: int, grace: float = 30.0):
        if concurrency < len(channels):
            # Every listener holds one slot while it waits for a message.
            raise ValueError(
                f"concurrency ({concurrency}) must be at least the number of channels ({len(channels)})"
            )
        self.application = application
        self.channels = list(channels)
        self.channel_layer = channel_layer
        self.concurrency = concurrency
        self.grace = grace
        self.in_flight: set[asyncio.Task] = set()
        self.processed = 0
        self._stopping = asyncio.Event()
        self._forced = asyncio.Event()

    def stop(self) -> None:
        """Ask the worker to stop receiving and drain; a second request stops the drain too."""
        if not self._stopping.is_set():
            logger.info("Worker stopping: no new messages; waiting up to %ss for %d in flight",
                        self.grace, len(self.in_flight))
            self._stopping.set()
        elif not self._forced.is_set():
            logger.warning("Worker asked to stop again: exiting now; %d message(s) in flight stay recoverable "
                           "by requeue", len(self.in_flight))
            self._forced.set()

    async def run(self) -> int:
        """Run until ``stop()``; return how many messages were left unfinished."""
        executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="job")
        token = blocking_executor.set(executor)
        self._slots = asyncio.Semaphore(self.concurrency)
        listeners = [asyncio.create_task(self._listen(channel)) for channel in self.channels]
        try:
            await self._stopping.wait()
        finally:
            self._stopping.set()
            for listener in listeners:
                listener.cancel()
            _, stuck = await asyncio.wait(listeners, timeout=LISTENER_STOP_TIMEOUT)
            if stuck:
                logger.warning("%d listener(s) did not stop within %ss; going on without them",
                               len(stuck), LISTENER_STOP_TIMEOUT)
            left = await self._drain()
            blocking_executor.reset(token)
            executor.shutdown(wait=False, cancel_futures=True)
        return left

    async def _drain(self) -> int:
        """Wait for what is in flight, up to ``grace`` seconds or a second stop; how many are left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace
        forced = asyncio.ensure_future(self._forced.wait())
        try:
            while self.in_flight and not self._forced.is_set() and (remaining := deadline - loop.time()) > 0:
                await asyncio.wait({*self.in_flight, forced}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forced.cancel()
        left = len(self.in_flight)
        if left:
            logger.warning("%d message(s) did not finish; their jobs stay recoverable by requeue", left)
        return left

    async def _listen(self, channel: str) -> None:
        delay = RECONNECT_MIN_DELAY
        while not self._stopping.is_set():
            await self._slots.acquire()
            if self._stopping.is_set():
                self._slots.release()
                return
            try:
                message = await self._receive(channel)
            except asyncio.CancelledError:
                self._slots.release()
                raise
            except Exception as exc:
                self._slots.release()
                logger.warning(
                    "Receiving on %r failed (%s: %s); retrying in %.1fs",
                    channel, exc.__class__.__name__, exc, delay,
                    exc_info=delay == RECONNECT_MIN_DELAY,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
                continue
            if message is None:
                self._slots.release()
                return  # stopping
            if delay > RECONNECT_MIN_DELAY:
                logger.info("Receiving on %r again", channel)
                delay = RECONNECT_MIN_DELAY
            # Received, even if a stop came meanwhile: it runs, and the drain waits for it.
            task = asyncio.create_task(self._process(channel, message))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _receive(self, channel: str) -> dict | None:
        """The next message on ``channel``, or None once the worker is stopping."""
        receiving = asyncio.ensure_future(self.channel_layer.receive(channel))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if receiving.done():
            return receiving.result()
        # A message that arrives after this cancel is lost to this worker; its
        # job row is still there for requeue.
        receiving.cancel()
        return None

    async def _process(self, channel: str, message: dict) -> None:
        started = time.monotonic()
        delivered = False

        async def receive() -> dict:
            nonlocal delivered
            if delivered:
                # The one message has been handled: end this instance cleanly.
                raise StopConsumer()
            delivered = True
            return message

        async def send(reply: dict) -> None:
            logger.warning("Background consumer on %r tried to send %r; ignored", channel, reply.get("type"))

        try:
            await self.application({"type": "channel", "channel": channel}, receive, send)
        except Exception:
            # One bad message must never take the worker down.
            logger.error("Message on %r failed: %r", channel, message, exc_info=True)
        finally:
            self._slots.release()
            self.processed += 1
            logger.debug("Handled a message on %r in %.3fs", channel, time.monotonic() - started)
