"""run_preflight: each decision a run request meets before its inputs are read, and that the run form and
run_request agree on it (the page shows what the service then enforces)."""
from datetime import timedelta
from html import unescape
from types import SimpleNamespace

import pytest

from actions.choices import RunStatus
from actions.models import Run
from actions.services.quotas import QuotaExceeded
from actions.services.runs import BackendNotConfigured, run_preflight, run_request
from catalog.models import Entity
from portal.errors import FieldError, Forbidden, PortalError, ValidationFailed
from tests.factories import ActionFactory
from tests.support.pages import Page, get
from tests.support.runs import actor_of, grant

pytestmark = pytest.mark.django_db
TIER_ONE = {"combinator": "and", "rules": [{"property": "tier", "operator": "=", "value": "1"}]}


def refused_by_service(user, action, entity=None, properties=None):
    """The refusal run_request raises (it must raise one)."""
    with pytest.raises(PortalError) as refused:
        run_request(actor=actor_of(user), action=action, properties=properties or {}, entity_identifier=entity)
    return refused.value


def page_text(client, user, path):
    """The form page's HTML as the reader sees it (entities unescaped)."""
    return unescape(get(client, user, path).html)


def shown_by_page(client, user, path, status):
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == status
    return Page(response.content.decode())


# --- approval --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("required, reason", [
    (True, "Runs of this action wait for an approver's decision."),
    ({"type": "ANY"}, "Runs of this action wait for an approver's decision."),
    ({"type": "ALL"}, "Runs of this action wait until every approver has approved."),
])
def test_an_action_that_requires_approval_waits_and_the_form_says_why(client, users, required, reason):
    action = ActionFactory(required_approval=required)
    grant("execute", action, users=[users["dev"]])
    preflight = run_preflight(user=users["dev"], action=action, entity_identifier="portal")
    assert preflight.problems == () and preflight.waits_for_approval
    assert (preflight.required_approval, preflight.approval_reason) == (required, reason)
    assert f"<li>{reason}</li>" in page_text(client, users["dev"], "/actions/deploy/run?entity=portal")
    run = run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    assert (run.status, run.required_approval, run.status_label) == (RunStatus.WAITING_FOR_APPROVAL, required, "")


def test_without_approval_the_run_starts_and_the_form_says_nothing_of_approval(client, users):
    action = ActionFactory()
    grant("execute", action, users=[users["dev"]])
    preflight = run_preflight(user=users["dev"], action=action, entity_identifier="portal")
    assert (preflight.waits_for_approval, preflight.approval_reason, preflight.quota) == (False, "", None)
    assert 'class="notes' not in get(client, users["dev"], "/actions/deploy/run?entity=portal").html
    run = run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    assert run.status == RunStatus.IN_PROGRESS


# --- quota -----------------------------------------------------------------------------------------------------

def test_under_the_quota_the_standing_says_the_limit(client, users):
    action = ActionFactory(quota={"perUser": {"limit": 2, "period": "day"}})
    grant("execute", action, users=[users["dev"]])
    run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    preflight = run_preflight(user=users["dev"], action=action, entity_identifier="portal")
    assert not preflight.quota.exceeded and preflight.quota_refusal is None and not preflight.waits_for_approval
    assert preflight.quota.text == "At most 2 runs per person per day."
    page = get(client, users["dev"], "/actions/deploy/run?entity=portal")
    assert "<li>At most 2 runs per person per day.</li>" in page.html


def test_over_the_quota_the_run_is_refused_with_the_message_the_form_showed(client, users):
    action = ActionFactory(quota={"perUser": {"limit": 1, "period": "day"}})
    grant("execute", action, users=[users["dev"]])
    run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    preflight = run_preflight(user=users["dev"], action=action, entity_identifier="portal")
    assert preflight.problems == () and preflight.quota.exceeded and not preflight.quota.asks_approval
    refusal = preflight.quota_refusal
    assert isinstance(refusal, QuotaExceeded)
    assert refusal.message.startswith("quota.perUser: action 'deploy' allows at most 1 run per user per day")
    assert preflight.quota.text == f"At most 1 run per person per day. You have reached it: {refusal.message}"
    page = get(client, users["dev"], "/actions/deploy/run?entity=portal")  # a note: the form is still offered
    assert refusal.message in unescape(page.html) and page.all("button", type="submit", **{"class": "primary"})
    assert refused_by_service(users["dev"], action, "portal").message == refusal.message
    client.force_login(users["dev"])
    response = client.post("/actions/deploy/run?entity=portal", {"entity": "portal", "properties.branch": "x"})
    assert response.status_code == 429
    assert Page(response.content.decode()).text("form-error") == refusal.message
    assert Run.objects.count() == 1


