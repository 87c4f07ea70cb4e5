"""GET /v1/audit-log: shape, filters, permissions, paging and query counts."""
from datetime import datetime, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import choices as audit_choices
from audit.models import AuditEvent
from audit.services import audit_record_failure
from catalog.services.entities import UPSERT, entity_write_one
from catalog.services.permissions import blueprint_permissions_update
from portal.actor import Actor, AuditOrigin
from tests.audit.tampering import tamper
from tests.factories import BlueprintFactory, EntityFactory, RunFactory, TeamFactory, UserFactory
from tests.support.api import api_for

pytestmark = pytest.mark.django_db

SERVICE = {"identifier": "Service", "title": "Service",
           "schema": {"properties": {"language": {"type": "string"}, "apiToken": {"type": "string"}}}}
VAULT = {"identifier": "Vault", "title": "Vault", "schema": {"properties": {"level": {"type": "number"}}}}


@pytest.fixture
def audited_catalog(admin_user):
    """Two blueprints; `Vault` entities are readable by admins only (no Member read grant)."""
    admin = Actor(user=admin_user, origin=AuditOrigin.UI)
    service = BlueprintFactory(actor=admin, **SERVICE)
    vault = BlueprintFactory(actor=admin, **VAULT)
    blueprint_permissions_update(actor=admin, blueprint=vault, data={"entities": {"read": {"roles": ["Admin"]}}})
    TeamFactory(actor=admin, name="alpha")
    return service, vault


def in_progress_run(run_id):
    """A real run for entity writes to reference (run_id must name an IN_PROGRESS run)."""
    from actions.models import Action

    action, _ = Action.objects.get_or_create(identifier="audit_test", defaults={
        "title": "Audit test", "trigger": {"type": "self-service", "operation": "DAY-2"}, "trigger_type": "self-service"})
    return RunFactory(id=run_id, action=action, status="IN_PROGRESS")


def audit_log(api, query=""):
    response = api.get("/v1/audit-log" + query)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["ok"] is True
    return body


