"""Test data: one factory per model. Factories whose rows a service writes in production (a team and its group,
a blueprint and its permissions, an entity, an API credential) create through that service, as the system unless
given an `actor`, so the permissions and audit events are the ones production has."""
import factory
from factory.django import DjangoModelFactory, Password

from actions.models import Action, Run
from catalog.models import Blueprint, Entity, Team
from catalog.services.api_clients import api_client_create
from catalog.services.blueprints import blueprint_create
from catalog.services.entities import UPSERT, UPSERT_MERGE, entity_write_one
from catalog.services.permissions import blueprint_permissions_update
from catalog.services.teams import team_create
from portal.actor import Actor
from portal.models import ApiClient


class TeamFactory(DjangoModelFactory):
    """`TeamFactory(name="platform", users=["dev@example.com"])`: the keys of a team's JSON, through team_create."""

    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"team-{n}")

    @classmethod
    def _create(cls, model_class, *args, actor=None, **data):
        return team_create(actor=actor or Actor.system(), data=data)


class UserFactory(DjangoModelFactory):
    """`UserFactory(email=…, admin=True, teams=["platform"])`; a named team is created when missing."""

    class Meta:
        model = "auth.User"
        skip_postgeneration_save = True

    class Params:
        admin = factory.Trait(is_superuser=True, is_staff=True)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.SelfAttribute("email")
    password = Password("pw")

    @factory.post_generation
    def teams(user, create, names, **kwargs):
        for name in names or ():
            team = Team.objects.filter(name=name).first() or TeamFactory(name=name)
            team.group.user_set.add(user)


class ActionFactory(DjangoModelFactory):
    """A self-service action on `blueprint` with webhook invocation; `inputs`, `required` and `condition` shape
    its trigger (`inputs` defaults to one string input, branch)."""

    class Meta:
        model = Action

    class Params:
        blueprint = "Service"
        inputs = None
        required = ()
        condition = None

    identifier = "deploy"
    title = factory.LazyAttribute(lambda o: o.identifier.replace("_", " ").title())
    operation = "DAY-2"
    blueprint_identifier = factory.SelfAttribute("blueprint")
    trigger_type = "self-service"
    invocation_method = factory.LazyFunction(lambda: {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"})

    @factory.lazy_attribute
    def trigger(self):
        inputs = self.inputs if self.inputs is not None else {"branch": {"type": "string"}}
        trigger = {"type": "self-service", "operation": self.operation, "blueprintIdentifier": self.blueprint,
                   "userInputs": {"properties": inputs, "required": list(self.required)}}
        if self.condition is not None:
            trigger["condition"] = self.condition
        return trigger


class RunFactory(DjangoModelFactory):
    """A run as a backend or page finds it; tests give the status and whatever else they look at."""

    class Meta:
        model = Run

    id = factory.Sequence(lambda n: f"r_factory{n:04d}")
    action = factory.SubFactory(ActionFactory)


class BlueprintFactory(DjangoModelFactory):
    """`BlueprintFactory(**SERVICE)` or `BlueprintFactory(identifier="Env", schema={...}, relations={...})`: the keys
    of a blueprint's JSON definition, created through blueprint_create; `permissions` (the permissions document)
    then goes through blueprint_permissions_update."""

    class Meta:
        model = Blueprint

    identifier = factory.Sequence(lambda n: f"blueprint{n}")
    title = factory.SelfAttribute("identifier")
    schema = factory.LazyFunction(lambda: {"properties": {}})

    @classmethod
    def _create(cls, model_class, *args, actor=None, permissions=None, **data):
        actor = actor or Actor.system()
        blueprint = blueprint_create(actor=actor, data=data)
        if permissions is not None:
            blueprint_permissions_update(actor=actor, blueprint=blueprint, data=permissions)
        return blueprint


class EntityFactory(DjangoModelFactory):
    """`EntityFactory(blueprint="Service", identifier="checkout", team=["payments"], properties={...})`: the keys of an
    entity's JSON, upserted through entity_write_one (`mode` another write mode, e.g. UPSERT_MERGE) on `blueprint`,
    an identifier or a Blueprint."""

    class Meta:
        model = Entity

    blueprint = "Service"
    identifier = factory.Sequence(lambda n: f"entity-{n}")

    @classmethod
    def _create(cls, model_class, *args, blueprint, actor=None, mode=UPSERT, **data):
        if isinstance(blueprint, str):
            blueprint = Blueprint.objects.get(identifier=blueprint)
        return entity_write_one(actor=actor or Actor.system(), blueprint=blueprint, data=data, mode=mode).entity



class RunningServiceFactory(EntityFactory):
    """The running service `<service>-<environment>` of the starter deployment blueprints, related to both."""

    class Params:
        service = "CartService"
        environment = "production"

    blueprint = "runningService"
    identifier = factory.LazyAttribute(lambda o: f"{o.service}-{o.environment}")
    relations = factory.LazyAttribute(lambda o: {"service": o.service, "environment": o.environment})


class DeploymentFactory(EntityFactory):
    """A deployment entity of `running_service` (an identifier), with the properties a test gives."""

    class Params:
        running_service = "CartService-production"

    blueprint = "deployment"
    identifier = factory.Sequence(lambda n: f"deployment-{n}")
    relations = factory.LazyAttribute(lambda o: {"runningService": o.running_service})


class LockFactory(EntityFactory):
    """A lock on an existing environment or running service: its lock properties merged in (UPSERT_MERGE)."""

    class Params:
        reason = "release freeze"
        by = "sre@example.com"
        at = "2025-01-01T00:00:00.000Z"
        until = None

    blueprint = "environment"
    mode = UPSERT_MERGE

    @factory.lazy_attribute
    def properties(self):
        properties = {"locked": True, "lockReason": self.reason, "lockedBy": self.by, "lockedAt": self.at}
        if self.until:
            properties["lockedUntil"] = self.until
        return properties


class ApiClientFactory(DjangoModelFactory):
    """An API credential of `user`, created through api_client_create; its plain secret (shown once) is `.secret`."""

    class Meta:
        model = ApiClient

    user = factory.SubFactory(UserFactory)
    is_machine = True

    @classmethod
    def _create(cls, model_class, *args, user, is_machine, actor=None):
        client, secret = api_client_create(actor=actor or Actor.system(), user=user, is_machine=is_machine)
        client.secret = secret
        return client
