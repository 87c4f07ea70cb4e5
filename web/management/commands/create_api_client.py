import json

from django.core.management.base import BaseCommand, CommandError

from catalog.services.api_clients import api_client_create
from catalog.services.users import user_ensure
from portal.actor import Actor
from portal.errors import PortalError


class Command(BaseCommand):
    help = "Create API credentials for a user (created if needed); prints {clientId, clientSecret} once."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--admin", action="store_true", help="make the user an admin")
        parser.add_argument("--team", action="append", default=[], help="add the user to this team (repeatable)")

    def handle(self, *args, email, admin, team, **options):
        actor = Actor.system()
        try:
            user = user_ensure(actor=actor, email=email, admin=admin, team_names=team)
            client, secret = api_client_create(actor=actor, user=user)
        except PortalError as exc:
            raise CommandError(exc.message)
        self.stdout.write(json.dumps({"clientId": client.client_id, "clientSecret": secret}))
