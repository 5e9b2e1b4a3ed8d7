"""The catalogue API: register ISBNs in bulk; read books, authors, people and subjects.

The catalogue is shared: every signed-in user reads every book, author,
person and subject.  Batches and their jobs stay with the user who sent them.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from project.throttling import ScopedThrottle

from books.models import Author, Person, Place, Subject
from books.selectors import books_list, entities_list
from books.serializers import (
    AuthorDetailSerializer,
    AuthorSerializer,
    BookFilterSerializer,
    BookSerializer,
    BulkRegisterSerializer,
    BulkResultSerializer,
    EntityFilterSerializer,
    PersonDetailSerializer,
    PersonSerializer,
    PlaceDetailSerializer,
    PlaceSerializer,
    SubjectDetailSerializer,
    SubjectSerializer,
    registration_report,
)
from books.services import books_register

# Bounded so a huge id is a 404 from the URL, not an overflow in the database.
ID_REGEX = r"[0-9]{1,18}"


def _filters(serializer_class, request) -> dict:
    # A plain dict, not the QueryDict: DRF reads "?status=" from form-like
    # input as absent, and an empty filter must be a 400 like any bad value.
    params = serializer_class(data=request.query_params.dict())
    params.is_valid(raise_exception=True)
    return params.validated_data


class BookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Books: registered by ISBN, filled in from OpenLibrary in the background."""

    serializer_class = BookSerializer
    lookup_value_regex = ID_REGEX
    throttle_scope = "books"

    def get_throttles(self):
        # Only registering costs lookups; reading is never throttled.
        return [ScopedThrottle()] if self.action == "bulk" else []

    def get_queryset(self):
        if self.action != "list":
            return books_list()
        filters = _filters(BookFilterSerializer, self.request)
        return books_list(
            search=filters.get("search", ""),
            author_id=filters.get("author"),
            person_id=filters.get("person"),
            subject_id=filters.get("subject"),
            status=filters.get("status", ""),
            batch_id=filters.get("batch"),
            user=self.request.user,
        )

    @extend_schema(parameters=[BookFilterSerializer])
    def list(self, request, *args, **kwargs):
        """The catalogue, newest first: search it, or filter by author, person, subject, status or batch."""
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=BulkRegisterSerializer,
        responses={
            202: OpenApiResponse(BulkResultSerializer, description="New books queued for lookup in a batch."),
            200: OpenApiResponse(BulkResultSerializer, description="Nothing new: every ISBN was a duplicate or invalid."),
        },
    )
    @action(detail=False, methods=["post"], serializer_class=BulkRegisterSerializer)
    def bulk(self, request):
        """Register ISBNs; each new one is looked up at OpenLibrary in the background.

        Answers at once with what became of each string: accepted, a duplicate
        (already registered, or repeated in the request) or invalid, with the
        reason.  Follow the batch's job on /ws/status/ or at `job.url`.
        """
        params = BulkRegisterSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        registration = books_register(user=request.user, values=params.validated_data["isbn"])
        body = registration_report(registration, request)
        if registration.batch is None:
            return Response(body, status=status.HTTP_200_OK)
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["job"]["url"]})


class _EntityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    model: type
    detail_serializer_class: type
    lookup_value_regex = ID_REGEX

    def get_serializer_class(self):
        return self.detail_serializer_class if self.action == "retrieve" else self.serializer_class

    def get_queryset(self):
        search = _filters(EntityFilterSerializer, self.request).get("search", "") if self.action == "list" else ""
        return entities_list(model=self.model, search=search)

    @extend_schema(parameters=[EntityFilterSerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


class AuthorViewSet(_EntityViewSet):
    """Authors, by name; each lists its books."""

    model = Author
    serializer_class = AuthorSerializer
    detail_serializer_class = AuthorDetailSerializer


class PersonViewSet(_EntityViewSet):
    """People in books (characters), by name; each lists its books."""

    model = Person
    serializer_class = PersonSerializer
    detail_serializer_class = PersonDetailSerializer


class SubjectViewSet(_EntityViewSet):
    """Subjects, by name; each lists its books."""

    model = Subject
    serializer_class = SubjectSerializer
    detail_serializer_class = SubjectDetailSerializer


class PlaceViewSet(_EntityViewSet):
    """Places books are about, by name; each lists its books."""

    model = Place
    serializer_class = PlaceSerializer
    detail_serializer_class = PlaceDetailSerializer
