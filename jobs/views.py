from rest_framework import viewsets

from jobs.selectors import jobs_for_user
from jobs.serializers import JobSerializer


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Job reports: status, progress, attempts and error of background work."""

    serializer_class = JobSerializer
    lookup_value_regex = r"[0-9]{1,18}"

    def get_queryset(self):
        return jobs_for_user(user=self.request.user)
