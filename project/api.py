"""One JSON shape for every API error: ``{"code", "message", "fields"?}``."""

from __future__ import annotations

import re

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponsePermanentRedirect, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            text = _first_message(value)
            if text:
                return text if field in ("non_field_errors", "detail") else f"{field}: {text}"
        return ""
    if isinstance(detail, list):
        return _first_message(detail[0]) if detail else ""
    return str(detail)


def exception_handler(exc, context):
    # DRF answers Django's Http404 and PermissionDenied as its own NotFound and
    # PermissionDenied but hands us the originals, which carry no code or
    # detail: convert them as DRF does, or a 404 says {"code": "error",
    # "message": "None"}.
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {
            "code": "invalid",
            "message": _first_message(fields) or "Invalid input.",
            "fields": fields,
        }
    else:
        detail = getattr(exc, "detail", None)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = {"code": code, "message": _first_message(detail) or str(exc)}
    return response


def error_response(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def body_too_large_error(limit: int) -> dict:
    """The 413's body, wherever a request body over ``limit`` bytes is refused."""
    return {"code": "too_large", "message": f"Request body is larger than {limit} bytes."}


def not_found(request, exception=None):
    """A 404 for paths no view matched: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error_response(404, "not_found", f"Nothing at {request.path}.")
    return defaults.page_not_found(request, exception)


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Every /api/ path no view matched, last in the URLconf.

    With DEBUG on, Django answers an unmatched path with its HTML debug page
    and never calls ``handler404``; an API's 404 is JSON either way.  Being a
    match itself, it takes over what APPEND_SLASH did: a GET of
    ``/api/orders`` is sent on to ``/api/orders/``.
    """
    if request.method in ("GET", "HEAD") and not request.path_info.endswith("/"):
        try:
            match = resolve(request.path_info + "/", getattr(request, "urlconf", None))
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            return HttpResponsePermanentRedirect(request.get_full_path(force_append_slash=True))
    return error_response(404, "not_found", f"Nothing at {request.path}.")


def server_error(request):
    if request.path.startswith("/api/"):
        return error_response(500, "server_error", "Something went wrong on our side; it has been logged.")
    return defaults.server_error(request)


from rest_framework.pagination import PageNumberPagination  # noqa: E402

# More digits than any page number or size could use; a longer number is
# clamped to it (int() refuses more than 4,300 digits).
_MAX_DIGITS = 18


def _whole_number(raw: str) -> int | None:
    """``raw`` as a whole number of ASCII digits, or None.

    Not ``str.isdigit()``: it is true for "²" and "٣", which int() refuses
    or reads as 3.
    """
    if not re.fullmatch(r"[0-9]+", raw):
        return None
    digits = raw.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


class Pagination(PageNumberPagination):
    """Page numbers, with ``page_size`` up to 500; a malformed size is a 400, not ignored."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    last_page_strings = ()

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        size = _whole_number(raw)
        if size is None or not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"Must be a whole number from 1 to {self.max_page_size}."]}
            )
        return size

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        number = _whole_number(raw)
        if number is None or number < 1:
            raise exceptions.ValidationError({self.page_query_param: ["Must be a page number from 1."]})
        # Past the last page is DRF's 404 ("Invalid page."), as the schema allows.
        return number


from rest_framework import serializers  # noqa: E402


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings: 0 or true is not a nonce."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class QueryParams(serializers.Serializer):
    """A list's query parameters: each validated, and one the list does not know is a 400, never ignored.

    A typo such as ``?statu=failed`` would otherwise answer the whole list as
    if it were filtered.  The pagination's ``page`` and ``page_size`` and DRF's
    ``format`` are known to every list.  Use ``validated(request)`` in a view.
    """

    always_known = ("page", "page_size", "format")

    @classmethod
    def validated(cls, request) -> dict:
        params = request.query_params
        known = [*cls().fields, *cls.always_known]
        errors = {
            name: [f"Unknown parameter; this list takes {', '.join(known)}."]
            for name in sorted(set(params) - set(known))
        }
        errors |= {name: ["Give it once."] for name in sorted(params) if name in known and len(params.getlist(name)) > 1}
        if errors:
            raise exceptions.ValidationError(errors)
        # A plain dict, not the QueryDict: DRF reads "?status=" from form-like
        # input as absent, and an empty filter must be a 400 like any bad value.
        serializer = cls(data={name: params[name] for name in params if name not in cls.always_known})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
