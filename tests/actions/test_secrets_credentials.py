"""actions/credentials.py: literal credentials in an invocation method are write-only in the API (members and
admins), the admin and audit diffs; sending the mask back keeps the stored value, a new value replaces it."""
import copy
import json

import pytest
from django.urls import reverse

from actions.credentials import invocation_masked, invocation_unmasked
from actions.models import Action
from actions.services.actions import action_create
from audit import choices as audit_choices
from audit.models import AuditEvent
from portal.actor import Actor
from portal.errors import ValidationFailed

pytestmark = pytest.mark.django_db
LITERAL = "Bearer literal-abc123-XYZ"
PASSWORD = "hunter2-literal-pw"
MASKED_HEADERS = {"Authorization": "[redacted]", "X-Api-Key": "[redacted]", "X-Run": "{{ .run.id }}",
                  "Content-Type": "application/json"}


def notify(url="https://hooks.example.com/deploy"):
    return {
        "identifier": "notify", "title": "Notify",
        "trigger": {"type": "self-service", "operation": "CREATE", "blueprintIdentifier": "Service",
                    "userInputs": {"properties": {}, "required": []}},
        "invocationMethod": {
            "type": "WEBHOOK", "url": url,
            "headers": {"Authorization": LITERAL, "X-Api-Key": "{{ .secrets.API_KEY }}", "X-Run": "{{ .run.id }}",
                        "Content-Type": "application/json"},
            "body": {"password": PASSWORD, "runId": "{{ .run.id }}", "nested": [{"clientSecret": "cs-literal-1"}]},
        },
    }


def stored():
    return Action.objects.get(identifier="notify").invocation


def audit_text():
    return json.dumps([[e.diff, e.context, e.message] for e in AuditEvent.objects.all()])


@pytest.mark.parametrize("invocation, masked", [
    ({"type": "WEBHOOK", "headers": {"Accept": "text/plain", "Cookie": "{{ .inputs.cookie }}", "X-Token": "{{ .secrets.T }}",
                                     "X-Static": '{{ "abc" }}', "X-Blank": " {{ .run.id }} "}},
     {"type": "WEBHOOK", "headers": {"Accept": "text/plain", "Cookie": "{{ .inputs.cookie }}", "X-Token": "[redacted]",
                                     "X-Static": "[redacted]", "X-Blank": " {{ .run.id }} "}}),
    ({"type": "GITHUB", "org": "acme", "workflowInputs": {"deploy_token": "ghp_literal", "replicas": "3", "flag": True}},
     {"type": "GITHUB", "org": "acme", "workflowInputs": {"deploy_token": "[redacted]", "replicas": "3", "flag": True}}),
    ({"type": "GITLAB", "pipelineVariables": {"DB_PASSWORD": "pw", "AWS_ACCESS_KEY_ID": "AKIA", "ENV": "prod"}},
     {"type": "GITLAB", "pipelineVariables": {"DB_PASSWORD": "[redacted]", "AWS_ACCESS_KEY_ID": "[redacted]", "ENV": "prod"}}),
])
def test_masked_places(invocation, masked):
    assert invocation_masked(invocation) == masked
    assert invocation_unmasked(masked, invocation) == invocation


def test_a_mask_with_no_stored_value_behind_it_is_refused():
    stored_method = {"type": "WEBHOOK", "headers": {"Authorization": LITERAL}}
    with pytest.raises(ValidationFailed) as info:
        invocation_unmasked({"type": "WEBHOOK", "headers": {"X-Api-Key": "[redacted]"}}, stored_method)
    assert info.value.message.startswith('invocationMethod.headers["X-Api-Key"]: \'[redacted]\' stands for a stored value')
    with pytest.raises(ValidationFailed):
        invocation_unmasked({"type": "WEBHOOK", "headers": {"Authorization": "[redacted]"}}, None)


def test_members_and_admins_read_the_mask(admin_api, member_api, blueprints):
    response = admin_api.post("/v1/actions", notify(), format="json")
    assert response.status_code == 201, response.json()
    admin_api.patch("/v1/actions/notify/permissions", {"execute": {"roles": ["Member"]}}, format="json")
    for api in (member_api, admin_api):
        for body in (response.content, api.get("/v1/actions").content, api.get("/v1/actions/notify").content):
            assert LITERAL.encode() not in body and PASSWORD.encode() not in body and b"cs-literal-1" not in body
    method = member_api.get("/v1/actions/notify").json()["action"]["invocationMethod"]
    assert method["headers"] == MASKED_HEADERS
    assert method["body"] == {"password": "[redacted]", "runId": "{{ .run.id }}", "nested": [{"clientSecret": "[redacted]"}]}
    assert stored()["headers"]["Authorization"] == LITERAL  # written, kept, never read back


def test_get_then_put_keeps_the_value_and_a_new_value_replaces_it(admin_api, blueprints):
    admin_api.post("/v1/actions", notify(), format="json")
    fetched = admin_api.get("/v1/actions/notify").json()["action"]
    response = admin_api.put("/v1/actions/notify", {**fetched, "title": "Notify the deployer"}, format="json")
    assert response.status_code == 200, response.json()
    assert stored() == notify()["invocationMethod"] | {"agent": False, "synchronized": False, "method": "POST"}
    [unchanged] = AuditEvent.objects.filter(verb=audit_choices.ACTION_UPDATED)
    assert unchanged.message == ""

    rotated = copy.deepcopy(fetched)
    rotated["invocationMethod"]["headers"]["Authorization"] = "Bearer rotated-value-999"
    assert admin_api.put("/v1/actions/notify", rotated, format="json").status_code == 200
    assert stored()["headers"]["Authorization"] == "Bearer rotated-value-999"
    assert stored()["body"]["password"] == PASSWORD
    replaced = AuditEvent.objects.filter(verb=audit_choices.ACTION_UPDATED).latest("id")
    assert replaced.message == "Write-only values changed: invocationMethod.headers.Authorization."

    guessed = copy.deepcopy(fetched)
    guessed["invocationMethod"]["headers"]["X-Other-Token"] = "[redacted]"
    response = admin_api.put("/v1/actions/notify", guessed, format="json")
    assert response.status_code == 422
    assert response.json()["message"].startswith('invocationMethod.headers["X-Other-Token"]: ')
    copied = admin_api.post("/v1/actions", {**fetched, "identifier": "notify_copy"}, format="json")
    assert copied.status_code == 422 and "invocationMethod.headers.Authorization" in copied.json()["message"]


