"""Job payloads that are not models: attrs classes, turned into plain JSON data and back.

Plain data only, never pickle: a payload is stored in the job row and may be
read by any worker version, so it must be inspectable and safe to load.
Rebuilding runs the class's own validators, so a payload that does not fit
fails its job with a clear ``InvalidPayload`` instead of a crash mid-job.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.preconf.json import make_converter
from cattrs.v import format_exception

from jobs.exceptions import InvalidPayload

T = TypeVar("T")

# Forbid unknown keys: a payload with a misspelt field is a bug to hear about.
converter = make_converter(forbid_extra_keys=True)


def _describe(exc: BaseException, type_: Any) -> str:
    # A validator's own message names the field and the rule it broke.
    if isinstance(exc, ValueError) and exc.args and isinstance(exc.args[0], str):
        return exc.args[0]
    return format_exception(exc, type_)


def dump(value: Any) -> Any:
    """Plain JSON-compatible data for an attrs instance (or data that already is plain)."""
    return converter.unstructure(value)


def load(data: Any, cls: type[T]) -> T:
    """Rebuild ``cls`` from plain data, validating it; ``InvalidPayload`` if it does not fit."""
    if attrs.has(cls) and not isinstance(data, dict):
        raise InvalidPayload(f"Payload does not fit {cls.__name__}: expected an object, got {type(data).__name__}")
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, AttributeError) as exc:
        name = cls.__name__ if attrs.has(cls) else repr(cls)
        detail = "; ".join(cattrs.transform_error(exc, format_exception=_describe)) if isinstance(exc, cattrs.BaseValidationError) else str(exc)
        raise InvalidPayload(f"Payload does not fit {name}: {detail}"[:500]) from exc
