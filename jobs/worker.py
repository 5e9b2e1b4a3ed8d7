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
  watch for it wherever they wait (for a slot, a message, a reconnect),
  a receive the stop interrupts is cancelled until it has really ended
  (a cancel can be lost: on Python 3.11 redis-py's ``wait_for`` swallows
  one that lands as its send completes), a message that arrives with the
  stop goes back to its channel instead of starting, the wait for the
  listeners is bounded, and a second ``stop()`` ends the waiting at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from channels.exceptions import StopConsumer

from jobs import events
from jobs.concurrency import blocking_executor, mark_serving
from jobs.messages import SEND_ERRORS

logger = logging.getLogger(__name__)

RECONNECT_MIN_DELAY = 0.5
RECONNECT_MAX_DELAY = 30.0
# How long listeners get to notice a stop before the worker goes on without them.
LISTENER_STOP_TIMEOUT = 5.0
# How often an interrupted receive is cancelled again while it has not ended.
RECANCEL_INTERVAL = 0.1


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
        # Sends and events after commit may be handed to this loop: it
        # flushes them below before it ends.
        mark_serving(asyncio.get_running_loop())
        self._slots = asyncio.Semaphore(self.concurrency)
        listeners = [asyncio.create_task(self._listen(channel)) for channel in self.channels]
        try:
            await self._stopping.wait()
        finally:
            self._stopping.set()
            await self._stop_listeners(listeners)
            left = await self._drain()
            # What finished jobs still hold back (a "running" not yet due)
            # goes out before the process ends.
            await self._flush_events()
            blocking_executor.reset(token)
            executor.shutdown(wait=False, cancel_futures=True)
        return left

    async def _stop_listeners(self, listeners: list[asyncio.Task]) -> None:
        """Wait for the listeners to see the stop, up to a bound or a second stop; cancel any left."""
        # Not cancelled first: a listener that sees the stop itself can still
        # put back a message that arrived with it, and a cancel can be lost.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LISTENER_STOP_TIMEOUT
        forced = asyncio.ensure_future(self._forced.wait())
        try:
            pending = set(listeners)
            while pending and not self._forced.is_set() and (remaining := deadline - loop.time()) > 0:
                _, pending = await asyncio.wait({*pending, forced}, timeout=remaining,
                                                return_when=asyncio.FIRST_COMPLETED)
                pending.discard(forced)
        finally:
            forced.cancel()
        if pending:
            logger.warning("%d listener(s) did not stop within %ss; going on without them",
                           len(pending), LISTENER_STOP_TIMEOUT)
            for listener in pending:
                listener.cancel()

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

    async def _flush_events(self) -> None:
        try:
            async with asyncio.timeout(LISTENER_STOP_TIMEOUT):
                await events.flush()  # held events, and every send after commit still waiting
        except TimeoutError:
            logger.warning("Job events still unsent after %ss; the websockets' snapshots cover them",
                           LISTENER_STOP_TIMEOUT)

    async def _listen(self, channel: str) -> None:
        delay = RECONNECT_MIN_DELAY
        while await self._take_slot():
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
                await self._pause(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
                continue
            if message is None:
                self._slots.release()
                return  # stopping
            if self._stopping.is_set():
                # It came with the stop: a stopped worker starts nothing new.
                self._slots.release()
                await self._put_back(channel, message)
                return
            if delay > RECONNECT_MIN_DELAY:
                logger.info("Receiving on %r again", channel)
                delay = RECONNECT_MIN_DELAY
            task = asyncio.create_task(self._process(channel, message))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _take_slot(self) -> bool:
        """Wait for a free slot; False, holding none, once the worker is stopping."""
        if self._stopping.is_set():
            return False
        # With every slot busy a listener waits here for as long as a job
        # runs: the stop must end this wait too, not the next job's end.
        took = not (await self._unless_stopping(self._slots.acquire())).cancelled()
        if took and self._stopping.is_set():
            self._slots.release()
            return False
        return took

    async def _receive(self, channel: str) -> dict | None:
        """The next message on ``channel``, or None once the worker is stopping."""
        receiving = await self._unless_stopping(self.channel_layer.receive(channel))
        if receiving.cancelled():
            # A pop the cancel cut short may have taken a message with it
            # (channels-redis backs a message up only after popping it); its
            # job row is still there for requeue.
            return None
        return receiving.result()

    async def _unless_stopping(self, awaitable) -> asyncio.Future:
        """Run ``awaitable`` until it ends or the worker stops; the ended task, cancelled if the stop came first.

        The task never outlives this call, whichever way it ends: a receive
        left running would take a message off the channel that nobody runs.
        """
        task = asyncio.ensure_future(awaitable)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await _end(task)
        return task

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` seconds before reconnecting, or less if the worker stops meanwhile."""
        try:
            async with asyncio.timeout(delay):
                await self._stopping.wait()
        except TimeoutError:
            pass

    async def _put_back(self, channel: str, message: dict) -> None:
        """Send a message that arrived with the stop back to its channel, for the next worker."""
        try:
            await self.channel_layer.send(channel, message)
        except SEND_ERRORS as exc:
            logger.warning("Could not put back a message on %r that came with the stop (%s: %s); "
                           "its job stays recoverable by requeue", channel, exc.__class__.__name__, exc)
        else:
            logger.info("Put back a message on %r that came with the stop", channel)

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


async def _end(task: asyncio.Future) -> None:
    """Cancel ``task`` if it is still running, and wait until it has really ended.

    One cancel is not always enough: redis-py sends each command through
    ``asyncio.wait_for``, which on Python 3.11 returns the send's result and
    drops a cancel that lands just as the send completes
    (python/cpython#86296), and the receive goes on to its blocking read.
    So the cancel is repeated until the task is done.  A cancel of the
    caller meanwhile is passed on once the task has ended.
    """
    cancelled = False
    while not task.done():
        task.cancel()
        try:
            await asyncio.wait({task}, timeout=RECANCEL_INTERVAL)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
