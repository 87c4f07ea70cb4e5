"""/actions/ and /actions/<identifier>/run: the list of runnable actions and the form generated from userInputs."""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.choices import RunOrigin, RunStatus
from actions.models import Action, Run
from actions.services.actions import action_create
from audit.models import AuditEvent
from catalog.models import Entity
from portal.actor import Actor
from tests.factories import ActionFactory, EntityFactory, UserFactory
from tests.support.action_form import EVERY_INPUT, ORDER, TIER_ONE
from tests.support.pages import Page, get
from tests.support.runs import grant

pytestmark = pytest.mark.django_db

VALID = {"properties.name": "myenv", "properties.service": "portal", "properties.tier": "gold",
         "properties.replicas": "3", "properties.debug": "on"}


def field_order(page):
    return [a["name"].removeprefix("properties.") for t, a in page.elements
            if t in ("input", "select", "textarea") and a.get("name", "").startswith("properties.")
            and a.get("type") != "hidden"]


@pytest.fixture
def every_input(users):
    action = action_create(actor=Actor.system(), data={
        "identifier": "provision", "title": "Provision", "description": "Every kind of input.",
        "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "Env",
                    "userInputs": {"properties": EVERY_INPUT, "required": ["name", "service", "flavours"], "order": ORDER}},
        "invocationMethod": {"type": "WEBHOOK", "url": "http://127.0.0.1:9/hook"},
    })
    grant("execute", action, users=[users["dev"]])
    return action


# --- /actions/ ----------------------------------------------------------------------------------------------

def test_action_list_groups_runnable_actions_by_blueprint(client, users, every_input):
    day2 = ActionFactory(identifier="restart", inputs={})
    grant("execute", day2, users=[users["dev"]])
    ActionFactory(identifier="hidden_from_dev", operation="CREATE", blueprint="Env")  # no grant
    unpublished = ActionFactory(identifier="draft", operation="CREATE", blueprint="Env", publish=False)
    grant("execute", unpublished, users=[users["dev"]])
    page = get(client, users["dev"], "/actions/")
    headings = [page.text(a["id"]) for t, a in page.elements if t == "h2" and a.get("id", "").startswith("group-")]
    assert headings == ["Environment", "Service"]
    run_links = [a["href"] for a in page.all("a", **{"class": "button primary"})]
    assert run_links == ["/actions/provision/run"]  # CREATE actions have a Run button; DAY-2 ones say where to go
    assert "Runs on one Service: start it from the entity" in page.html
    assert "hidden_from_dev" not in page.html and "Draft" not in page.html


def test_action_list_query_count_is_constant(client, users, django_assert_max_num_queries):
    def count(n):
        for i in range(n):
            grant("execute", ActionFactory(identifier=f"a{Action.objects.count()}", operation="CREATE", blueprint="Env"), users=[users["dev"]])
        client.force_login(users["dev"])
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/actions/").status_code == 200
        return len(queries)

    assert count(1) == count(20)


# --- the form -----------------------------------------------------------------------------------------------

