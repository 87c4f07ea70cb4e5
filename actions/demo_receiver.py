"""The built-in demo receiver: a stand-in for the automation a platform team would connect, so the starter
actions work end to end on a fresh portal (`make demo`) before GitHub, Slack or a real webhook receiver exist.

- `POST /demo/receiver/<kind>`: a signed webhook from the WEBHOOK backend (signature checked like any
  receiver, PORT_API.md "Webhook signature"); answered 202 at once, the work done by a Celery task a moment
  later, which reports back the way an external receiver does: log lines, the entity it created (tagged with
  the run id) and a termination status.
- `POST /demo/slack/<method>`: a fake Slack Web API (the demo points SLACK_API_URL here), keeping the last
  messages in Redis; `GET /demo/slack/` (web/demo_slack.py) shows them, so lock-change messages are visible without a workspace.

Off unless PORTAL_DEMO_RECEIVER is set (the demo sets it): production portals do not expose it.
"""
import hashlib
import hmac
import json
import re
import time

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from actions.backends.signing import signature, signing_secret
from actions.choices import RunStatus
from actions.models import Run
from portal.actor import Actor, AuditOrigin
from portal.errors import PortalError

RECEIVER = Actor(user=None, origin=AuditOrigin.API, client_id="demo-receiver")
SIGNATURE_TOLERANCE_SECONDS = 300
SLACK_MESSAGES_KEY = "demo-receiver:slack-messages"
SLACK_MESSAGES_KEPT = 100


def _enabled():
    if not settings.DEMO_RECEIVER_ENABLED:
        raise Http404("The demo receiver is off (PORTAL_DEMO_RECEIVER).")


def _slug(text):
    return re.sub(r"[^a-z0-9-]+", "-", str(text).lower()).strip("-")[:60] or "x"


def _signature_valid(request):
    timestamp = request.headers.get("x-port-timestamp", "")
    given = request.headers.get("x-port-signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(given, signature(signing_secret(), timestamp, request.body))


# --- webhook receiver --------------------------------------------------------------------------------------

def _dev_environment(run, body):
    owner = body.get("requester") or ""
    identifier = _slug(f"{body.get('branch', 'main')}-{owner.split('@')[0]}")
    url = f"https://{identifier}.dev.portal.test"
    steps = [f"Creating namespace dev-{identifier}", f"Deploying branch {body.get('branch')}"]
    if body.get("seedData") in (True, "true"):
        steps.append("Loading anonymised mock data")
    steps.append(f"Environment ready at {url}")
    entity = {"identifier": identifier, "title": f"{body.get('branch')} ({owner.split('@')[0]})",
              "properties": {"owner": owner, "branch": body.get("branch"), "url": url}}
    return steps, ("devEnvironment", entity), "Environment ready"


def _cloud_resource(run, body):
    name = _slug(body.get("name"))
    steps = [f"Planning {body.get('size')} {body.get('kind')} {name} in {body.get('region')}",
             "Applying the plan", f"{body.get('kind')} {name} is ready"]
    entity = {"identifier": name, "title": name, "properties": {
        "kind": body.get("kind"), "size": body.get("size"), "region": body.get("region"),
        "owner": body.get("requester"), "justification": body.get("justification"), "status": "ready"}}
    return steps, ("cloudResource", entity), "Provisioned"


def _access_grant(run, body):
    grantee = body.get("requester") or ""
    identifier = _slug(f"{body.get('resource')}-{grantee.split('@')[0]}-{run.id[-6:]}")
    steps = [f"Granting {body.get('level')} access to {body.get('resource')} for {grantee}"]
    entity = {"identifier": identifier, "title": f"{body.get('level')} on {body.get('resource')} for {grantee}",
              "properties": {"resource": body.get("resource"), "level": body.get("level"), "grantee": grantee,
                             "reason": body.get("reason")}}
    return steps, ("accessGrant", entity), "Access granted"


def _terminate(run, body):
    return [f"Deleting namespace dev-{body.get('environment')}", "Namespace deleted"], None, "Environment terminated"


def _revoke_access(run, body):
    return [f"Revoking access grant {body.get('grant')}"], None, "Access revoked"


WORK = {"dev-env": _dev_environment, "cloud-resource": _cloud_resource, "access-grant": _access_grant,
        "terminate": _terminate, "revoke-access": _revoke_access}


@csrf_exempt
@require_POST
def demo_receiver_webhook(request, kind):
    _enabled()
    if kind not in WORK:
        return JsonResponse({"ok": False, "error": "not_found", "message": f"kind: unknown demo work {kind!r}"}, status=404)
    if not _signature_valid(request):
        return JsonResponse({"ok": False, "error": "unauthorized", "message": "x-port-signature: does not verify"}, status=401)
    try:
        body = json.loads(request.body)
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("runId"), str):
        return JsonResponse({"ok": False, "error": "invalid_request", "message": "runId: is required"}, status=422)
    from actions.tasks import demo_receiver_work_task
    from portal.outbox import outbox_enqueue

    outbox_enqueue(demo_receiver_work_task, [kind, body], countdown=settings.DEMO_RECEIVER_DELAY_SECONDS)
    return JsonResponse({"ok": True, "accepted": body["runId"]}, status=202)


