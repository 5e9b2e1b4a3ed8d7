"""The API's request parser: DRF's JSON parser, with every malformed body a 400.

A module of its own: ``REST_FRAMEWORK`` names it, and DRF imports it while
``rest_framework.views`` is still being imported.
"""

from __future__ import annotations

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with JSON nested too deep to parse a 400 like any other malformed JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # json raises RecursionError, not ValueError, past the
            # interpreter's recursion limit (about a thousand nested "["),
            # and DRF lets it through as a 500.
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