def test_every_input_type_renders_with_its_browser_checks(client, users, every_input):
    UserFactory(email="zoe@example.com")
    page = get(client, users["dev"], "/actions/provision/run")
    assert list(dict.fromkeys(field_order(page))) == ORDER  # userInputs.order; the hidden input is not rendered
    assert "secret_default" not in page.html

    name = page.attrs("input-p-name")
    assert (name["type"], name["pattern"], name["minlength"], name["maxlength"], name["placeholder"]) == (
        "text", "^[a-z][a-z0-9]*$", "3", "20", "myenv")
    assert "required" in name and name["aria-describedby"] == "input-p-name-help"
    assert page.text("input-p-name-help") == "Lowercase letters and digits."
    # required marks: a visible * and "(required)" for screen readers
    assert re.search(r'<label for="input-p-name">Name <span class="required" aria-hidden="true">\*</span>'
                     r'<span class="sr-only">\(required\)</span></label>', page.html)

    # enum with colours: radios with coloured labels, the default chosen; enum without: a select
    tier = page.all("input", type="radio", name="properties.tier")
    assert [(a["value"], "checked" in a) for a in tier] == [("gold", False), ("silver", True)]  # a default: no "None"
    assert '<span class="badge orange">gold</span>' in page.html and '<span class="badge lightGray">silver</span>' in page.html
    assert page.by_id["input-p-region"][0] == "select"
    assert [a["value"] for a in page.all("option") if a.get("value") in ("eu", "us")] == ["eu", "us"]

    replicas = page.attrs("input-p-replicas")
    assert (replicas["type"], replicas["min"], replicas["max"], replicas["value"]) == ("number", "1", "5", "2")
    assert page.by_id["input-p-size"][0] == "select"
    debug = page.attrs("input-p-debug")
    assert debug["type"] == "checkbox" and "checked" in debug
    assert page.by_id["input-p-config"][0] == "textarea"
    expires = page.attrs("input-p-expires")
    assert (expires["type"], expires["value"]) == ("datetime-local", "2030-01-02T01:04")  # shown in UTC
    assert page.attrs("input-p-docs")["type"] == "url" and page.attrs("input-p-contact")["type"] == "email"
    for key in ("notes", "readme", "values"):
        assert page.by_id[f"input-p-{key}"][0] == "textarea"
    assert "pattern" in page.attrs("input-p-ip4") and page.attrs("input-p-ip6")["placeholder"] == "e.g. 2001:db8::1"

    # pickers: users, teams, entities limited by blueprint + dataset, multi-selects for entity arrays
    assert page.by_id["input-p-owner"][0] == "select"
    assert "zoe@example.com" in [a.get("value") for a in page.all("option")]
    assert page.by_id["input-p-team"][0] == "select" and "platform" in page.html
    service_options = re.findall(r'<option value="([^"]*)"', page.html.split('id="input-p-service"')[1].split("</select>")[0])
    assert service_options == ["", "portal"]  # checkout is tier 2: not in the dataset
    services = page.attrs("input-p-services")
    assert "multiple" in services
    assert re.findall(r'<option value="([^"]*)"', page.html.split('id="input-p-services"')[1].split("</select>")[0]) == [
        "checkout", "portal"]
    assert page.attrs("input-p-service-filter")["form"] == "filter-form-service"
    assert [a["value"] for a in page.all("input", type="checkbox", name="properties.flavours")] == ["a", "b"]
    assert '<span class="badge green">a</span>' in page.html
    for key in ("tags", "ports"):
        assert page.by_id[f"input-p-{key}"][0] == "textarea" and "One value per line" in page.text(f"input-p-{key}-help")
    fixed = page.attrs("input-p-fixed")
    assert "disabled" in fixed and fixed["value"] == "locked-in"


def test_a_valid_submission_requests_the_run_and_shows_it(client, users, every_input, monkeypatch):
    from actions.tasks import run_dispatch_task

    monkeypatch.setattr(run_dispatch_task, "delay", lambda run_id: None)
    client.force_login(users["dev"])
    response = client.post("/actions/provision/run", {
        **VALID, "properties.size": "4", "properties.config": '{"a": 1}', "properties.expires": "2030-05-06T07:08",
        "properties.tags": "x\n\ny\n", "properties.ports": "80\n443", "properties.flavours": ["a", "b"],
        "properties.services": ["checkout", "portal"], "properties.owner": "manager@example.com",
        "properties.team": "platform", "properties.values": "a: 1\n", "properties.ip4": "10.0.0.1",
        "properties.fixed": "tampered",
    })
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.id}/"
    assert run.origin == RunOrigin.UI and run.requested_by == users["dev"] and run.status == RunStatus.IN_PROGRESS
    assert run.properties == {
        "name": "myenv", "service": "portal", "tier": "gold", "replicas": 3, "debug": True, "size": 4, "config": {"a": 1},
        "expires": "2030-05-06T07:08:00.000Z", "tags": ["x", "y"], "ports": [80, 443], "flavours": ["a", "b"],
        "services": ["checkout", "portal"], "owner": "manager@example.com", "team": "platform", "values": "a: 1\n",
        "ip4": "10.0.0.1", "secret_default": "kept", "fixed": "locked-in",  # hidden and disabled inputs keep their defaults
    }
    assert AuditEvent.objects.get(run_id=run.id, verb="actions.run.created").origin == "UI"
    follow = client.get(response["Location"])
    assert "Provision: run " in follow.content.decode()  # the message after the redirect


