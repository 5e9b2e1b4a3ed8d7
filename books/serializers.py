from __future__ import annotations

from django.conf import settings
from rest_framework.fields import ProhibitNullCharactersValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.reverse import reverse

from books.models import Author, Book, BookStatus, Entity, Person, Place, Subject
from books.selectors import books_of
from books.services import Registration
from project.api import StrictCharField

# Room for an ISBN-13 written with hyphens and spaces, and then some.
ISBN_INPUT_MAX = 40
# An author, person or subject lists this many of its books; the rest are at books_url.
ENTITY_BOOKS_MAX = 100
ID_MAX = 2**63 - 1


class NulTolerantCharField(StrictCharField):
    """Takes NUL like any other character: it is reported (an invalid ISBN) or
    dropped (a search), never a refusal the schema does not document."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class OpenLibraryURLField(serializers.URLField):
    """OpenLibrary's page of a record: null until a lookup found one.

    The models store "" for none, and "" is no URL: the schema's
    ``format: uri`` says so.
    """

    def __init__(self, **kwargs):
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value):
        return value or None


def _isbn_list() -> serializers.ListField:
    limit = settings.BOOKS_BULK_MAX
    return serializers.ListField(
        child=NulTolerantCharField(
            max_length=ISBN_INPUT_MAX,
            allow_blank=True,
            trim_whitespace=False,
            error_messages={
                "not_a_string": "Each ISBN must be a string.",
                "max_length": f"An ISBN is at most {ISBN_INPUT_MAX} characters.",
            },
        ),
        min_length=1,
        max_length=limit,
        error_messages={
            "not_a_list": 'Send "isbn" as a list of strings, e.g. ["9780345418913"].',
            "empty": "Send at least one ISBN.",
            "min_length": "Send at least one ISBN.",
            "max_length": f"At most {limit} ISBNs per request; send the rest in another.",
        },
        help_text=f"1 to {limit} ISBN-10s or ISBN-13s; hyphens and spaces are allowed.",
    )


class BulkRegisterSerializer(serializers.Serializer):
    default_error_messages = {
        # A format string (DRF fills in {datatype}): the braces are doubled.
        "invalid": 'Send a JSON object: {{"isbn": ["9780345418913", "0-451-52493-4", ...]}}.',
    }

    isbn = serializers.ListField()  # replaced in get_fields

    def get_fields(self):
        # Built at use, not at import, so the limit is BOOKS_BULK_MAX as configured.
        fields = super().get_fields()
        fields["isbn"] = _isbn_list()
        return fields


class JobRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()


class AcceptedSerializer(serializers.Serializer):
    input = serializers.CharField(help_text="The string as sent.")
    isbn = serializers.CharField(help_text="Its ISBN-13.")
    id = serializers.IntegerField(help_text="The new book.")
    url = serializers.CharField()


class DuplicateSerializer(AcceptedSerializer):
    id = serializers.IntegerField(help_text="The book that already has this ISBN.")
    status = serializers.ChoiceField(choices=BookStatus.choices, help_text="That book's status.")
    reason = serializers.CharField()


class InvalidSerializer(serializers.Serializer):
    input = serializers.CharField()
    reason = serializers.CharField()


class BatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Books queued for lookup.")


class BulkResultSerializer(serializers.Serializer):
    batch = BatchSerializer(allow_null=True, help_text="Null when nothing new was accepted.")
    job = JobRefSerializer(allow_null=True, help_text="The batch's job: its progress is the share of its books looked up.")
    accepted = AcceptedSerializer(many=True)
    duplicates = DuplicateSerializer(many=True)
    invalid = InvalidSerializer(many=True)


def registration_report(registration: Registration, request) -> dict:
    """The bulk answer: what became of each string sent."""

    def book_url(book: Book) -> str:
        return reverse("book-detail", args=[book.pk], request=request)

    batch = registration.batch
    return {
        "batch": {"id": batch.pk, "total": batch.total} if batch else None,
        "job": {"id": batch.job_id, "url": reverse("job-detail", args=[batch.job_id], request=request)}
        if batch
        else None,
        "accepted": [
            {"input": e.input, "isbn": e.isbn, "id": book.pk, "url": book_url(book)}
            for e, book in registration.accepted
        ],
        "duplicates": [
            {"input": e.input, "isbn": e.isbn, "id": book.pk, "url": book_url(book), "status": book.status,
             "reason": e.reason}
            for e, book in registration.duplicates
        ],
        "invalid": [{"input": e.input, "reason": e.reason} for e in registration.invalid],
    }


# --- reading ----------------------------------------------------------------------------


def _entity_url(entity: Entity, request) -> str:
    return reverse(f"{entity._meta.model_name}-detail", args=[entity.pk], request=request)


class EntityRefSerializer(serializers.Serializer):
    """An author, person or subject as a book lists it."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    openlibrary_url = OpenLibraryURLField()
    url = serializers.SerializerMethodField()

    def get_url(self, entity: Entity) -> str:
        return _entity_url(entity, self.context.get("request"))


class BookSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    openlibrary_url = OpenLibraryURLField()
    authors = EntityRefSerializer(many=True, read_only=True, source="ordered_authors",
                                  help_text="In OpenLibrary's order: the first is the one named first on the book.")
    people = EntityRefSerializer(many=True, read_only=True)
    places = EntityRefSerializer(many=True, read_only=True)
    subjects = EntityRefSerializer(many=True, read_only=True)

    class Meta:
        model = Book
        fields = [
            "id",
            "url",
            "isbn",
            "status",
            "title",
            "subtitle",
            "by_statement",
            "pages",
            "publish_date",
            "openlibrary_key",
            "openlibrary_url",
            "authors",
            "people",
            "places",
            "subjects",
            "error",
            "looked_up_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_url(self, book: Book) -> str:
        return reverse("book-detail", args=[book.pk], request=self.context.get("request"))


class BookRefSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Book
        fields = ["id", "url", "isbn", "title", "status"]
        read_only_fields = fields

    def get_url(self, book: Book) -> str:
        return reverse("book-detail", args=[book.pk], request=self.context.get("request"))


ENTITY_FIELDS = ["id", "url", "name", "openlibrary_url", "book_count", "books_url"]


class EntitySerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    openlibrary_url = OpenLibraryURLField()
    book_count = serializers.IntegerField(read_only=True)
    books_url = serializers.SerializerMethodField(help_text="All its books, paginated.")

    class Meta:
        model = Author
        fields = ENTITY_FIELDS
        read_only_fields = fields

    def get_url(self, entity: Entity) -> str:
        return _entity_url(entity, self.context.get("request"))

    def get_books_url(self, entity: Entity) -> str:
        base = reverse("book-list", request=self.context.get("request"))
        return f"{base}?{entity._meta.model_name}={entity.pk}"


class EntityDetailMixin(serializers.Serializer):
    books = serializers.SerializerMethodField(
        help_text=f"Its first {ENTITY_BOOKS_MAX} books by title; all of them are at books_url."
    )

    @extend_schema_field(BookRefSerializer(many=True))
    def get_books(self, entity: Entity) -> list[dict]:
        books = books_of(entity=entity, limit=ENTITY_BOOKS_MAX)
        return BookRefSerializer(books, many=True, context=self.context).data


class AuthorSerializer(EntitySerializer):
    pass


class PersonSerializer(EntitySerializer):
    class Meta(EntitySerializer.Meta):
        model = Person


class SubjectSerializer(EntitySerializer):
    class Meta(EntitySerializer.Meta):
        model = Subject


class PlaceSerializer(EntitySerializer):
    class Meta(EntitySerializer.Meta):
        model = Place


class AuthorDetailSerializer(EntityDetailMixin, AuthorSerializer):
    class Meta(AuthorSerializer.Meta):
        fields = [*ENTITY_FIELDS, "books"]


class PersonDetailSerializer(EntityDetailMixin, PersonSerializer):
    class Meta(PersonSerializer.Meta):
        fields = [*ENTITY_FIELDS, "books"]


class SubjectDetailSerializer(EntityDetailMixin, SubjectSerializer):
    class Meta(SubjectSerializer.Meta):
        fields = [*ENTITY_FIELDS, "books"]


class PlaceDetailSerializer(EntityDetailMixin, PlaceSerializer):
    class Meta(PlaceSerializer.Meta):
        fields = [*ENTITY_FIELDS, "books"]


class BookFilterSerializer(serializers.Serializer):
    """The book list's query parameters; anything malformed is a 400 naming it."""

    search = NulTolerantCharField(
        required=False, allow_blank=True, max_length=100, trim_whitespace=False,
        help_text="Words that must each appear in the title, the ISBN or a name of an author, person or subject.",
    )
    author = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX, help_text="An author's id.")
    person = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX, help_text="A person's id.")
    subject = serializers.IntegerField(required=False, min_value=1, max_value=ID_MAX, help_text="A subject's id.")
    status = serializers.ChoiceField(required=False, choices=BookStatus.choices)
    batch = serializers.IntegerField(
        required=False, min_value=1, max_value=ID_MAX, help_text="One of your batches' id: the books it registered."
    )


class EntityFilterSerializer(serializers.Serializer):
    search = NulTolerantCharField(
        required=False, allow_blank=True, max_length=100, trim_whitespace=False,
        help_text="Words that must each appear in the name.",
    )
