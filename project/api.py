"""One JSON shape for every API error: ``{"code", "message", "fields"?}``."""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)


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


def not_found(request, exception=None):
    """A 404 for paths no view matched: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return error_response(404, "not_found", f"Nothing at {request.path}.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        return error_response(500, "server_error", "Something went wrong on our side; it has been logged.")
    return defaults.server_error(request)


from rest_framework.pagination import PageNumberPagination  # noqa: E402


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
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"Must be a whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def get_page_number(self, request, paginator):
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        if not raw.isdigit() or int(raw) < 1:
            raise exceptions.ValidationError({self.page_query_param: ["Must be a page number from 1."]})
        return int(raw)


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