@pytest.mark.parametrize("posted, key, message", [
    ({"properties.name": "Bad Name"}, "name", "properties.name: 'Bad Name' does not match '^[a-z][a-z0-9]*$'"),
    ({"properties.service": "checkout"}, "service", "properties.service: entity 'checkout' does not match the input's dataset"),
    ({"properties.owner": "ghost@example.com"}, "owner", None),  # not an option: the select keeps it, the server says why
    ({"properties.values": "a: [1"}, "values", "properties.values: is not valid YAML"),
    ({"properties.replicas": "9"}, "replicas", "properties.replicas: 9 is greater than the maximum of 5"),
    ({"properties.replicas": "many"}, "replicas", "properties.replicas: 'many' is not a number"),
    ({"properties.config": "{nope"}, "config", "properties.config: is not valid JSON"),
    # what PostgreSQL's jsonb cannot store is refused at the field, not by the database
    ({"properties.config": '{"a": NaN}'}, "config", "properties.config: is not valid JSON (NaN is not a JSON value"),
    ({"properties.config": '{"n": 1e999}'}, "config", "properties.config.n: is too large for a number"),
    ({"properties.config": '{"a": ["\\u0000"]}'}, "config", "properties.config.a[0]: must not contain NUL characters"),
    ({"properties.flavours": ""}, "flavours", "properties.flavours: is required"),
])
def test_server_errors_show_at_the_field_with_the_input_kept(client, users, every_input, posted, key, message):
    client.force_login(users["dev"])
    data = {**VALID, "properties.flavours": "a", "properties.notes": "line one\nline two", **posted}
    response = client.post("/actions/provision/run", data)
    assert response.status_code == 422
    page = Page(response.content.decode())
    error = page.text(f"input-p-{key}-error")
    assert error.startswith(message or f"properties.{key}: ")
    assert f"input-p-{key}-error" in page.attrs(f"input-p-{key}")["aria-describedby"]
    assert page.text("form-error") == "The run was not requested: correct the inputs marked below."
    # what the user typed is still there
    assert page.attrs("input-p-name")["value"] == data["properties.name"]
    assert page.text("input-p-notes") == "line one line two"
    assert [a["value"] for a in page.all("input", type="radio", name="properties.tier") if "checked" in a] == ["gold"]
    if key == "replicas":
        assert page.attrs("input-p-replicas")["value"] == posted["properties.replicas"]
    assert not Run.objects.exists()


def test_a_quota_refusal_shows_at_the_top(client, users):
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env", inputs={"branch": {"type": "string"}},
                         quota={"perUser": {"limit": 1, "period": "day"}})
    grant("execute", action, users=[users["dev"]])
    client.force_login(users["dev"])
    assert client.post("/actions/create_env/run", {"properties.branch": "one"}).status_code == 302
    response = client.post("/actions/create_env/run", {"properties.branch": "two"})
    assert response.status_code == 429
    page = Page(response.content.decode())
    assert page.text("form-error").startswith("quota.perUser: action 'create_env' allows at most 1 run per user per day")
    assert page.attrs("input-p-branch")["value"] == "two"
    assert "At most 1 run per person per day." in page.html


