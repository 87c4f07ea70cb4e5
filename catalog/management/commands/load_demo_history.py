"""`manage.py load_demo_history`: a month of deployments of the demo services, so the deployment views, DORA
figures and the Production readiness scorecard have something to show, and two developer environments of the demo developer, so the home page shows
TTL countdowns and a third environment needs an approval (the starter quota). Runs once: it does nothing when
deployments exist already."""
import random
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from catalog.models import Blueprint, Entity, Team
from catalog.services.entities import CREATE, UPSERT_MERGE, entity_write_one
from portal.actor import Actor
from portal.datetimes import instant_text

SERVICES = ("CartService", "ProductsService")
ENVIRONMENTS = ("development", "staging", "production")
DEVELOPER = "developer@portal.local"
DAYS = 30


def _history(rng, now):
    """(service, environment, version, commit time, finished at, status), oldest first, per service and env."""
    for service in SERVICES:
        for environment in ENVIRONMENTS:
            every = {"development": 1.0, "staging": 2.5, "production": 5.0}[environment]
            at, version = now - timedelta(days=DAYS), 0
            while True:
                at += timedelta(days=every * rng.uniform(0.6, 1.4))
                if at >= now - timedelta(hours=2):
                    break
                version += 1
                failed = rng.random() < 0.15
                commit = at - timedelta(hours=rng.uniform(0.5, 30))
                yield service, environment, f"1.{version}.0", commit, at, "failure" if failed else "success"
                if failed:  # restored by a fix a little later
                    at += timedelta(hours=rng.uniform(0.5, 6))
                    version += 1
                    yield service, environment, f"1.{version}.0", at - timedelta(hours=1), at, "success"


class Command(BaseCommand):
    help = "Add a month of demo deployments and two developer environments (once)."

    def handle(self, *args, **options):
        blueprints = {b.identifier: b for b in Blueprint.objects.filter(
            identifier__in=["deployment", "runningService", "devEnvironment", "Component"])}
        if len(blueprints) < 4:
            raise CommandError("Install the starter catalog first (manage.py load_starter).")
        if Entity.objects.filter(blueprint=blueprints["deployment"]).exists():
            self.stdout.write("Demo history: deployments exist already; nothing added.")
            return
        with transaction.atomic():
            self._service_readiness(blueprints["Component"])
            count = self._deployments(blueprints)
            self._dev_environments(blueprints["devEnvironment"])
        self.stdout.write(f"Demo history: {count} deployments and 2 developer environments added.")

    def _service_readiness(self, blueprint):
        """What the Production readiness scorecard reads: both services are the demo's Checkout team's, CartService
        has a README and an on-call, ProductsService a README only."""
        actor, teams = Actor.system(), list(Team.objects.filter(name="Checkout").values_list("name", flat=True))
        for service, properties, owners in (
                ("CartService", {"readme": "https://docs.portal.test/cart", "onCall": "#cart-oncall"}, teams),
                ("ProductsService", {"readme": "https://docs.portal.test/products"}, teams)):
            if Entity.objects.filter(blueprint=blueprint, identifier=service).exists():
                entity_write_one(actor=actor, blueprint=blueprint, mode=UPSERT_MERGE, data={
                    "identifier": service, "properties": properties, **({"team": owners} if owners else {})})

    def _deployments(self, blueprints):
        rng, now, ci = random.Random(7), timezone.now(), Actor(client_id="ci-demo")
        current, count = {}, 0
        for service, environment, version, commit, at, status in _history(rng, now):
            running = f"{service}-{environment}"
            sha = f"{rng.getrandbits(160):040x}"
            job = f"https://ci.example.com/{service}/jobs/{rng.randint(10000, 99999)}"
            who = rng.choice(["developer@portal.local", "manager@portal.local", "ci-bot"])
            if running not in current:
                entity_write_one(actor=ci, blueprint=blueprints["runningService"], mode=UPSERT_MERGE, data={
                    "identifier": running, "relations": {"service": service, "environment": environment},
                    "properties": {"health": "healthy"}})
            started = at - timedelta(minutes=rng.randint(3, 15))
            entity_write_one(actor=ci, blueprint=blueprints["deployment"], mode=CREATE, data={
                "identifier": f"{running}-{version}-{int(at.timestamp())}", "title": f"{service} {version} to {environment}",
                "relations": {"runningService": running},
                "properties": {"version": version, "commitSha": sha, "commitTime": instant_text(commit), "jobUrl": job,
                               "status": status, "deployedBy": who, "startedAt": instant_text(started), "finishedAt": instant_text(at)}})
            count += 1
            if status == "success":
                current[running] = {"version": version, "commitSha": sha, "jobUrl": job, "deployedBy": who,
                                    "deployedAt": instant_text(at)}
        for running, properties in current.items():
            entity_write_one(actor=ci, blueprint=blueprints["runningService"], mode=UPSERT_MERGE,
                             data={"identifier": running, "properties": properties})
        return count

    def _dev_environments(self, blueprint):
        # Written as the developer's own (created_by), as if spun up earlier through create_dev_env.
        developer, now = Actor(client_id=DEVELOPER), timezone.now()
        for branch, days in (("feature-cart-badges", 2), ("fix-checkout-tax", 4)):
            identifier = f"{branch}-developer"
            entity_write_one(actor=developer, blueprint=blueprint, mode=UPSERT_MERGE, data={
                "identifier": identifier, "title": f"{branch} (developer)",
                "properties": {"owner": DEVELOPER, "branch": branch, "url": f"https://{identifier}.dev.portal.test",
                               "ttl": instant_text(now + timedelta(days=days))}})
