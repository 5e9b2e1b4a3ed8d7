"""Model references that travel in jobs: ``"<app_label>.<Model>"`` plus a primary key.

A worker turns a reference back into a row with ``apps.get_model``, but only
for the models listed in ``JOBS_ALLOWED_MODELS``: a job can never make a
worker load an arbitrary model, however the job row came to say so.
"""

from __future__ import annotations

import attrs
from django.apps import apps
from django.conf import settings
from django.db import models

from jobs.exceptions import ModelNotAllowed, SubjectMissing, UnknownModel


@attrs.frozen
class ModelRef:
    """A pointer to one row of any allowed model."""

    label: str  # "<app_label>.<model>"; Django resolves it case-insensitively
    pk: str

    @classmethod
    def of(cls, instance: models.Model) -> ModelRef:
        return cls(label=instance._meta.label_lower, pk=str(instance.pk))

    def __str__(self) -> str:
        return f"{self.label} {self.pk}"


def allowed_labels() -> frozenset[str]:
    """The allow-list, compared case-insensitively as Django compares model names."""
    return frozenset(label.lower() for label in settings.JOBS_ALLOWED_MODELS)


def model_of(label: str) -> type[models.Model]:
    """The model class a label names, if it is allowed."""
    if label.lower() not in allowed_labels():
        raise ModelNotAllowed(f"Model {label!r} is not allowed in jobs (see JOBS_ALLOWED_MODELS)")
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        raise UnknownModel(f"No model {label!r} is installed") from None


def resolve(ref: ModelRef, *, for_update: bool = False) -> models.Model:
    """Load the row a reference points to; one code path for every allowed model."""
    model = model_of(ref.label)
    queryset = model._default_manager.select_for_update() if for_update else model._default_manager.all()
    try:
        return queryset.get(pk=ref.pk)
    except (model.DoesNotExist, ValueError, TypeError):
        # A pk of the wrong shape ("abc" for an integer key) is as missing as a deleted row.
        raise SubjectMissing(f"{ref.label} {ref.pk} does not exist") from None