def test_over_the_quota_with_require_approval_the_run_waits_and_says_why(client, users):
    action = ActionFactory(quota={"perUser": {"limit": 1, "period": "day"}, "whenExceeded": "requireApproval"})
    grant("execute", action, users=[users["dev"]])
    first = run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    assert first.status == RunStatus.IN_PROGRESS
    preflight = run_preflight(user=users["dev"], action=action, entity_identifier="portal")
    assert preflight.quota.asks_approval and preflight.quota_refusal is None
    assert preflight.required_approval == {"type": "ANY"}
    assert preflight.approval_reason == "This run will wait for an approval because it is beyond the action's quota."
    assert preflight.quota.text == "At most 1 run per person per day. You have reached it, so this one will wait for an approval."
    html = page_text(client, users["dev"], "/actions/deploy/run?entity=portal")
    assert f"<li>{preflight.approval_reason}</li>" in html and f"<li>{preflight.quota.text}</li>" in html
    second = run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    assert (second.status, second.required_approval) == (RunStatus.WAITING_FOR_APPROVAL, {"type": "ANY"})
    assert second.status_label == preflight.status_label
    assert second.status_label.startswith("Beyond the quota, so it needs an approval (quota.perUser: ")


def test_over_the_quota_an_action_that_requires_approval_keeps_its_own(users):
    action = ActionFactory(required_approval={"type": "ALL"},
                           quota={"perUser": {"limit": 1, "period": "day"}, "whenExceeded": "requireApproval"})
    grant("execute", action, users=[users["dev"]])
    run_request(actor=actor_of(users["dev"]), action=action, properties={}, entity_identifier="portal")
    preflight = run_preflight(user=users["dev"], action=action, entity_identifier="portal")
    assert preflight.required_approval == {"type": "ALL"}
    assert preflight.approval_reason == "Runs of this action wait until every approver has approved."
    assert preflight.status_label.startswith("Beyond the quota")


def test_live_entities_are_counted_for_create_actions(users):
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env", quota={"liveEntitiesPerUser": 2})
    grant("execute", action, users=[users["dev"]])
    standing = run_preflight(user=users["dev"], action=action).quota
    assert (standing.live, standing.pending, standing.exceeded) == (0, 0, False)
    run_request(actor=actor_of(users["dev"]), action=action, properties={})
    standing = run_preflight(user=users["dev"], action=action).quota
    assert (standing.live, standing.pending, standing.exceeded) == (0, 1, False)
    assert standing.text == "At most 2 live at a time per person. You have 0 and 1 under way."
    run_request(actor=actor_of(users["dev"]), action=action, properties={})
    preflight = run_preflight(user=users["dev"], action=action)
    assert preflight.quota_refusal.message.startswith("quota.liveEntitiesPerUser: action 'create_env' allows at most 2")
    assert refused_by_service(users["dev"], action).message == preflight.quota_refusal.message


# --- TTL -------------------------------------------------------------------------------------------------------

def test_the_ttl_of_what_a_create_action_makes(client, users):
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env",
                           ttl={"property": "ttl", "default": "PT8H", "maximum": "P14D"})
    grant("execute", action, users=[users["dev"]])
    preflight = run_preflight(user=users["dev"], action=action)
    assert (preflight.ttl_default, preflight.ttl_maximum) == (timedelta(hours=8), timedelta(days=14))
    html = get(client, users["dev"], "/actions/create_env/run").html
    assert "What it creates is torn down after 8h unless extended, at most 14d after it was created." in html


