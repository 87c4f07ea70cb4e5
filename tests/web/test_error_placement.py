"""Pages put each error on the control its path names, reading `exc.errors` (paths as data), never the text: the
run form, the table filters, the lock forms, the deployments filters and the saved-view name."""
import pytest

from portal.errors import Conflict, FieldError, ValidationFailed
from web.action_pages.deployments import _field_of
from web.action_pages.forms import InputField, attach_run_errors
from web.action_pages.locks import LockForm, _place
from web.catalog_pages.filters import FilterControl, attach_errors


def _input(key):
    return InputField(key=key, definition={"type": "string"}, kind="text", label=key)


def test_run_errors_land_on_their_inputs_and_the_entity_picker():
    branch, replicas, entity = _input("branch"), _input("replicas"), _input("entity")
    exc = ValidationFailed(errors=[
        FieldError("properties.replicas", "9 is greater than the maximum of 5"),
        FieldError("properties.branch", "is required; properties.replicas: is text, not a path"),
        FieldError("properties.replicas", "is odd"),
        FieldError("entity", "is required by DAY-2 action 'deploy'"),
    ])
    assert attach_run_errors(exc, [branch, replicas], entity_field=entity) == ""
    assert branch.error == "properties.branch: is required; properties.replicas: is text, not a path"
    assert replicas.error == "properties.replicas: 9 is greater than the maximum of 5; properties.replicas: is odd"
    assert entity.error == "entity: is required by DAY-2 action 'deploy'"


def test_run_errors_no_input_holds_go_to_the_top():
    branch = _input("branch")
    exc = ValidationFailed(errors=[FieldError("properties.gone", "is not an input of this action"),
                                   FieldError("entity", "must be an entity identifier"),
                                   FieldError("properties.branch[0]", "is not a string"),
                                   FieldError("", "refused as a whole")])
    top = attach_run_errors(exc, [branch])  # no entity picker: the entity's error goes to the top too
    assert top == ("properties.gone: is not an input of this action; entity: must be an entity identifier; "
                   "refused as a whole")
    assert branch.error == "properties.branch[0]: is not a string"


def test_a_run_refusal_without_a_path_is_the_top_error():
    branch = _input("branch")
    assert attach_run_errors(Conflict("Deploy is off on this portal."), [branch]) == "Deploy is off on this portal."
    assert branch.error == ""


def _control(key):
    return FilterControl(key=key, label=key, widget="text", operator="contains")


def test_search_errors_land_on_the_control_that_made_the_rule():
    owners = [_control("language"), _control("replicas")]
    exc = ValidationFailed(errors=[FieldError("rules[1].value", "must be a number"),
                                   FieldError("rules[0].rules[3].value", "is odd"),
                                   FieldError("rules[1]", "and more")])
    assert attach_errors(exc, owners) == ""
    assert [c.error for c in owners] == ["is odd", "must be a number; and more"]


def test_search_errors_no_control_made_go_to_the_top():
    owners = [_control("language")]
    exc = ValidationFailed(errors=[FieldError("rules[4].value", "must be a number"), FieldError("sort", "'x' is not a column")])
    assert attach_errors(exc, owners) == "rules[4].value: must be a number; sort: 'x' is not a column"
    assert owners[0].error == ""


def _lock_form():
    return LockForm(scope="service", op="lock", action=None, service="checkout", environment="production")


def test_lock_errors_land_on_reason_and_until_as_their_message_alone():
    form = _lock_form()
    _place(form, ValidationFailed(errors=[FieldError("properties.reason", "is required"),
                                          FieldError("properties.until.x", "must be in the future")]))
    assert (form.reason_error, form.until_error, form.error) == ("is required", "must be in the future", "")


def test_other_lock_errors_go_to_the_top_of_the_form():
    form = _lock_form()
    _place(form, ValidationFailed(errors=[FieldError("entity", "entity 'x' was not found"),
                                          FieldError("properties.reason", "is required")]))
    assert (form.reason_error, form.error) == ("is required", "entity: entity 'x' was not found")


@pytest.mark.parametrize("exc, field", [
    (ValidationFailed("must be earlier than now", path="from"), "from"),
    (ValidationFailed("'x' is not a team", path="team"), "team"),
    (ValidationFailed("is not a cursor", path="after"), ""),
    (ValidationFailed("from: looks like a path but is text"), ""),
])
def test_the_deployments_page_marks_the_filter_the_error_is_about(exc, field):
    assert _field_of(exc) == field
