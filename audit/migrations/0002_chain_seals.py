"""The hash chain moves out of AuditEvent into AuditSeal rows written by one sealer after commit (audit/chain.py).

Existing events are re-sealed from scratch in id order with the new hash, which covers every stored field (the
old one left out action, actor_type, run_id, context and request_id); the old columns are then dropped."""
import django.db.models.deletion
from django.db import migrations, models

BATCH = 1000


def reseal_existing_events(apps, schema_editor):
    from audit.chain import seal_hash

    AuditEvent = apps.get_model("audit", "AuditEvent")
    AuditSeal = apps.get_model("audit", "AuditSeal")
    position, previous, seals = 0, "", []
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=BATCH):
        position += 1
        digest = seal_hash(previous, event)
        seals.append(AuditSeal(position=position, event_id=event.id, previous_hash=previous, hash=digest))
        previous = digest
        if len(seals) == BATCH:
            AuditSeal.objects.bulk_create(seals)
            seals = []
    AuditSeal.objects.bulk_create(seals)
    # Check the seals' foreign keys now: the columns dropped next cannot be altered with checks pending.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditPending',
            fields=[
                ('event', models.OneToOneField(on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='audit.auditevent')),
            ],
        ),
        migrations.CreateModel(
            name='AuditSeal',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.BigIntegerField(unique=True)),
                ('previous_hash', models.CharField(max_length=64)),
                ('hash', models.CharField(max_length=64)),
                ('event', models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='seal', to='audit.auditevent')),
            ],
            options={
                'ordering': ['position'],
            },
        ),
        migrations.RunPython(reseal_existing_events, migrations.RunPython.noop, elidable=False),
        migrations.RemoveField(
            model_name='auditevent',
            name='hash',
        ),
        migrations.RemoveField(
            model_name='auditevent',
            name='previous_hash',
        ),
    ]