def test_without_a_maximum_or_a_ttl(client, users):
    with_default = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env",
                                 ttl={"property": "ttl", "default": "P1D"})
    preflight = run_preflight(user=users["admin"], action=with_default)
    assert (preflight.ttl_default, preflight.ttl_maximum) == (timedelta(days=1), None)
    assert "What it creates is torn down after 1d unless extended." in get(client, users["admin"], "/actions/create_env/run").html
    day2 = ActionFactory()
    preflight = run_preflight(user=users["admin"], action=day2, entity_identifier="portal")
    assert (preflight.ttl_default, preflight.ttl_maximum) == (None, None)


# --- the entity ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("entity, message", [
    (None, "entity: is required by DAY-2 action 'deploy'"),
    ("nope", "entity: entity 'nope' of blueprint 'Service' was not found"),
])
def test_a_missing_entity_is_a_problem_naming_entity(client, users, entity, message):
    action = ActionFactory()
    grant("execute", action, users=[users["dev"]])
    preflight = run_preflight(user=users["dev"], action=action, entity_identifier=entity)
    (problem,) = preflight.problems
    assert isinstance(problem, ValidationFailed) and problem.path == "entity" and problem.message == message
    assert preflight.entity is None
    assert refused_by_service(users["dev"], action, entity).message == message
    if entity:
        get(client, users["dev"], f"/actions/deploy/run?entity={entity}", status=404)


def test_an_entity_the_user_may_not_read_is_not_found(client, users):
    from catalog.models import Blueprint
    from catalog.services.permissions import blueprint_permissions_update
    from portal.actor import Actor

    action = ActionFactory()
    grant("execute", action, users=[users["dev"]])
    blueprint_permissions_update(actor=Actor.system(), blueprint=Blueprint.objects.get(identifier="Service"),
                                 data={"entities": {"read": {"roles": []}}})
    preflight = run_preflight(user=users["dev"], action=action, entity_identifier="portal")
    assert preflight.entity is None
    assert [p.message for p in preflight.problems] == ["entity: entity 'portal' of blueprint 'Service' was not found"]
    assert run_preflight(user=users["admin"], action=action, entity_identifier="portal").entity.identifier == "portal"
    get(client, users["dev"], "/actions/deploy/run?entity=portal", status=404)


def test_an_entity_not_matching_the_condition_is_refused_by_both_alike(client, users):
    action = ActionFactory(condition=TIER_ONE)
    grant("execute", action, users=[users["dev"], users["pay"]])
    preflight = run_preflight(user=users["pay"], action=action, entity_identifier="checkout")
    (problem,) = preflight.problems
    assert problem.path == "entity"
    assert problem.message == "entity: entity 'checkout' does not match the condition of action 'deploy'"
    assert preflight.entity.identifier == "checkout"  # found: the page shows it, and refuses it
    page = shown_by_page(client, users["pay"], "/actions/deploy/run?entity=checkout", 422)
    assert page.text("form-error") == problem.message
    assert refused_by_service(users["pay"], action, "checkout").message == problem.message
    assert run_preflight(user=users["dev"], action=action, entity_identifier="portal").problems == ()


def test_a_create_action_takes_no_entity(users):
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env")
    grant("execute", action, users=[users["dev"]])
    (problem,) = run_preflight(user=users["dev"], action=action, entity_identifier="portal").problems
    assert (problem.path, problem.errors) == ("entity", (FieldError("entity", "action 'create_env' creates an entity and takes none"),))


# --- permission, the action's state, the backend ----------------------------------------------------------------

def test_no_permission_is_a_403_on_the_page_and_from_the_service(client, users):
    action = ActionFactory(permission_settings={"ownedByTeam": {"execute": True}})
    preflight = run_preflight(user=users["pay"], action=action, entity_identifier="portal")  # portal is platform's
    (problem,) = preflight.problems
    assert isinstance(problem, Forbidden) and problem.message == "You may not run action 'deploy' on entity 'portal'."
    page = shown_by_page(client, users["pay"], "/actions/deploy/run?entity=portal", 403)
    assert page.text("form-error") == problem.message
    assert refused_by_service(users["pay"], action, "portal").message == problem.message
    assert run_preflight(user=users["pay"], action=action, entity_identifier="checkout").problems == ()
    assert run_preflight(user=users["pay"], action=action, entity_identifier="checkout").entity_team_ids == frozenset(
        Entity.teams.through.objects.filter(entity__identifier="checkout").values_list("team_id", flat=True))


