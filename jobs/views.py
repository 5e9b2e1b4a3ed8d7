from drf_spectacular.utils import extend_schema
from rest_framework import viewsets

from jobs.selectors import jobs_for_user
from jobs.serializers import JobFilterSerializer, JobSerializer


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Job reports: status, progress, attempts and error of background work."""

    serializer_class = JobSerializer
    lookup_value_regex = r"[0-9]{1,18}"

    def get_queryset(self):
        filters = JobFilterSerializer.validated(self.request) if self.action == "list" else {}
        return jobs_for_user(user=self.request.user, **filters)

    @extend_schema(parameters=[JobFilterSerializer])
    def list(self, request, *args, **kwargs):
        """Your jobs, newest first: filter by status, kind or the day they were created.

        A parameter the list does not know is a 400, never ignored.
        """
        return super().list(request, *args, **kwargs)
