"""/actions/ (the actions a user may run) and /actions/<identifier>/run (an action's form).

What the form says about a run before it is requested — why it will wait for an approval, where the user stands
against the quota, how long what it creates lives, or why it cannot be run at all — is the `run_preflight` that
`run_request` enforces, so the page and the service cannot disagree."""
from dataclasses import dataclass
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from actions.choices import Operation, RunOrigin, RunStatus
from actions.selectors.actions import action_groups_visible_to, runnable_action_visible_to
from actions.services.runs import run_preflight, run_request
from portal.actor import Actor, AuditOrigin
from portal.errors import PortalError
from web.action_pages.environments import duration_text
from web.action_pages.forms import (attach_run_errors, entity_target_field, input_fields, input_groups,
                                    operation_takes_entity, properties_read)
from web.catalog_pages.columns import blueprint_url, entity_url


@login_required
@require_GET
def action_list(request):
    groups = action_groups_visible_to(request.user)
    for group in groups:
        group["catalog_url"] = blueprint_url(group["identifier"])
    return render(request, "actions/action_list.html", {"groups": groups, "CREATE": Operation.CREATE})


def _action_for(user, identifier):
    action = runnable_action_visible_to(user, identifier)
    if action is None:
        raise Http404(f"Action {identifier!r} was not found.")
    return action


@dataclass
class RunForm:
    """The inputs of the form as submitted (or their defaults), the entity picker when the page was opened without
    an entity, and what is wrong: at an input, or at the top with the page's status."""

    fields: list
    entity_field: object = None
    top_error: str = ""
    status: int = 200

    def field_at(self, key):
        if key == "entity":
            return self.entity_field
        return next((field for field in self.fields if field.key == key), None)

    @property
    def has_errors(self):
        return bool(self.top_error) or any(field.error for field in [*self.fields, self.entity_field] if field)


def _show_error(form, exc):
    """Put a refusal on the form, with its status: each error at the input its path names (forms.attach_run_errors),
    the rest (and any other refusal) at the top."""
    form.status = exc.status
    form.top_error = attach_run_errors(exc, form.fields, entity_field=form.entity_field)


def _refusal(preflight, *, picker):
    """What refuses the run before anyone fills the form: the preflight's first problem; with an entity picker,
    the entity is the form's to ask for, so a problem about it is not one."""
    for problem in preflight.problems:
        if not (picker and getattr(problem, "path", "") == "entity"):
            return problem
    return None


def _notes(preflight):
    """The run's policy in words, from the preflight: its approval, the quota, the TTL of what it creates."""
    ttl = ""
    if preflight.ttl_default:
        ttl = (f"What it creates is torn down after {duration_text(preflight.ttl_default.total_seconds())} unless "
               "extended" + (f", at most {duration_text(preflight.ttl_maximum.total_seconds())} after it was created"
                             if preflight.ttl_maximum else "") + ".")
    return {"approval": preflight.approval_reason, "quota": preflight.quota.text if preflight.quota else "", "ttl": ttl}


def _submit(request, action, form, entity_identifier):
    """Request the run from the posted form: the run, or None with the errors on the form."""
    properties, errors = properties_read(form.fields, request.POST)
    if errors:
        form.status = 422
        for field in form.fields:
            field.error = errors.get(field.key, "")
        return None
    try:
        return run_request(actor=Actor(user=request.user, origin=AuditOrigin.UI), action=action, properties=properties,
                           entity_identifier=entity_identifier or None, origin=RunOrigin.UI)
    except PortalError as exc:
        _show_error(form, exc)
        return None


def _target(request, action):
    """(the entity identifier chosen, whether it is fixed): a DAY-2 or DELETE form opened from an entity's page
    (`?entity=`) runs on that entity; opened without, it offers a picker whose choice comes with the POST."""
    if not operation_takes_entity(action):
        return "", False
    if request.GET.get("entity"):
        return request.GET["entity"].strip(), True
    return (request.POST.get("entity") or "").strip() if request.method == "POST" else "", False


def _run_form(request, action, *, chosen, picker):
    data = request.POST if request.method == "POST" else None
    entity_field = None
    if picker:
        entity_field = entity_target_field(action, user=request.user, chosen=chosen,
                                           text=(request.GET.get("filter.entity") or "").strip())
    return RunForm(fields=input_fields(action, user=request.user, data=data, filters=request.GET),
                   entity_field=entity_field)


def _requested(request, action, run):
    waiting = run.status == RunStatus.WAITING_FOR_APPROVAL
    messages.success(request, f"{action.title}: run {run.id} requested" + (" — it waits for approval." if waiting else "."))
    return redirect("run-detail", run_id=run.id)


def _render_form(request, action, form, preflight, *, chosen, fixed, refusal):
    entity = preflight.entity
    context = {
        "action": action, "entity": entity, "entity_field": form.entity_field,
        "entity_url": entity_url(entity.blueprint.identifier, entity.identifier) if entity else "",
        "groups": input_groups(action, form.fields), "has_errors": form.has_errors, "top_error": form.top_error,
        "can_submit": refusal is None, **_notes(preflight),
        "form_action": request.path + (f"?entity={quote(chosen, safe='')}" if fixed else ""),
        "submit_text": (action.trigger or {}).get("executeActionButtonText") or "Run",
        "pickers": ([form.entity_field] if form.entity_field else []) + [f for f in form.fields if f.entity_picker],
        "options_url": request.path + "/options",
    }
    return render(request, "actions/action_form.html", context, status=form.status)


@login_required
@require_http_methods(["GET", "POST"])
def action_run(request, identifier):
    """GET: the form (defaults filled); POST: request the run → the run page, or the form again with the error
    at its field and the input kept (422, or 403/429/409 at the top)."""
    action = _action_for(request.user, identifier)
    chosen, fixed = _target(request, action)
    preflight = run_preflight(user=request.user, action=action, entity_identifier=chosen if fixed else None)
    if fixed and preflight.entity is None:
        raise Http404(f"Entity {chosen!r} of blueprint {action.blueprint_identifier!r} was not found.")
    picker = operation_takes_entity(action) and not fixed
    form = _run_form(request, action, chosen=chosen, picker=picker)
    refusal = _refusal(preflight, picker=picker)
    if refusal is not None:  # nothing to submit: the form is not offered
        _show_error(form, refusal)
    elif request.method == "POST":
        run = _submit(request, action, form, chosen)
        if run is not None:
            return _requested(request, action, run)
    return _render_form(request, action, form, preflight, chosen=chosen, fixed=fixed, refusal=refusal)


@login_required
@require_GET
def action_run_options(request, identifier):
    """The <select> of one entity picker narrowed by `filter.<key>` (fetched by actions/run-form.js as you type)."""
    user = request.user
    action = _action_for(user, identifier)
    key = request.GET.get("input", "")
    if key == "entity" and operation_takes_entity(action):
        field = entity_target_field(action, user=user, chosen=request.GET.get("entity", ""),
                                    text=(request.GET.get("filter.entity") or "").strip())
    else:
        # the chosen values come as `properties.<key>`, as the form would post them, and stay chosen
        fields = input_fields(action, user=user, data=request.GET, filters=request.GET, only=key)
        field = fields[0] if fields and fields[0].entity_picker else None
        if field is None:
            raise Http404(f"Input {key!r} of action {identifier!r} is not an entity picker.")
    return render(request, "actions/action_form_options.html", {"field": field})