def test_audit_diffs_never_hold_the_literals(admin_api, blueprints):
    admin_api.post("/v1/actions", notify(), format="json")
    changed = notify()
    changed["invocationMethod"]["headers"]["Authorization"] = "Bearer rotated-value-999"
    admin_api.put("/v1/actions/notify", changed, format="json")
    admin_api.delete("/v1/actions/notify")
    verbs = [e.verb for e in AuditEvent.objects.filter(resource_type="action").order_by("id")]
    assert verbs == [audit_choices.ACTION_CREATED, audit_choices.ACTION_UPDATED, audit_choices.ACTION_DELETED]
    created = AuditEvent.objects.get(verb=audit_choices.ACTION_CREATED)
    assert created.diff["after"]["invocationMethod"]["headers"] == MASKED_HEADERS
    text = audit_text()
    for literal in (LITERAL, "rotated-value-999", PASSWORD, "cs-literal-1"):
        assert literal not in text


def test_the_admin_shows_the_mask_and_a_save_keeps_the_value(client, admin_user, blueprints):
    action_create(actor=Actor.system(), data=notify())
    client.force_login(admin_user)
    url = reverse("admin:actions_action_change", args=[Action.objects.get(identifier="notify").pk])
    page = client.get(url)
    html = page.content.decode()
    assert LITERAL not in html and PASSWORD not in html and "cs-literal-1" not in html
    assert "[redacted]" in html
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data = {name: json.dumps(value) if isinstance(value, (dict, list, bool)) else (value or "") for name, value in data.items()}
    data["publish"] = "on"
    data["title"] = "Notify (edited in the admin)"

    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Action.objects.get(identifier="notify").title == "Notify (edited in the admin)"
    assert stored()["headers"]["Authorization"] == LITERAL and stored()["body"]["password"] == PASSWORD

    method = json.loads(data["invocation_method"])
    method["body"]["password"] = "new-admin-password"
    response = client.post(url, {**data, "invocation_method": json.dumps(method)})
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert stored()["body"]["password"] == "new-admin-password" and stored()["headers"]["Authorization"] == LITERAL
    assert "new-admin-password" not in audit_text() and LITERAL not in audit_text()


@pytest.mark.parametrize("url, masked", [
    ("https://ci:url-pw-123@hooks.example.com/deploy", True),
    ("https://hooks.example.com/deploy?token=url-tok-123&env=prod", True),
    ("https://hooks.example.com/deploy?X-Api-Key=url-tok-123", True),
    ("https://hooks.slack.com/services/T000/B000/url-slack-123", True),
    ("https://hooks.example.com/deploy?env=prod", False),
    ("https://ci@hooks.example.com/deploy", False),  # a user name alone is no credential
    ("{{ .inputs.url }}", False),
])
def test_a_url_that_carries_a_credential_is_write_only(admin_api, member_api, blueprints, url, masked):
    definition = notify(url)
    definition["approvalNotification"] = {"type": "webhook", "url": url if "{{" not in url else "https://a.example.com/"}
    response = admin_api.post("/v1/actions", definition, format="json")
    assert response.status_code == 201, response.json()
    admin_api.patch("/v1/actions/notify/permissions", {"execute": {"roles": ["Member"]}}, format="json")
    shown = member_api.get("/v1/actions/notify").json()["action"]
    assert (shown["invocationMethod"]["url"] == "[redacted]") is masked
    if "{{" not in url:
        assert (shown["approvalNotification"]["url"] == "[redacted]") is masked
    if masked:
        for body in (response.content, member_api.get("/v1/actions").content, admin_api.get("/v1/actions/notify").content,
                     audit_text().encode()):
            assert b"url-pw-123" not in body and b"url-tok-123" not in body and b"url-slack-123" not in body
        # GET-then-PUT keeps both stored URLs.
        assert admin_api.put("/v1/actions/notify", admin_api.get("/v1/actions/notify").json()["action"],
                             format="json").status_code == 200
        action = Action.objects.get(identifier="notify")
        assert action.invocation["url"] == url and action.approval_notification["url"] == url


def test_a_changed_notification_url_is_named_in_the_audit_message(admin_api, blueprints):
    definition = {**notify(), "approvalNotification": {"type": "webhook", "url": "https://a.example.com/?token=one-111"}}
    admin_api.post("/v1/actions", definition, format="json")
    fetched = admin_api.get("/v1/actions/notify").json()["action"]
    fetched["approvalNotification"]["url"] = "https://a.example.com/?token=two-222"
    assert admin_api.put("/v1/actions/notify", fetched, format="json").status_code == 200
    updated = AuditEvent.objects.filter(verb=audit_choices.ACTION_UPDATED).latest("id")
    assert updated.message == "Write-only values changed: approvalNotification.url."
    assert "one-111" not in audit_text() and "two-222" not in audit_text()