@pytest.mark.parametrize("when_exceeded, over", [
    ("requireApproval", "You have 1, so this one will wait for an approval."),
    (None, "You have 1, so a new run is refused until one of them is deleted."),
])
def test_the_form_tells_how_many_live_entities_the_user_has(client, users, when_exceeded, over):

    quota = {"liveEntitiesPerUser": 1} | ({"whenExceeded": when_exceeded} if when_exceeded else {})
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env", inputs={"branch": {"type": "string"}},
                         quota=quota)
    grant("execute", action, users=[users["dev"]])
    assert "At most 1 live at a time per person. You have 0." in get(client, users["dev"], "/actions/create_env/run").html
    EntityFactory(blueprint="Env", identifier="mine")
    Entity.objects.filter(identifier="mine").update(created_by=users["dev"].email)  # as if the developer made it
    assert f"At most 1 live at a time per person. {over}" in get(client, users["dev"], "/actions/create_env/run").html


def test_an_action_whose_backend_is_not_configured_says_so_instead_of_a_form(client, users, settings):
    settings.GITHUB_TOKEN, settings.GITHUB_APP_ID = "", ""
    action = ActionFactory(identifier="ship", operation="CREATE", blueprint="Env")
    action.invocation_method = {"type": "GITHUB", "org": "acme", "repo": "svc", "workflow": "deploy.yml"}
    action.save()
    grant("execute", action, users=[users["dev"]])
    client.force_login(users["dev"])
    response = client.get("/actions/ship/run")
    assert response.status_code == 409
    page = Page(response.content.decode())
    assert page.text("form-error") == ("action: 'ship' is off until its backend is set up. GitHub is not configured: "
                                       "set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY.")
    assert page.all("button", type="submit", **{"class": "primary"}) == []  # no Run button (Sign out stays)
    assert client.post("/actions/ship/run", {"properties.branch": "x"}).status_code == 409 and not Run.objects.exists()
    settings.GITHUB_TOKEN = "ghp_test"
    assert get(client, users["dev"], "/actions/ship/run").all("button", type="submit", **{"class": "primary"})


def test_no_form_for_an_action_the_user_may_not_run(client, users):
    action = ActionFactory(identifier="create_env", operation="CREATE", blueprint="Env")
    grant("execute", action, users=[users["dev"]])
    get(client, users["other"], "/actions/create_env/run", status=404)  # not granted: as if it did not exist
    client.force_login(users["other"])
    assert client.post("/actions/create_env/run", {"properties.branch": "x"}).status_code == 404
    draft = ActionFactory(identifier="draft", operation="CREATE", blueprint="Env", publish=False)
    grant("execute", draft, users=[users["dev"]])
    get(client, users["dev"], "/actions/draft/run", status=404)
    get(client, users["admin"], "/actions/draft/run", status=404)  # unpublished: not offered, not even to admins
    assert not Run.objects.exists()


def test_owned_by_team_execute_needs_an_entity_of_the_team(client, users):
    action = ActionFactory(inputs={}, permission_settings={"ownedByTeam": {"execute": True}})
    page = get(client, users["pay"], "/actions/deploy/run?entity=portal", status=403)  # portal is platform's
    assert page.text("form-error") == "You may not run action 'deploy' on entity 'portal'."
    assert not page.all("button", type="submit", **{"class": "primary"})
    get(client, users["pay"], "/actions/deploy/run?entity=checkout")
    client.force_login(users["pay"])
    assert client.post("/actions/deploy/run?entity=portal", {"entity": "portal"}).status_code == 403
    assert not Run.objects.exists() and action.runs.count() == 0


