"""Middleware that runs on daphne's event loop: the body size limit, and static files."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from whitenoise.middleware import WhiteNoiseMiddleware

from project.api import error_response


def _too_large():
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error_response(413, "too_large", f"Request body is larger than {limit} bytes.")


class RequestSizeLimitMiddleware:
    """Refuse oversized request bodies with a clear 413 before anything reads them."""

    # Both sync and async, like Django's own middleware: under daphne one
    # sync-only middleware in the chain costs every request two more hops
    # between the event loop and a thread.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        refused = self._refused(request)
        return refused if refused is not None else self.get_response(request)

    async def __acall__(self, request):
        refused = self._refused(request)
        return refused if refused is not None else await self.get_response(request)

    @staticmethod
    def _refused(request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Content-Length is not a number.")
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            return _too_large()
        return None

    def process_exception(self, request, exception):
        # A body without Content-Length is only measured as it is read.
        if isinstance(exception, RequestDataTooBig):
            return _too_large()
        return None


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, able to run on the event loop.

    WhiteNoise's middleware is sync only.  In the middle of an otherwise
    async chain under daphne it makes every request hop from the loop to a
    thread and back before the view's own hop.  Here a request for anything
    but a static file goes straight on; a static file is served in a thread
    (it opens the file).
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response=None, settings=settings):
        super().__init__(get_response, settings)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request):
        path = request.path_info
        if self.autorefresh:
            # Development: files are looked up on disk, only under the prefix.
            static_file = await sync_to_async(self.find_file)(path) if path.startswith(self.static_prefix) else None
        else:
            static_file = self.files.get(path)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)
