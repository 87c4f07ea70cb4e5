"""Test data: one factory per model. Factories that need a service's side effects (a team's group,
its audit event) create through that service."""
import factory
from factory.django import DjangoModelFactory, Password

from actions.models import Action, Run
from catalog.models import Team
from catalog.services.teams import team_create
from portal.actor import Actor


class TeamFactory(DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"team-{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return team_create(actor=Actor.system(), data=kwargs)


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
