"""actions/templating.py TemplateRenderer: what is sent holds the secrets, what is stored holds "[redacted]" in
every place rendered from them, however transformed."""
import base64
import json
from urllib.parse import quote

import pytest

from actions.credentials import write_only
from actions.templating import TemplateError, TemplateRenderer

SECRET = "s3cr3t-Value-42"
CONTEXT = {"inputs": {"branch": "main"}, "run": {"id": "r_1"}, "secrets": {"TOKEN": SECRET, "OTHER": "other-value-9"}}
B64 = base64.b64encode(SECRET.encode()).decode()


def render(template, *keys, write_only=None):
    renderer = TemplateRenderer(CONTEXT, write_only=write_only)
    return renderer.render(template, *keys), renderer.revealed


@pytest.mark.parametrize("template, sent, stored", [
    ("{{ .secrets.TOKEN | @base64 }}", B64, "[redacted]"),
    ("Bearer {{ .secrets.TOKEN | ascii_downcase }}", f"Bearer {SECRET.lower()}", "Bearer [redacted]"),
    ('{{ "Bearer " + .secrets.TOKEN }}', f"Bearer {SECRET}", "[redacted]"),
    ("{{ .secrets.TOKEN | @uri }}", quote(SECRET, safe=""), "[redacted]"),
    ("{{ .secrets.TOKEN | @json }}", json.dumps(SECRET), "[redacted]"),
    ('{{ .secrets.TOKEN | split("-") }}', SECRET.split("-"), "[redacted]"),
    ('x={{ .secrets.TOKEN | split("-") | .[1] }}', f"x={SECRET.split('-')[1]}", "x=[redacted]"),
    # Reads that never spell the word: caught because the result changes with the secrets' values.
    ('{{ .["sec" + "rets"].TOKEN | @base64 }}', B64, "[redacted]"),
    ('{{ [.[]] | map(objects | .TOKEN? // empty) | first }}', SECRET, "[redacted]"),
    ("{{ tojson }}", json.dumps(CONTEXT, separators=(",", ":")), "[redacted]"),
    # Results that do not depend on the secrets stay as they are.
    ("{{ .inputs.branch }}/{{ .run.id }}", "main/r_1", "main/r_1"),
    ("{{ keys | length }}", 3, 3),
])
def test_every_part_rendered_from_a_secret_is_stored_redacted(template, sent, stored):
    rendered, _ = render(template)
    assert rendered.value == sent
    assert rendered.stored == stored


def test_objects_lists_and_spreads_keep_their_shape():
    template = {"auth": {"{{ spreadValue() }}": "{{ .secrets }}"}, "list": ["{{ .secrets.OTHER }}", "{{ .run.id }}"],
                "gone": "{{ .secrets.MISSING }}", "branch": "{{ .inputs.branch }}"}
    rendered, _ = render(template, "body")
    assert rendered.value == {"auth": CONTEXT["secrets"], "list": ["other-value-9", "r_1"], "branch": "main"}
    assert rendered.stored == {"auth": {"TOKEN": "[redacted]", "OTHER": "[redacted]"}, "list": ["[redacted]", "r_1"],
                               "branch": "main"}


def test_text_rendered_from_secrets_is_kept_for_scrubbing_echoes():
    _, revealed = render({"a": "Basic {{ .secrets.TOKEN | @base64 }}", "b": "{{ .secrets.TOKEN | length }}",
                          "c": "{{ .inputs.branch }}"})
    assert revealed == [B64]  # `15` is too short to scrub anywhere; `main` came from no secret


def test_literal_credentials_are_stored_redacted_where_write_only_says():
    headers = {"Authorization": "Bearer literal-abc123", "X-Run": "{{ .run.id }}", "Content-Type": "application/json"}
    rendered, revealed = render(headers, "headers", write_only=write_only)
    assert rendered.value == headers | {"X-Run": "r_1"}
    assert rendered.stored == {"Authorization": "[redacted]", "X-Run": "r_1", "Content-Type": "application/json"}
    assert revealed == ["Bearer literal-abc123"]  # an echo of it is scrubbed too


@pytest.mark.parametrize("template", ["{{ .secrets.TOKEN | tonumber }}", '{{ .["sec" + "rets"].TOKEN | tonumber }}'])
def test_a_failing_expression_over_secrets_does_not_quote_them(template):
    with pytest.raises(TemplateError) as info:
        render({"value": template}, "body")
    assert info.value.path == "body.value"
    assert SECRET not in str(info.value) and "its message is withheld" in str(info.value)


def test_a_failing_expression_over_other_data_keeps_jqs_message():
    with pytest.raises(TemplateError) as info:
        render("{{ .inputs.branch | tonumber }}", "url")
    assert "main" in str(info.value) and "withheld" not in str(info.value)
