"""actions/templating.py: `{{ jq }}` rendering over a run's context."""
import time

import pytest
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Action, Run
from actions.secrets import secret_set
from actions.templating import TemplateError, render_template, run_template_context, template_parts
from catalog.models import Blueprint
from portal.actor import Actor
from tests.factories import BlueprintFactory, EntityFactory, RunFactory, UserFactory

CONTEXT = {"inputs": {"branch": "main", "replicas": 3, "tags": ["a", "b"], "extra": {"x": 1, "y": "two"}, "none": None},
           "secrets": {"TOKEN": "s3cr3t"}}


def test_whole_string_template_keeps_the_json_type():
    assert render_template("{{ .inputs.replicas }}", CONTEXT) == 3
    assert render_template("{{ .inputs.tags }}", CONTEXT) == ["a", "b"]
    assert render_template("{{.inputs.extra}}", CONTEXT) == {"x": 1, "y": "two"}
    assert render_template("{{ .inputs.branch == \"main\" }}", CONTEXT) is True


def test_parts_among_text_are_stringified():
    assert render_template("deploy {{ .inputs.branch }} x{{ .inputs.replicas }}", CONTEXT) == "deploy main x3"
    assert render_template("{{ .inputs.tags }}/{{ .inputs.extra }}", CONTEXT) == '["a","b"]/{"x":1,"y":"two"}'
    assert render_template("v={{ .inputs.none }}", CONTEXT) == "v=null"


def test_braces_inside_an_expression_do_not_close_it():
    assert template_parts("{{ {a: {b: 1}} }}") == [(" {a: {b: 1}} ",)]
    assert render_template("{{ {a: {b: .inputs.replicas}} }}", CONTEXT) == {"a": {"b": 3}}
    assert render_template('{{ "}}" }}', CONTEXT) == "}}"


def test_text_without_templates_and_unclosed_braces_stay_as_they_are():
    assert render_template("plain {{ not closed", CONTEXT) == "plain {{ not closed"
    assert render_template(["x", 1, True, None], CONTEXT) == ["x", 1, True, None]


def test_spread_value_merges_into_the_parent_in_order():
    template = {"first": 0, "{{ spreadValue() }}": "{{ .inputs.extra }}", "y": "override"}
    rendered = render_template(template, CONTEXT)
    assert rendered == {"first": 0, "x": 1, "y": "override"}
    assert list(rendered) == ["first", "x", "y"]


def test_spread_value_needs_an_object():
    with pytest.raises(TemplateError) as info:
        render_template({"body": {"{{ spreadValue() }}": "{{ .inputs.tags }}"}}, CONTEXT)
    assert info.value.path == 'body["{{ spreadValue() }}"]'
    assert "needs an object" in str(info.value)


def test_pairs_rendering_to_null_are_dropped():
    rendered = render_template({"keep": "{{ .inputs.branch }}", "gone": "{{ .inputs.missing }}", "also": None,
                                "list": ["{{ .inputs.missing }}"]}, CONTEXT)
    assert rendered == {"keep": "main", "list": [None]}


def test_a_jq_error_names_the_template_path():
    with pytest.raises(TemplateError) as info:
        render_template({"body": {"items": [{"message": "{{ .inputs.branch | tonumber }}"}]}}, CONTEXT)
    assert info.value.path == "body.items[0].message"
    assert str(info.value).startswith("body.items[0].message: the jq expression '.inputs.branch | tonumber' failed: ")


def test_a_looping_expression_times_out_with_its_path(settings):
    settings.JQ_TIMEOUT_SECONDS = 0.5
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        render_template({"message": "{{ until(false; .) }}"}, CONTEXT, "body")
    assert time.monotonic() - started < 3
    assert info.value.path == "body.message" and "did not finish in time" in str(info.value)


def test_the_environment_is_not_reachable():
    with pytest.raises(TemplateError):
        render_template("{{ $ENV.PATH }}", CONTEXT)


@pytest.mark.django_db
def test_run_template_context():
    system = Actor.system()
    BlueprintFactory(identifier="Service", title="Service",
                     schema={"properties": {"tier": {"type": "string"}}})
    EntityFactory(blueprint="Service", identifier="portal", title="Portal", properties={"tier": "1"})
    user = UserFactory(email="dev@example.com")
    user.first_name, user.last_name = "Dee", "Veloper"
    user.save()
    secret_set(actor=system, name="API_TOKEN", value="t0ken")
    action = Action.objects.create(identifier="deploy", title="Deploy", trigger_type="self-service", operation="DAY-2",
                                   blueprint_identifier="Service", invocation_method={"type": "WEBHOOK", "url": "http://x"})
    run = RunFactory(id="r_ctx", action=action, status=RunStatus.IN_PROGRESS, requested_by=user, origin="UI",
                             properties={"branch": "main"}, entity_id=Blueprint.objects.get().entities.get().pk,
                             entity_identifier="portal", started_at=timezone.now())
    run = Run.objects.select_related("action", "requested_by", "entity__blueprint").get(pk=run.pk)
    context = run_template_context(run)
    assert context["inputs"] == {"branch": "main"}
    assert context["trigger"]["by"] == {"user": {"email": "dev@example.com", "firstName": "Dee", "lastName": "Veloper"}}
    assert context["trigger"]["origin"] == "UI" and context["trigger"]["operation"] == "DAY-2"
    assert context["trigger"]["at"].endswith("Z")
    assert context["event"] is None
    assert context["entity"]["identifier"] == "portal" and context["entity"]["properties"] == {"tier": "1"}
    assert context["action"] == {"identifier": "deploy", "blueprint": "Service"}
    assert context["run"] == {"id": "r_ctx"}
    assert context["secrets"] == {"API_TOKEN": "t0ken"}
