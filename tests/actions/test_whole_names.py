"""Names checked with a regular expression are checked whole: Python's `$` also matches before a final
newline, so `re.match("^[A-Za-z]+$", "TOKEN\\n")` passes; keys, action identifiers, input keys and secret
names use fullmatch."""
import pytest

from actions.definitions import action_definition_clean
from actions.models import Secret
from actions.secrets import secret_set
from actions.templating import TemplateError, render_template
from catalog.identifiers import check_key
from portal.errors import ValidationFailed
from tests.support.action_definitions import INPUTS, _set, with_change

pytestmark = pytest.mark.django_db


def test_a_key_with_a_trailing_newline_is_refused():
    check_key("replicas", "key")
    with pytest.raises(ValidationFailed, match=r"^key: 'replicas\\n' is not a valid key"):
        check_key("replicas\n", "key")


@pytest.mark.parametrize("change, message", [
    (_set(("identifier",), "spin_up\n"), "identifier: 'spin_up\\n' is not a valid key"),
    (_set((*INPUTS, "size\n"), {"type": "string"}), "trigger.userInputs.properties.size\n: 'size\\n' is not a valid key"),
])
def test_action_identifiers_and_input_keys_with_a_trailing_newline_are_refused(blueprints, change, message):
    with pytest.raises(ValidationFailed) as info:
        action_definition_clean(with_change(change), blueprints=blueprints)
    assert info.value.message.startswith(message), info.value.message


def test_a_secret_name_with_a_trailing_newline_is_refused(system):
    with pytest.raises(ValidationFailed, match="^name: must start with a letter"):
        secret_set(actor=system, name="TOKEN\n", value="x")
    assert not Secret.objects.exists()


def test_a_template_key_with_a_trailing_newline_is_quoted_in_error_paths():
    with pytest.raises(TemplateError) as info:
        render_template({"body": {"note\n": "{{ 1 | tostring | tonumber | error }}"}}, {})
    assert info.value.path == 'body["note\\n"]'
