import uuid

import django.db.models.deletion
from django.db import migrations, models

import orders.models


def give_every_order_a_reference(apps, schema_editor):
    # One UUID per row: AddField's default would give every existing row the same one.
    Order = apps.get_model("orders", "Order")
    for order in Order.objects.filter(reference__isnull=True).only("pk").iterator():
        Order.objects.filter(pk=order.pk).update(reference=f"order-{uuid.uuid4().hex}")


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
                ("received_at", models.DateTimeField(auto_now_add=True)),
                ("order", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                            related_name="events", to="orders.order")),
            ],
            options={"ordering": ["-received_at", "-id"]},
        ),
    ]
