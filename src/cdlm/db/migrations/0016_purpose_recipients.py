import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


def _recipients(**extra: object) -> fields.JSONField:
    return fields.JSONField(
        default=list,
        description="Names or categories of recipients of the data",
        encoder=functools.partial(dumps, separators=(",", ":")),
        decoder=loads,
        **extra,
    )


# Existing purposes get no recipients (a purpose that sells or shares data then exports them
# as "not recorded"): the column is added with a database default that fills the rows already
# there, and the default is dropped again, as the model has none.
class Migration(migrations.Migration):
    dependencies = [("cdlm", "0015_idempotency_key_digests")]

    initial = False

    operations = [
        ops.AddField(model_name="Purpose", name="recipients", field=_recipients(db_default=[])),
        ops.AlterField(model_name="Purpose", name="recipients", field=_recipients()),
    ]
