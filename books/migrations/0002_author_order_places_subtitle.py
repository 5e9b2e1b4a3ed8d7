import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Authors keep OpenLibrary's order; books gain a subtitle, a by-statement and places.

    The authors' many-to-many table becomes the ``BookAuthor`` model with a
    position: the table and its rows stay as they are (the state changes,
    the database only gains the column).
    """

    dependencies = [
        ("books", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="BookAuthor",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("book", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                   related_name="credits", to="books.book")),
                        ("author", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                                     related_name="credits", to="books.author")),
                    ],
                    options={"db_table": "books_book_authors", "unique_together": {("book", "author")}},
                ),
                migrations.AlterField(
                    model_name="book",
                    name="authors",
                    field=models.ManyToManyField(blank=True, related_name="books", through="books.BookAuthor",
                                                 to="books.author"),
                ),
            ],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="bookauthor",
            name="position",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AlterModelOptions(
            name="bookauthor",
            options={"ordering": ["position", "id"]},
        ),
        migrations.CreateModel(
            name="Place",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=255, unique=True)),
                ("name", models.CharField(max_length=255)),
                ("openlibrary_url", models.URLField(blank=True, max_length=500)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["name", "id"], "abstract": False},
        ),
        migrations.AddField(
            model_name="book",
            name="places",
            field=models.ManyToManyField(blank=True, related_name="books", to="books.place"),
        ),
        migrations.AddField(
            model_name="book",
            name="subtitle",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="book",
            name="by_statement",
            field=models.CharField(blank=True, max_length=500),
        ),
    ]