def test_day2_form_shows_its_entity_and_runs_on_it(client, users, monkeypatch):
    from actions.tasks import run_dispatch_task

    monkeypatch.setattr(run_dispatch_task, "delay", lambda run_id: None)
    action = ActionFactory(inputs={"branch": {"type": "string", "default": "main"}}, condition=TIER_ONE)
    grant("execute", action, users=[users["dev"]])
    page = get(client, users["dev"], "/actions/deploy/run?entity=portal")
    assert page.text("target-title") == "Runs on"
    assert '<a href="/catalog/Service/portal/">portal</a>' in page.html
    (form,) = page.all("form", method="post", **{"class": "card action-form"})
    assert form["action"] == "/actions/deploy/run?entity=portal"
    assert page.all("input", type="hidden", name="entity")[0]["value"] == "portal"
    get(client, users["dev"], "/actions/deploy/run?entity=nope", status=404)
    refused = get(client, users["dev"], "/actions/deploy/run?entity=checkout", status=422)  # not matching the condition
    assert "does not match the condition" in refused.text("form-error")

    client.force_login(users["dev"])
    response = client.post("/actions/deploy/run?entity=portal", {"entity": "portal", "properties.branch": "hotfix"})
    run = Run.objects.get()
    assert response.status_code == 302 and run.entity_identifier == "portal" and run.properties == {"branch": "hotfix"}


def test_day2_form_without_an_entity_offers_a_picker(client, users):
    action = ActionFactory(inputs={}, condition=TIER_ONE)
    grant("execute", action, users=[users["dev"]])
    page = get(client, users["dev"], "/actions/deploy/run")
    options = re.findall(r'<option value="([^"]*)"', page.html.split('id="input-entity"')[1].split("</select>")[0])
    assert options == ["", "portal"]
    client.force_login(users["dev"])
    response = client.post("/actions/deploy/run", {"entity": ""})
    assert response.status_code == 422
    assert Page(response.content.decode()).text("input-entity-error") == "entity: is required by DAY-2 action 'deploy'"


def test_entity_picker_filter_narrows_the_choices(client, users, every_input):
    from catalog.models import Blueprint

    service = Blueprint.objects.get(identifier="Service")
    for name in ("billing", "bidding"):
        EntityFactory(blueprint=service, identifier=name, properties={"tier": "2"})
    page = get(client, users["dev"], "/actions/provision/run?filter.services=bi")  # without JavaScript: a GET
    options = re.findall(r'<option value="([^"]*)"', page.html.split('id="input-p-services"')[1].split("</select>")[0])
    assert options == ["bidding", "billing"]
    assert page.attrs("input-p-services-filter")["value"] == "bi"
    # the partial the script fetches keeps what was chosen
    partial = get(client, users["dev"], "/actions/provision/run/options?input=services&filter.services=bill"
                                        "&properties.services=portal")
    assert re.findall(r'<option value="([^"]*)"( selected)?', partial.html) == [("billing", ""), ("portal", " selected")]
    get(client, users["dev"], "/actions/provision/run/options?input=name", status=404)


@pytest.mark.parametrize("pattern, html, samples", [
    ("^[a-z0-9][a-z0-9-]{0,39}$", r"^[a-z0-9][a-z0-9\-]{0,39}$", ["feature-a", "a-", "Feature", "-a", "a_b"]),
    ("^[\\w.-]+@example\\.com$", r"^[\w\.\-]+@example\.com$", ["a.b-c@example.com", "a b@example.com"]),
    ("^[^()|]+$", r"^[^\(\)\|]+$", ["plain", "(x)", "a|b"]),
    ("[a-z-_]", r"[\s\S]*(?:[a-z\-_])[\s\S]*", ["-", "A_", "ABC"]),
    ("^[A-Z][a-z]*$", "^[A-Z][a-z]*$", ["Abc", "abc"]),
])
def test_html_patterns_are_escaped_for_the_browsers_v_flag(pattern, html, samples):
    """Browsers compile `pattern` with the `v` flag, which rejects `[a-z-]` that JSON Schema accepts; the form
    escapes the literal characters of classes so the pattern still works, matching exactly what it did."""
    from web.action_pages.forms import _html_pattern

    assert _html_pattern(pattern) == html
    for sample in samples:
        assert bool(re.fullmatch(html, sample)) == bool(re.search(pattern, sample)), sample