def test_shape_newest_first(admin_api, audited_catalog):
    service, _ = audited_catalog
    api_actor = Actor(user=admin_api.user, origin=AuditOrigin.API, client_id="cid-1")
    in_progress_run("run-7")
    entity_write_one(actor=api_actor, blueprint=service, data={"identifier": "checkout", "properties": {"language": "go"}},
                     run_id="run-7")
    entity_write_one(actor=api_actor, blueprint=service, data={"identifier": "checkout", "properties": {"language": "py"}},
                     mode=UPSERT)

    audits = audit_log(admin_api)["audits"]
    assert [a["identifier"] for a in audits[:2]] == ["checkout", "checkout"]
    assert [a["action"] for a in audits[:2]] == ["UPDATE", "CREATE"]
    ids = list(AuditEvent.objects.order_by("-id").values_list("identifier", flat=True))
    assert [a["identifier"] for a in audits] == ids  # every event, newest first
    update, create = audits[0], audits[1]
    assert update["resourceType"] == "entity"
    assert update["status"] == "SUCCESS"
    assert update["context"] == {"blueprintIdentifier": "Service", "entityIdentifier": "checkout"}
    assert update["diff"]["before"]["properties"] == {"language": "go"}
    assert update["diff"]["after"]["properties"] == {"language": "py"}
    assert create["diff"]["before"] is None
    assert update["trigger"]["by"] == {"type": "client", "userId": "admin@example.com", "email": "admin@example.com"}
    assert update["trigger"]["origin"] == "API"
    assert datetime.strptime(update["trigger"]["at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert update["trigger"]["at"].endswith("Z") and len(update["trigger"]["at"]) == 24
    assert set(update) == {"identifier", "action", "resourceType", "context", "diff", "status", "trigger", "message",
                           "requestId"}
    system_event = next(a for a in audits if a["resourceType"] == "api_client")
    assert system_event["trigger"]["by"] == {"type": "system"}
    assert "next" not in audit_log(admin_api)


def test_request_id_is_recorded_and_returned(admin_api, audited_catalog):
    response = admin_api.post("/v1/blueprints/Service/entities", {"identifier": "x"}, format="json",
                              HTTP_X_REQUEST_ID="req-123")
    assert response.status_code == 201
    (event,) = audit_log(admin_api, "?identifier=x")["audits"]
    assert event["requestId"] == "req-123"


def test_filters(admin_api, admin_user, audited_catalog):
    service, vault = audited_catalog
    ui = Actor(user=admin_user, origin=AuditOrigin.UI)
    in_progress_run("run-1")
    entity_write_one(actor=ui, blueprint=service, data={"identifier": "a"}, run_id="run-1")
    entity_write_one(actor=Actor.system(), blueprint=vault, data={"identifier": "a"})
    entity_write_one(actor=ui, blueprint=service, data={"identifier": "b"})
    audit_record_failure(actor=ui, verb=audit_choices.ENTITY_DELETED, action=audit_choices.AuditAction.DELETE,
                         resource_type="entity", identifier="b", blueprint="Service", message="refused")

    def idents(query):
        return [(a["resourceType"], a["identifier"], a["action"]) for a in audit_log(admin_api, query)["audits"]]

    assert idents("?identifier=a") == [("entity", "a", "CREATE"), ("entity", "a", "CREATE")]
    assert idents("?entity=Service") == []  # `entity` names an entity, not the blueprint event
    assert idents("?identifier=Service") == [("blueprint", "Service", "CREATE")]
    assert idents("?blueprint=Vault&resources=entity") == [("entity", "a", "CREATE")]
    assert idents("?run_id=run-1") == [("entity", "a", "CREATE")]
    assert idents("?resources=team") == idents("?resources=Team") == [("team", "alpha", "CREATE")]
    assert idents("?resources=team,blueprint") == idents("?resources=team&resources=blueprint") \
        == idents("?resources[]=team&resources[]=blueprint")
    assert sorted(r for r, _, _ in idents("?resources=team,blueprint")) == ["blueprint", "blueprint", "blueprint", "team"]
    assert idents("?action=DELETE") == [("entity", "b", "DELETE")]
    assert idents("?action=delete") == [("entity", "b", "DELETE")]  # case-insensitive
    failure = audit_log(admin_api, "?status=FAILURE")["audits"]
    assert [(a["identifier"], a["message"], a["status"]) for a in failure] == [("b", "refused", "FAILURE")]
    assert idents("?origin=SYSTEM&resources=entity") == [("entity", "a", "CREATE")]
    assert idents("?origin=UI&resources=entity&status=SUCCESS") == [("entity", "b", "CREATE"), ("entity", "a", "CREATE")]
    assert len(audit_log(admin_api, "?limit=2")["audits"]) == 2


def test_from_to(admin_api, audited_catalog):
    # Back-dated the only way the append-only log allows: as the owner, with its triggers off.
    tamper("UPDATE audit_auditevent SET at = %s WHERE identifier = 'Service'", [datetime(2024, 1, 1, 12, tzinfo=timezone.utc)])
    tamper("UPDATE audit_auditevent SET at = %s WHERE identifier = 'Vault'", [datetime(2024, 2, 1, 12, tzinfo=timezone.utc)])

    def idents(query):
        return {a["identifier"] for a in audit_log(admin_api, query + "&resources=blueprint")["audits"]}

    assert idents("?from=2024-01-01T00:00:00Z&to=2024-01-31T00:00:00.000Z") == {"Service"}
    assert idents("?from=2024-01-15T00:00:00%2B00:00") == {"Vault"}
    assert idents("?to=2024-02-01T12:00:00") == {"Service", "Vault"}  # naive means UTC; bounds inclusive
    assert idents("?to=2023-12-31T23:59:59Z") == set()
    assert idents("?from=2024-01-02") == {"Vault"}  # a bare date is its midnight UTC


@pytest.mark.parametrize("query, param", [
    ("?from=yesterday", "from"),
    ("?to=2024-13-01T00:00:00Z", "to"),
    ("?to=2024-02-30", "to"),
    ("?from=2024-02-01T00:00:00Z&to=2024-01-01T00:00:00Z", "from"),
    ("?action=UPSERT", "action"),
    ("?status=OK", "status"),
    ("?origin=EMAIL", "origin"),
    ("?limit=0", "limit"),
    ("?limit=1001", "limit"),
    ("?limit=ten", "limit"),
    ("?resources=Entity!", "resources"),
    ("?next=not-a-cursor", "next"),
])
def test_bad_parameters_are_422_naming_the_parameter(admin_api, query, param):
    response = admin_api.get("/v1/audit-log" + query)
    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False and body["error"] == "invalid_request"
    assert body["message"].startswith(f"{param}:"), body["message"]


def test_limit_maximum_is_accepted(admin_api):
    assert admin_api.get("/v1/audit-log?limit=1000").status_code == 200


def test_anonymous_is_401(anon_api):
    response = anon_api.get("/v1/audit-log")
    assert response.status_code == 401
    assert response.json()["ok"] is False


def test_members_see_only_what_they_may_read(member_api, member_user, admin_user, audited_catalog):
    service, vault = audited_catalog
    admin = Actor(user=admin_user, origin=AuditOrigin.UI)
    EntityFactory(blueprint=service, actor=admin, identifier="visible")
    EntityFactory(blueprint=vault, actor=admin, identifier="hidden")

    seen = {(a["resourceType"], a["identifier"]) for a in audit_log(member_api)["audits"]}
    assert ("entity", "visible") in seen
    assert ("entity", "hidden") not in seen
    assert ("blueprint", "Vault") in seen and ("blueprint", "Service") in seen  # definitions are readable by all
    assert not {r for r, _ in seen} & {"team", "api_client"}
    # A filter cannot widen what the permission filter allows.
    assert audit_log(member_api, "?blueprint=Vault&resources=entity")["audits"] == []
    assert audit_log(member_api, "?identifier=hidden")["audits"] == []

    # A direct read grant opens Vault's entity events to them.
    blueprint_permissions_update(actor=admin, blueprint=vault, data={"entities": {"read": {"users": [member_user.email]}}})
    member = api_for(member_user.__class__.objects.get(pk=member_user.pk))
    assert [a["identifier"] for a in audit_log(member, "?blueprint=Vault&resources=entity")["audits"]] == ["hidden"]


def test_owned_by_team_read_shows_only_their_teams_entities(admin_user, audited_catalog):
    _, vault = audited_catalog
    admin = Actor(user=admin_user, origin=AuditOrigin.UI)
    TeamFactory(actor=admin, name="beta")
    blueprint_permissions_update(actor=admin, blueprint=vault,
                                 data={"entities": {"read": {"roles": ["Admin"], "ownedByTeam": True}}})
    EntityFactory(blueprint=vault, actor=admin, identifier="ours", team=["alpha"])
    EntityFactory(blueprint=vault, actor=admin, identifier="theirs", team=["beta"])
    EntityFactory(blueprint=vault, actor=admin, mode=UPSERT, identifier="ours", team=[])  # given away
    api = api_for(UserFactory(email="alpha@example.com", teams=["alpha"]))
    audits = audit_log(api, "?blueprint=Vault&resources=entity")["audits"]
    assert [(a["identifier"], a["action"]) for a in audits] == [("ours", "UPDATE"), ("ours", "CREATE")]


def test_pages_with_next_cursor(admin_api, admin_user, audited_catalog):
    service, _ = audited_catalog
    admin = Actor(user=admin_user, origin=AuditOrigin.UI)
    for i in range(5):
        EntityFactory(blueprint=service, actor=admin, identifier=f"e{i}")
    first = audit_log(admin_api, "?resources=entity&limit=2")
    assert [a["identifier"] for a in first["audits"]] == ["e4", "e3"]
    EntityFactory(blueprint=service, actor=admin, identifier="late")  # inserts do not shift pages
    second = audit_log(admin_api, f"?resources=entity&limit=2&next={first['next']}")
    assert [a["identifier"] for a in second["audits"]] == ["e2", "e1"]
    third = audit_log(admin_api, f"?resources=entity&limit=2&next={second['next']}")
    assert [a["identifier"] for a in third["audits"]] == ["e0"]
    assert "next" not in third


@pytest.mark.parametrize("who", ["admin", "member"])
def test_query_count_does_not_grow_with_events(who, admin_user, member_user, audited_catalog):
    service, _ = audited_catalog
    api = api_for(admin_user if who == "admin" else member_user)
    admin = Actor(user=admin_user, origin=AuditOrigin.UI)

    def count_queries():
        with CaptureQueriesContext(connection) as ctx:
            body = audit_log(api, "?resources=entity")
        return len(ctx.captured_queries), len(body["audits"])

    EntityFactory(blueprint=service, actor=admin, identifier="e0")
    few, rows = count_queries()
    assert rows == 1
    for i in range(1, 30):
        EntityFactory(blueprint=service, actor=admin, identifier=f"e{i}")
    many, rows = count_queries()
    assert rows == 30
    assert many == few
