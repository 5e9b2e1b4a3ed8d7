"""Schema post-processing: every operation documents the API's error shape."""

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "Machine-readable error code."},
        "message": {"type": "string", "description": "What went wrong, for a human."},
        "fields": {
            "type": "object",
            "additionalProperties": True,
            "description": "Per-field messages (validation errors only).",
        },
    },
    "required": ["code", "message"],
}

ERRORS = {
    "400": "Bad input",
    "401": "Not authenticated",
    "403": "Not allowed (or missing CSRF token for a session)",
    "404": "Does not exist, or is not yours",
    "405": "Method not allowed",
    "406": "Not acceptable",
    "413": "Body too large",
    "415": "Unsupported media type",
    "429": "Throttled; see Retry-After",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": ref}}}
                )
    return result
