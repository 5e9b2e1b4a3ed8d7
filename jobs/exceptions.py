"""Errors of the job machinery."""


class JobError(Exception):
    """Base class for errors raised by the job machinery."""


class InvalidJobMessage(JobError):
    """Raised when a channel message does not name a job: a missing or
    malformed ``job`` key.  The message is logged and dropped."""


class JobNotFound(JobError):
    """Raised when a channel message names a job that does not exist (it was
    deleted, or the message came from another database)."""
