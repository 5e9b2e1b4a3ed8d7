from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("sandbox", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="sandboxtransaction",
            name="order_id",
            field=models.CharField(db_index=True, max_length=255),
        ),
        migrations.AddField(
            model_name="sandboxtransaction",
            name="currency_iso_code",
            field=models.CharField(default="USD", max_length=3),
        ),
        migrations.AddField(
            model_name="sandboxtransaction",
            name="processor_response_code",
            field=models.CharField(blank=True, max_length=10),
        ),
        migrations.AddField(
            model_name="sandboxtransaction",
            name="processor_response_type",
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AddField(
            model_name="sandboxtransaction",
            name="gateway_rejection_reason",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddField(
            model_name="sandboxtransaction",
            name="duplicate_of",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="sandboxtransaction",
            name="idempotency_key",
            field=models.CharField(blank=True, max_length=255, null=True, unique=True),
        ),
        migrations.AddField(
            model_name="sandboxtransaction",
            name="updated_at",
            field=models.DateTimeField(auto_now=True),
        ),
    ]
