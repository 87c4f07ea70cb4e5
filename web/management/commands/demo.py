"""`make demo`: migrate, load the example catalog, create demo users and an API client, then serve
web + Celery worker + beat until interrupted, restarting any of them that exits (portal/supervisor.py); Ctrl-C
stops all three and the embedded services."""
import json
import os
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from catalog.selectors.api_clients import api_client_is_active
from catalog.selectors.blueprints import blueprints_exist
from catalog.services.api_clients import api_client_create
from catalog.services.users import user_ensure
from portal.actor import Actor
from portal.embedded.holders import ensure_embedded_services
from portal.supervisor import supervise

DEMO_USERS = [
    # email, password, admin, teams
    ("admin@portal.local", "admin", True, ["Platform"]),
    ("developer@portal.local", "developer", False, ["Checkout"]),
    ("manager@portal.local", "manager", False, ["Checkout", "Managers"]),
]


def serve_environment(port):
    """The environment of the demo's web, worker and beat."""
    env = {**os.environ, **ensure_embedded_services(), "DJANGO_SETTINGS_MODULE": "portal.settings",
           "SECRET_KEY": settings.SECRET_KEY,  # this PORTAL_HOME's own, the same in all three
           "PORTAL_BASE_URL": os.environ.get("PORTAL_BASE_URL", f"http://127.0.0.1:{port}"),
           # The built-in demo receiver does the starter actions' work (actions/demo_receiver.py); the portal's
           # webhooks reach it at PORTAL_BASE_URL (portal/outbound.py), and no other loopback service unless
           # OUTBOUND_ALLOWED_NETWORKS says so.
           "PORTAL_DEMO_RECEIVER": os.environ.get("PORTAL_DEMO_RECEIVER", "1")}
    if not os.environ.get("SLACK_BOT_TOKEN"):  # no workspace: post to the demo's fake Slack (/demo/slack/)
        env.update({"SLACK_BOT_TOKEN": "xoxb-demo", "SLACK_API_URL": f"http://127.0.0.1:{port}/demo/slack/",
                    "SLACK_DEFAULT_CHANNEL": os.environ.get("SLACK_DEFAULT_CHANNEL", "#platform")})
    return env


class Command(BaseCommand):
    help = "Set up demo data and serve web, worker and beat together on 127.0.0.1:$PORT."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-serve", action="store_true", help="set up data and exit")
        parser.add_argument("--skip-setup", action="store_true", help="serve without migrating or loading data")

    def handle(self, *args, port, no_serve, skip_setup, **options):
        if skip_setup:
            return self._serve(port)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        if not blueprints_exist():
            call_command("load_catalog")
        call_command("load_starter", stdout=self.stdout)  # starter catalog and actions; adds only what is missing
        actor = Actor.system()
        for email, password, admin, teams in DEMO_USERS:
            user_ensure(actor=actor, email=email, admin=admin, superuser=admin, team_names=teams, password=password)
        call_command("load_demo_history", stdout=self.stdout)  # deployments, running services and two developer environments
        client = self._demo_client(actor)
        self.stdout.write(self.style.SUCCESS("\nPortal demo is ready."))
        self.stdout.write(f"  Web:        http://127.0.0.1:{port}/   (admin: http://127.0.0.1:{port}/admin/)")
        self.stdout.write(f"  API docs:   http://127.0.0.1:{port}/v1/docs")
        self.stdout.write(f"  Slack:      http://127.0.0.1:{port}/demo/slack/   (messages the demo posted, unless SLACK_BOT_TOKEN is set)")
        self.stdout.write("  Demo users (email / password):")
        for email, password, admin, teams in DEMO_USERS:
            self.stdout.write(f"    {email} / {password}   {'admin, ' if admin else ''}team {', '.join(teams)}")
        self.stdout.write(f"  Admin API client: {json.dumps(client)}")
        self.stdout.write(f"    curl -s -X POST http://127.0.0.1:{port}/v1/auth/access_token -H 'Content-Type: application/json' "
                          f"-d '{json.dumps(client)}'\n")
        if not no_serve:
            self._serve(port)

    def _demo_client(self, actor):
        """One admin API client for the demo; its secret is kept under PORTAL_HOME so restarts print it again."""
        path = settings.PORTAL_HOME / "demo-api-client.json"
        if path.exists():
            saved = json.loads(path.read_text())
            if api_client_is_active(saved["clientId"]):
                return saved
        user = user_ensure(actor=actor, email=DEMO_USERS[0][0], admin=True)
        client, secret = api_client_create(actor=actor, user=user)
        saved = {"clientId": client.client_id, "clientSecret": secret}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved))
        path.chmod(0o600)
        return saved

    def _serve(self, port):
        supervise(serve_commands(port), env=serve_environment(port))
        self.stdout.write("Demo stopped.")


def serve_commands(port):
    """The demo's processes: web, Celery worker and beat, from this Python's environment."""
    bindir = os.path.dirname(sys.executable)
    return {
        "web": [os.path.join(bindir, "gunicorn"), "portal.wsgi", "--config", "python:portal.gunicorn_config",
                "--bind", f"127.0.0.1:{port}", "--workers", "2",
                "--threads", "4", "--access-logfile", "-"],
        "worker": [os.path.join(bindir, "celery"), "-A", "portal", "worker", "--concurrency", "2", "--loglevel", "INFO"],
        "beat": [os.path.join(bindir, "celery"), "-A", "portal", "beat", "--loglevel", "INFO",
                 "--schedule", str(settings.PORTAL_HOME / "celerybeat-schedule")],
    }
