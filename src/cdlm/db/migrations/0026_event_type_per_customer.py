from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0025_stewardship_and_training")]

    initial = False

    operations = [
        ops.AddIndex(
            model_name="Event",
            index=Index(fields=["customer_id", "type", "occurred_at", "id"]),
        ),
    ]
