"""`manage.py entity_indexes_sync`: build and drop the entity table's sort indexes now, as the worker does after a
blueprint change (catalog/services/entity_indexes.py); for operators and the benchmark, which runs no worker."""
from django.core.management.base import BaseCommand

from catalog.services.entity_indexes import entity_indexes_sync
from portal.actor import Actor


class Command(BaseCommand):
    help = "Build the sort indexes of every indexed property and drop those nothing needs (CONCURRENTLY)."

    def handle(self, *args, **options):
        done = entity_indexes_sync(actor=Actor.system())
        self.stdout.write(f"Sort indexes built: {len(done['created'])}, dropped: {len(done['dropped'])}.")
