"""Errors of the job machinery."""


class JobError(Exception):
    """Base class for errors raised by the job machinery."""


class InvalidJobMessage(JobError):
    """Raised when a channel message does not name a job: a missing or
    malformed ``job`` key.  The message is logged and dropped."""


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


class TaskArgumentsNotJSON(JobError, TypeError):
    """Raised at ``enqueue`` when a task's arguments are not plain JSON: a
    model instance (pass its primary key), a date, a set.  A ``TypeError``,
    as Django's own backends raise for the same mistake."""


class TaskMissing(JobRejected):
    """Raised when a task's job names a function path that holds no task in
    the worker's code (renamed, removed, or a worker running older code)."""


class TaskResultNotJSON(JobRejected):
    """Raised when a task returns something that is not plain JSON: the
    Tasks API stores return values as JSON, so the task fails."""
