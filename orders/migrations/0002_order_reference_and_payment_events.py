import django.db.models.deletion
from django.db import migrations, models
from django.db.models import CharField
from django.db.models.functions import Cast

import orders.models


def give_every_order_a_reference(apps, schema_editor):
    # What the gateway already knows them by: earlier versions sent the bare
    # id as order_id, so a retry's search still finds their sales.  New
    # orders get a prefix and a UUID, which no bare id can equal.
    Order = apps.get_model("orders", "Order")
    Order.objects.filter(reference__isnull=True).update(reference=Cast("pk", CharField()))


class Migration(migrations.Migration):

    dependencies = [
        ("orders", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="reference",
            field=models.CharField(editable=False, max_length=80, null=True),
        ),
        migrations.RunPython(give_every_order_a_reference, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="order",
            name="reference",
            field=models.CharField(default=orders.models.new_reference, editable=False, max_length=80, unique=True),
        ),
        migrations.AddField(
            model_name="order",
            name="currency",
            field=models.CharField(default=orders.models.default_currency, max_length=3),
        ),
        migrations.AddField(
            model_name="order",
            name="processor_response_code",
            field=models.CharField(blank=True, max_length=10),
        ),
        migrations.AddField(
            model_name="order",
            name="dispute",
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AlterField(
            model_name="order",
            name="status",
            field=models.CharField(
                choices=[("pending", "Pending"), ("processing", "Processing"), ("paid", "Paid"),
                         ("declined", "Declined"), ("failed", "Failed"), ("review", "Needs review"),
                         ("settlement_declined", "Settlement declined")],
                default="pending", max_length=20,
            ),
        ),
        migrations.CreateModel(
            name="PaymentEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("source", models.CharField(max_length=20)),
                ("kind", models.CharField(max_length=60)),
                ("transaction_id", models.CharField(blank=True, db_index=True, max_length=64)),
                ("outcome", models.CharField(max_length=300)),
                ("payload", models.TextField(blank=True)),
                ("happened_at", models.DateTimeField(blank=True, null=True)),
                ("received_at", models.DateTimeField(auto_now_add=True)),
                ("order", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                            related_name="events", to="orders.order")),
            ],
            options={"ordering": ["-received_at", "-id"]},
        ),
    ]
