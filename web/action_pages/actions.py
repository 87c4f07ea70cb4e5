"""/actions/ (the actions a user may run) and /actions/<identifier>/run (an action's form)."""
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from actions.access import actions_visible_to, can_execute
from actions.backends import backend_unavailable
from actions.choices import Operation, RunOrigin, RunStatus, TriggerType
from actions.models import Action
from web.action_pages.forms import (entity_target_field, error_key, input_fields, input_groups, operation_takes_entity,
                                 properties_read)
from actions.services.quotas import live_entities_of
from catalog.models import Blueprint, Entity
from web.catalog_pages.columns import blueprint_url, entity_url
from portal.actor import Actor, AuditOrigin
from portal.errors import PortalError


def _offered(user):
    """Self-service actions the user may run, published ones only (admins see unpublished ones in the admin)."""
    return actions_visible_to(user, Action.objects.filter(trigger_type=TriggerType.SELF_SERVICE, publish=True))


@login_required
@require_GET
def action_list(request):
    actions = list(_offered(request.user).order_by("blueprint_identifier", "title", "identifier"))
    titles = dict(Blueprint.objects.filter(identifier__in={a.blueprint_identifier for a in actions})
                  .values_list("identifier", "title"))
    groups = {}
    for action in actions:
        bp = action.blueprint_identifier
        groups.setdefault(bp, {"identifier": bp, "title": titles.get(bp) or bp, "catalog_url": blueprint_url(bp),
                               "actions": []})["actions"].append(action)
    return render(request, "actions/action_list.html", {"groups": list(groups.values()), "CREATE": Operation.CREATE})


def _action_for(user, identifier):
    action = _offered(user).filter(identifier=identifier).first()
    if action is None:
        raise Http404(f"Action {identifier!r} was not found.")
    return action


def _target_entity(user, action, identifier):
    from catalog.selectors.entities import entities_visible_to

    queryset = Entity.objects.select_related("blueprint").filter(blueprint__identifier=action.blueprint_identifier,
                                                                 identifier=identifier)
    return entities_visible_to(user, queryset).first()


def _matches_condition(user, action, entity):
    from catalog.selectors.search import search_queryset

    condition = (action.trigger or {}).get("condition")
    if not condition:
        return True
    try:
        return search_queryset(condition, user=user, blueprint=entity.blueprint,
                               base=Entity.objects.filter(pk=entity.pk)).exists()
    except PortalError:
        return True  # the server check on submit says what is wrong with the condition


@login_required
@require_http_methods(["GET", "POST"])
def action_run(request, identifier):
    """GET: the form (defaults filled); POST: request the run → the run page, or the form again with the error
    at its field and the input kept (422, or 403/429/409 at the top)."""
    from actions.services.runs import entity_team_ids, run_request

    user = request.user
    action = _action_for(user, identifier)
    posted = request.method == "POST"
    takes_entity = operation_takes_entity(action)
    entity, entity_field, top_error, status = None, None, "", 200

    fixed = takes_entity and bool(request.GET.get("entity"))  # opened from an entity page: the entity is set
    chosen = (request.GET.get("entity") if fixed else request.POST.get("entity") if takes_entity and posted else "")
    chosen = (chosen or "").strip()
    if fixed:
        entity = _target_entity(user, action, chosen)
        if entity is None:
            raise Http404(f"Entity {chosen!r} of blueprint {action.blueprint_identifier!r} was not found.")
        if not can_execute(user, action, entity_team_ids(entity)):
            top_error, status = f"You may not run {action.title} on {entity.title or entity.identifier}.", 403
        elif not _matches_condition(user, action, entity):
            top_error, status = (f"entity: {entity.identifier!r} does not match the condition of action "
                                 f"{action.identifier!r}.", 422)
    elif takes_entity:
        entity_field = entity_target_field(action, user=user, chosen=chosen,
                                           text=(request.GET.get("filter.entity") or "").strip())
    elif not can_execute(user, action):
        top_error, status = f"You may not run {action.title}.", 403
    unavailable = backend_unavailable(action)
    if unavailable and not top_error:  # the same refusal run_request would give, before anyone fills the form
        top_error, status = f"{action.title} is off on this portal. {unavailable}", 409

    blocked = bool(top_error)  # nothing to submit: the form is not offered
    fields = input_fields(action, user=user, data=request.POST if posted else None, filters=request.GET)
    if posted and not blocked:
        properties, errors = properties_read(fields, request.POST)
        if errors:
            status = 422
            for field in fields:
                field.error = errors.get(field.key, "")
        else:
            try:
                run = run_request(actor=Actor(user=user, origin=AuditOrigin.UI), action=action, properties=properties,
                                  entity_identifier=chosen or None, origin=RunOrigin.UI)
            except PortalError as exc:
                status = exc.status
                key = error_key(exc.message)
                target = entity_field if key == "entity" else next((f for f in fields if f.key == key), None)
                if target is not None:
                    target.error = exc.message
                else:
                    top_error = exc.message
            else:
                waiting = run.status == RunStatus.WAITING_FOR_APPROVAL
                messages.success(request, f"{action.title}: run {run.id} requested"
                                          + (" — it waits for approval." if waiting else "."))
                return redirect("run-detail", run_id=run.id)

    context = {
        "action": action, "entity": entity, "entity_url": entity_url(entity.blueprint.identifier, entity.identifier)
        if entity else "", "entity_field": entity_field, "groups": input_groups(action, fields),
        "has_errors": bool(top_error) or any(f.error for f in fields) or bool(entity_field and entity_field.error),
        "top_error": top_error, "can_submit": not blocked,
        "approval": _approval_text(action.required_approval), "quota": _quota_text(action, user),
        "form_action": request.path + (f"?entity={quote(chosen, safe='')}" if fixed else ""),
        "submit_text": (action.trigger or {}).get("executeActionButtonText") or "Run",
        "pickers": ([entity_field] if entity_field else []) + [f for f in fields if f.entity_picker],
        "options_url": request.path + "/options",
    }
    return render(request, "actions/action_form.html", context, status=status)


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


def _approval_text(required_approval):
    if required_approval in (False, None):
        return ""
    if isinstance(required_approval, dict) and str(required_approval.get("type", "")).upper() == "ALL":
        return "Runs of this action wait until every approver has approved."
    return "Runs of this action wait for an approver's decision."


def _quota_text(action, user):
    quota = action.quota or {}
    parts = []
    for key, who in (("perUser", "per person"), ("perTeam", "per team")):
        if quota.get(key):
            limit = quota[key]["limit"]
            parts.append(f"{limit} run{'s' if limit != 1 else ''} {who} per {quota[key]['period']}")
    live_limit = quota.get("liveEntitiesPerUser")
    if live_limit and action.operation == Operation.CREATE:
        parts.append(f"{live_limit} live at a time per person")
    if not parts:
        return ""
    text = "At most " + ", ".join(parts) + "."
    if live_limit and action.operation == Operation.CREATE:
        live, pending = live_entities_of(action, user)
        text += f" You have {live}" + (f" and {pending} under way" if pending else "")
        if live + pending >= live_limit:
            text += (", so this one will wait for an approval." if quota.get("whenExceeded") == "requireApproval"
                     else ", so a new run is refused until one of them is deleted.")
        else:
            text += "."
    return text