def demo_receiver_work(*, kind, body) -> None:
    """Do the demo work of one accepted webhook and report on its run, as an external receiver would."""
    from actions.services.runs import run_log_add
    from catalog.models import Blueprint
    from catalog.services.entities import UPSERT_MERGE, entity_write_one

    run = Run.objects.select_related("action").filter(pk=body.get("runId")).first()
    if run is None or run.status != RunStatus.IN_PROGRESS:
        return  # reported already (a redelivered webhook), or timed out
    steps, entity, done = WORK[kind](run, body)
    for step in steps[:-1]:
        run_log_add(actor=RECEIVER, run=run, message=step)
    try:
        if entity is not None:
            blueprint_identifier, data = entity
            entity_write_one(actor=RECEIVER, blueprint=Blueprint.objects.get(identifier=blueprint_identifier), data=data,
                             mode=UPSERT_MERGE, run_id=run.id)
    except (PortalError, Blueprint.DoesNotExist) as exc:
        message = getattr(exc, "message", str(exc))
        run_log_add(actor=RECEIVER, run=run, message=f"Failed: {message}", termination_status=RunStatus.FAILURE,
                    status_label=f"Demo receiver: {message}"[:500])
        return
    run_log_add(actor=RECEIVER, run=run, message=steps[-1], termination_status=RunStatus.SUCCESS, status_label=done)


# --- fake Slack ---------------------------------------------------------------------------------------------

def _slack_arguments(request):
    if request.content_type == "application/json":
        try:
            return json.loads(request.body or b"{}")
        except ValueError:
            return {}
    return request.POST.dict()


@csrf_exempt
@require_POST
def demo_slack_api(request, method):
    _enabled()
    arguments = _slack_arguments(request)
    if method == "users.lookupByEmail":
        email = arguments.get("email", "")
        return JsonResponse({"ok": True, "user": {"id": "U" + hashlib.sha256(email.encode()).hexdigest()[:10].upper()}})
    if method != "chat.postMessage":
        return JsonResponse({"ok": True})
    if not arguments.get("channel"):
        return JsonResponse({"ok": False, "error": "channel_not_found"})
    ts = f"{time.time():.6f}"
    messages = cache.get(SLACK_MESSAGES_KEY) or []
    messages.insert(0, {"channel": arguments["channel"], "text": arguments.get("text", ""), "ts": ts})
    cache.set(SLACK_MESSAGES_KEY, messages[:SLACK_MESSAGES_KEPT], timeout=None)
    return JsonResponse({"ok": True, "channel": arguments["channel"], "ts": ts})


def slack_messages_posted():
    """The messages the demo Slack API received, newest first (shown by the page web/demo_slack.py)."""
    _enabled()
    return cache.get(SLACK_MESSAGES_KEY) or []
