"""Errors of the job machinery."""


class JobError(Exception):
    """Base class for errors raised by the job machinery."""


class InvalidJobMessage(JobError):
    """Raised when a channel message does not name a job: a missing or
    malformed ``job`` key.  The message is logged and dropped."""


class JobNotFound(JobError):
    """Raised when a channel message names a job that does not exist (it was
    deleted, or the message came from another database)."""


class JobRejected(JobError):
    """Base for inputs a job can never work with.  The job fails at once,
    with this message as its error, and is never retried."""


class ModelNotAllowed(JobRejected):
    """Raised when a job names a model that is not in ``JOBS_ALLOWED_MODELS``:
    a worker only ever loads the models it was meant to."""


class UnknownModel(JobRejected):
    """Raised when a job names ``<app_label>.<Model>`` that no installed app has."""


class SubjectMissing(JobRejected):
    """Raised when a job's model reference is fine but its row is gone."""


class InvalidPayload(JobRejected):
    """Raised when a job's payload does not fit the attrs class its consumer
    expects: a missing or extra field, a wrong type, a failed validator."""