def test_an_unpublished_automation_has_both_problems_in_order(users):
    action = ActionFactory(publish=False, trigger_type="automation")
    problems = [p.message for p in run_preflight(user=users["admin"], action=action, entity_identifier="portal").problems]
    assert problems == ["action: 'deploy' is an automation; it cannot be run by hand", "action: 'deploy' is not published"]


def test_the_backend_refusal_comes_before_the_inputs(client, users, settings):
    settings.GITHUB_TOKEN, settings.GITHUB_APP_ID = "", ""
    action = ActionFactory(identifier="ship", operation="CREATE", blueprint="Env", required=["branch"],
                           invocation_method={"type": "GITHUB", "org": "acme", "repo": "svc", "workflow": "deploy.yml"})
    grant("execute", action, users=[users["dev"]])
    (problem,) = run_preflight(user=users["dev"], action=action).problems
    assert isinstance(problem, BackendNotConfigured) and problem.status == 409
    refusal = refused_by_service(users["dev"], action, properties={"nope": 1})  # bad inputs too: the backend wins
    assert refusal.message == problem.message
    assert shown_by_page(client, users["dev"], "/actions/ship/run", 409).text("form-error") == problem.message


def test_a_refused_permission_and_an_unavailable_backend_are_both_problems_the_permission_first(users, settings):
    settings.GITHUB_TOKEN, settings.GITHUB_APP_ID = "", ""
    action = ActionFactory(invocation_method={"type": "GITHUB", "org": "acme", "repo": "svc", "workflow": "deploy.yml"})
    problems = run_preflight(user=users["other"], action=action, entity_identifier="portal").problems
    assert [type(p) for p in problems] == [Forbidden, BackendNotConfigured]
    assert isinstance(refused_by_service(users["other"], action, "portal"), Forbidden)


def test_with_an_entity_picker_the_entity_is_the_forms_to_ask_for(client, users):
    action = ActionFactory(inputs={})
    grant("execute", action, users=[users["dev"]])
    page = get(client, users["dev"], "/actions/deploy/run")  # no ?entity=: the picker, not a refusal
    assert page.all("button", type="submit", **{"class": "primary"})
    client.force_login(users["dev"])
    response = client.post("/actions/deploy/run", {"entity": "nope"})
    assert response.status_code == 422
    assert Page(response.content.decode()).text("input-entity-error") == ("entity: entity 'nope' of blueprint "
                                                                          "'Service' was not found")


# --- the form puts each error where its path says ---------------------------------------------------------------

def test_show_error_puts_each_field_error_on_its_input_and_the_rest_on_top():
    from web.action_pages.actions import RunForm, _show_error

    fields = [SimpleNamespace(key="replicas", error=""), SimpleNamespace(key="config", error="")]
    entity_field = SimpleNamespace(key="entity", error="")
    form = RunForm(fields=fields, entity_field=entity_field)
    _show_error(form, ValidationFailed(errors=[
        FieldError("properties.replicas", "0 is less than the minimum of 1"),
        FieldError("properties.config.a[0]", "must not contain NUL characters"),
        FieldError("entity", "is required"),
        FieldError("run_as", "user 'x' does not exist"),
        FieldError("", "something about the whole request"),
    ]))
    assert form.status == 422
    assert [f.error for f in fields] == ["properties.replicas: 0 is less than the minimum of 1",
                                         "properties.config.a[0]: must not contain NUL characters"]
    assert entity_field.error == "entity: is required"
    assert form.top_error == "run_as: user 'x' does not exist; something about the whole request"
    assert form.has_errors


def test_show_error_puts_other_refusals_on_top_with_their_status():
    from web.action_pages.actions import RunForm, _show_error

    form = RunForm(fields=[SimpleNamespace(key="branch", error="")])
    _show_error(form, Forbidden("You may not run action 'deploy'."))
    assert (form.status, form.top_error, form.fields[0].error) == (403, "You may not run action 'deploy'.", "")
