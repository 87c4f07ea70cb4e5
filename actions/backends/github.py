"""The GITHUB backend: `workflow_dispatch` through GitHub's REST API, then (with `reportWorkflowStatus`,
the default) the workflow run it started is found, linked on the run, and followed to its conclusion.

- Inputs: `workflowInputs` rendered over the run's template context, else the run's inputs; GitHub takes
  strings only, so other values go as compact JSON. `port_context` (a JSON string with the run id) is
  added unless the action renders its own.
- Ref: the repository's default branch, read from GitHub (what a dispatch from GitHub's UI uses); the
  action definition has no ref field.
- Auth: a GitHub App (GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY → app JWT → the repository's installation
  → an installation token, cached until 5 minutes before it expires), else GITHUB_TOKEN.
- Finding the workflow run: GitHub answers a dispatch with the run's id when asked (`return_run_details`,
  2026); a server that refuses the parameter (older GitHub Enterprise) is asked again without it, and then
  the run is looked up among the workflow's dispatch runs since the dispatch: one whose title or name holds
  the portal's run id (a workflow with `run-name: ${{ inputs.port_context }}` matches exactly), else the
  oldest one no other portal run has claimed.
- Outcomes: 401/403/404/422 and other refusals end the run as FAILURE with GitHub's reason in the label
  and a run log line; connection errors, 5xx and rate limits are retried with backoff
  (CI_DISPATCH_MAX_ATTEMPTS tries in all). Polling reschedules itself (CI_POLL_BASE_SECONDS doubling up to
  CI_POLL_MAX_SECONDS: no far-future ETAs) and stops once the run has ended or timed out (the timeout sweep
  ends it).
"""
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote

import jwt
import requests
from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from actions.choices import RunStatus
from actions.models import Run
from actions.credentials import write_only
from actions.templating import Rendered, TemplateError, TemplateRenderer, run_template_context
from actions.backends.outcome import (backoff_seconds, backend_run_load, delivery_retry_run, run_fail_logged,
                                      run_log_system)
from portal.actor import Actor
from portal.datetimes import instant_of
from portal.outbound import OutboundRefused, outbound_session
from portal.outbox import outbox_enqueue

logger = logging.getLogger(__name__)
API_VERSION = "2022-11-28"
USER_AGENT = "portal-github/1"
TOKEN_REFRESH_MARGIN = timedelta(minutes=5)
INSTALLATION_CACHE_SECONDS = 3600
CLOCK_SKEW = timedelta(minutes=1)  # GitHub's created_at against our clock when looking for the run


class GitHubFailed(Exception):
    """An answer another try cannot change: the run ends as FAILURE with this text as its label."""


class GitHubUnavailable(Exception):
    """A connection error, a 5xx or a rate limit: worth another try."""


# --- HTTP ------------------------------------------------------------------------------------------

def _q(segment) -> str:
    return quote(str(segment), safe="")


def _api(method, path, *, bearer, **kwargs):
    url = settings.GITHUB_API_URL.rstrip("/") + path
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
               "User-Agent": USER_AGENT, "Authorization": f"Bearer {bearer}"}
    try:
        response = outbound_session(timeout=settings.CI_HTTP_TIMEOUT_SECONDS).request(method, url, headers=headers, **kwargs)
    except OutboundRefused as exc:
        raise GitHubFailed(f"GitHub: {exc}") from None
    except requests.RequestException as exc:
        text = str(exc)
        raise GitHubUnavailable(f"GitHub unreachable ({text[:200]})") from None
    if response.status_code >= 500 or response.status_code == 429 or (
            response.status_code == 403 and (response.headers.get("x-ratelimit-remaining") == "0"
                                              or "retry-after" in response.headers)):
        raise GitHubUnavailable(f"GitHub answered {response.status_code}")
    return response


def _message(response) -> str:
    """GitHub's error message (and its validation errors), briefly."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300].strip()
    if not isinstance(data, dict):
        return ""
    text = str(data.get("message") or "")
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        details = [error.get("message") or error.get("code") if isinstance(error, dict) else error for error in errors]
        text += " (" + "; ".join(str(detail) for detail in details if detail) + ")"
    return text[:300]


def _refused(response, what) -> GitHubFailed:
    status, message = response.status_code, _message(response)
    detail = f": {message}" if message else ""
    if status == 401:
        return GitHubFailed(f"GitHub: authentication failed (401){detail}")
    if status == 403:
        return GitHubFailed(f"GitHub: permission denied for {what} (403){detail}")
    if status == 404:
        return GitHubFailed(f"GitHub: {what} not found (404)")
    if status == 422:
        return GitHubFailed(f"GitHub: {what} refused the request (422){detail}")
    return GitHubFailed(f"GitHub answered {status} for {what}{detail}")


def _json(response, what) -> dict:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise GitHubFailed(f"GitHub: unexpected answer for {what} (not a JSON object)")
    return data


# --- authentication -------------------------------------------------------------------------------

def app_jwt() -> str:
    """The GitHub App's own JWT (RS256, 9 minutes; issued a minute in the past for clock drift)."""
    key = settings.GITHUB_APP_PRIVATE_KEY.replace("\\n", "\n").strip()
    now = int(time.time())
    try:
        return jwt.encode({"iat": now - 60, "exp": now + 540, "iss": str(settings.GITHUB_APP_ID)}, key, algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError):
        raise GitHubFailed("GitHub: GITHUB_APP_PRIVATE_KEY is not a usable RSA private key (PEM)") from None


def _app_cache_prefix() -> str:
    """Cached ids and tokens belong to one app on one GitHub: a changed setting does not reuse them."""
    digest = hashlib.sha256(f"{settings.GITHUB_API_URL}|{settings.GITHUB_APP_ID}".encode()).hexdigest()[:16]
    return f"github-app:{digest}"


def _installation_key(org, repo) -> str:
    return f"{_app_cache_prefix()}:installation:{org.lower()}/{repo.lower()}"


def _token_key(installation_id) -> str:
    return f"{_app_cache_prefix()}:token:{installation_id}"


def installation_token(org, repo) -> str:
    """An installation token of the GitHub App for `org/repo`, from the cache while it has 5 minutes left."""
    installation_id = cache.get(_installation_key(org, repo))
    if installation_id is None:
        response = _api("GET", f"/repos/{_q(org)}/{_q(repo)}/installation", bearer=app_jwt())
        if response.status_code != 200:
            if response.status_code == 404:
                raise GitHubFailed(f"GitHub: the GitHub App is not installed on {org}/{repo} (404)")
            raise _refused(response, f"the GitHub App installation on {org}/{repo}")
        installation_id = _json(response, "the installation").get("id")
        if installation_id is None:
            raise GitHubFailed("GitHub: unexpected answer for the installation (no id)")
        cache.set(_installation_key(org, repo), installation_id, INSTALLATION_CACHE_SECONDS)
    token = cache.get(_token_key(installation_id))
    if token:
        return token
    response = _api("POST", f"/app/installations/{_q(installation_id)}/access_tokens", bearer=app_jwt())
    if response.status_code != 201:
        raise _refused(response, "the GitHub App installation token")
    data = _json(response, "the installation token")
    token = data.get("token")
    if not token:
        raise GitHubFailed("GitHub: unexpected answer for the installation token (no token)")
    expires_at = instant_of(data.get("expires_at"))
    if expires_at is not None:
        seconds = int((expires_at - TOKEN_REFRESH_MARGIN - timezone.now()).total_seconds())
        if seconds > 0:
            cache.set(_token_key(installation_id), token, seconds)
    return token


def _app_configured() -> bool:
    return bool(settings.GITHUB_APP_ID and settings.GITHUB_APP_PRIVATE_KEY)


def github_configured() -> bool:
    return _app_configured() or bool(settings.GITHUB_TOKEN)


def github_token(org, repo) -> str:
    if _app_configured():
        return installation_token(org, repo)
    if settings.GITHUB_TOKEN:
        return settings.GITHUB_TOKEN
    raise GitHubFailed("GitHub is not configured: set GITHUB_TOKEN, or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY")


def _forget_token(org, repo):
    """A 401 with an app token: drop what is cached, so the next run exchanges afresh."""
    if not _app_configured():
        return
    installation_id = cache.get(_installation_key(org, repo))
    cache.delete(_installation_key(org, repo))
    if installation_id is not None:
        cache.delete(_token_key(installation_id))


# --- the dispatch ---------------------------------------------------------------------------------

@dataclass
class WorkflowDispatch:
    # Names as rendered: polling reads them back from the run, and GitHub's link on the run shows them anyway.
    org: str
    repo: str
    workflow: str
    inputs: Rendered  # as sent, as stored (actions.templating)
    report: bool
    revealed: tuple  # text rendered from secrets

    @property
    def repo_path(self) -> str:
        return f"/repos/{_q(self.org)}/{_q(self.repo)}"

    def payload(self, ref=None) -> dict:
        """What the run stores: the inputs as rendered for storage."""
        return {"type": "GITHUB", "org": self.org, "repo": self.repo, "workflow": self.workflow,
                **({"ref": ref} if ref else {}), "inputs": self.inputs.stored, "reportWorkflowStatus": self.report}


def _input_string(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def dispatch_build(run, context) -> WorkflowDispatch:
    """Render `run`'s GITHUB invocation method over `context`. TemplateError on failure."""
    invocation = run.action.invocation
    renderer = TemplateRenderer(context, write_only=write_only)
    names = {key: rendered_name(renderer, invocation.get(key), key) for key in ("org", "repo", "workflow")}
    if invocation.get("workflowInputs") is not None:
        inputs = renderer.render(invocation["workflowInputs"], "workflowInputs")
        if not isinstance(inputs.value, dict):
            raise TemplateError("workflowInputs", "must render to an object")
    else:
        inputs = Rendered(run.properties or {}, run.properties or {})
    port_context = _input_string({"runId": run.id, "blueprint": run.blueprint_identifier or None,
                                  "entity": run.entity_identifier or None})
    inputs = Rendered(*(string_values(side) for side in inputs))
    for side in inputs:
        side.setdefault("port_context", port_context)
    return WorkflowDispatch(**names, inputs=inputs, report=invocation.get("reportWorkflowStatus", True) is not False,
                            revealed=tuple(renderer.revealed))


def rendered_name(renderer, template, key) -> str:
    """A name (org, repo, project...) rendered: a non-empty string, stripped. TemplateError otherwise."""
    name = renderer.render(template, key)
    if not isinstance(name.value, str) or not name.value.strip():
        raise TemplateError(key, f"must render to a non-empty string, got {json.dumps(name.stored)[:200]}")
    return name.value.strip()


def string_values(rendered: dict) -> dict:
    """Workflow inputs and pipeline variables are strings: other values go as compact JSON; nulls are left out."""
    return {str(name): _input_string(value) for name, value in rendered.items() if value is not None}


def default_branch(request, token) -> str:
    response = _api("GET", request.repo_path, bearer=token)
    if response.status_code != 200:
        raise _refused(response, f"repository {request.org}/{request.repo}")
    branch = _json(response, "the repository").get("default_branch")
    return branch if isinstance(branch, str) and branch else "main"


def workflow_dispatch(request, ref, token) -> dict | None:
    """POST the dispatch. Returns GitHub's run details when it gave them, else None."""
    path = f"{request.repo_path}/actions/workflows/{_q(request.workflow)}/dispatches"
    body = {"ref": ref, "inputs": request.inputs.value}
    if request.report:
        body["return_run_details"] = True
    response = _api("POST", path, bearer=token, json=body)
    if request.report and response.status_code in (400, 422) and "return_run_details" in _message(response):
        del body["return_run_details"]  # a GitHub that predates the parameter: look the run up instead
        response = _api("POST", path, bearer=token, json=body)
    if response.status_code == 204:
        return None
    if response.status_code == 200:
        try:
            details = response.json()
        except ValueError:
            return None
        return details if isinstance(details, dict) and details.get("workflow_run_id") else None
    if response.status_code == 401:
        _forget_token(request.org, request.repo)
    raise _refused(response, f"workflow {request.workflow}")


# --- run bookkeeping (through actions.services.runs, as the system) -------------------------------







def _link(run, workflow_run_id, html_url):
    from actions.services.runs import run_update

    links = list(run.links or [])
    if html_url and html_url not in links:
        links.append(html_url)
    return run_update(actor=Actor.system(), run=run, external_run_id=str(workflow_run_id), link=links)


def _conclude(run, workflow_run):
    """End the run from a completed workflow run; False while it is still going."""
    from actions.services.runs import run_finish

    if workflow_run.get("status") != "completed":
        return False
    conclusion = workflow_run.get("conclusion") or "unknown"
    if conclusion == "success":
        status, label = RunStatus.SUCCESS, "GitHub workflow run succeeded"
    else:
        status, label = RunStatus.FAILURE, f"GitHub workflow run concluded: {conclusion}"
    run_log_system(run, f"Workflow run {workflow_run.get('id')} completed: {conclusion}.")
    run_finish(actor=Actor.system(), run=run, status=status, label=label)
    return True


def dispatch_retry_delay(attempt: int) -> float:
    return backoff_seconds(attempt, base=settings.CI_RETRY_BASE_SECONDS, cap=settings.CI_POLL_MAX_SECONDS)


def poll_delay(attempt: int) -> float:
    """Seconds before poll `attempt`: base, doubling, capped (5, 10, 20, 40, 60, 60, … by default)."""
    return backoff_seconds(attempt, base=settings.CI_POLL_BASE_SECONDS, cap=settings.CI_POLL_MAX_SECONDS)


# --- entry points ---------------------------------------------------------------------------------

def github_run(run) -> None:
    """The backend's entry point for a claimed IN_PROGRESS run (the claim counted the first try)."""
    github_dispatch(run.id, 1)


def github_dispatch(run_id, attempt: int) -> None:
    run = backend_run_load(run_id)
    if run is None or run.status != RunStatus.IN_PROGRESS:
        return
    from actions.services.runs import run_record_response

    try:
        request = dispatch_build(run, run_template_context(run))
    except TemplateError as exc:
        run_fail_logged(run, f"Template error in {exc}")
        return
    # Recorded before the first send: a run that may have been dispatched is never claimed again.
    run_record_response(run=run, response=None, payload=request.payload(), revealed=request.revealed)
    dispatched_at = timezone.now()
    try:
        token = github_token(request.org, request.repo)
        ref = default_branch(request, token)
        details = workflow_dispatch(request, ref, token)
    except GitHubFailed as exc:
        run_fail_logged(run, str(exc))
        return
    except GitHubUnavailable as exc:
        _dispatch_retry_or_fail(run, attempt, str(exc))
        return
    run_record_response(run=run, response=details, payload=request.payload(ref), revealed=request.revealed)
    where = f"workflow {request.workflow} on {request.org}/{request.repo}@{ref}"
    if not request.report:
        run_log_system(run, f"Dispatched {where}; reportWorkflowStatus is off, so the workflow reports the run's end itself.")
        return
    run_log_system(run, f"Dispatched {where}.")
    if details:
        run = _link(run, details["workflow_run_id"], details.get("html_url"))
    outbox_enqueue(github_poll_task, [run.id, 1, dispatched_at.isoformat()], countdown=poll_delay(1))


def _dispatch_retry_or_fail(run, attempt, label):
    max_attempts = max(1, int(settings.CI_DISPATCH_MAX_ATTEMPTS))
    if attempt >= max_attempts:
        run_fail_logged(run, f"{label} after {attempt} attempt{'s' if attempt != 1 else ''}")
        return
    delay = dispatch_retry_delay(attempt)
    logger.info("run %s: %s; try %d of %d in %.2fs", run.id, label, attempt + 1, max_attempts, delay)
    from actions.services.runs import run_delivery_retry

    run_delivery_retry(run=run, attempt=attempt, countdown=delay, task=github_dispatch_task)


def workflow_run_find(run, org, repo, workflow, dispatched_at, token) -> dict | None:
    """The workflow run this dispatch started, if GitHub lists it yet (see the module docstring)."""
    since = dispatched_at - CLOCK_SKEW
    response = _api("GET", f"/repos/{_q(org)}/{_q(repo)}/actions/workflows/{_q(workflow)}/runs", bearer=token,
                    params={"event": "workflow_dispatch", "created": f">={since.strftime('%Y-%m-%dT%H:%M:%SZ')}",
                            "per_page": 100})
    if response.status_code != 200:
        raise _refused(response, f"workflow {workflow}")
    listed = _json(response, "the workflow runs").get("workflow_runs") or []
    candidates = []
    for item in listed:
        if not isinstance(item, dict) or item.get("id") is None:
            continue
        if run.id in str(item.get("display_title") or "") or run.id in str(item.get("name") or ""):
            return item
        created = instant_of(item.get("created_at"))
        if created is not None and created >= since:
            candidates.append((created, item))
    taken = set(Run.objects.exclude(pk=run.pk).filter(
        action__invocation_method__type="GITHUB",
        external_run_id__in=[str(item["id"]) for _created, item in candidates]).values_list("external_run_id", flat=True))
    free = sorted(((created, item) for created, item in candidates if str(item["id"]) not in taken), key=lambda pair: pair[0])
    # Prefer runs created after the dispatch by our clock; the skew window only when there is none.
    after = [item for created, item in free if created >= dispatched_at]
    if after:
        return after[0]
    return free[0][1] if free else None


def github_poll(run_id, attempt: int, dispatched_at: str) -> None:
    """Poll `attempt`: find the workflow run (until found), then follow it until it completes."""
    run = backend_run_load(run_id)
    if run is None or run.status != RunStatus.IN_PROGRESS:
        return
    if run.timeout_at is not None and timezone.now() >= run.timeout_at:
        return  # the run timeout sweep ends it
    payload = run.payload or {}
    org, repo, workflow = payload.get("org"), payload.get("repo"), payload.get("workflow")
    try:
        token = github_token(org, repo)
        if run.external_run_id:
            response = _api("GET", f"/repos/{_q(org)}/{_q(repo)}/actions/runs/{_q(run.external_run_id)}", bearer=token)
            if response.status_code != 200:
                raise _refused(response, f"workflow run {run.external_run_id}")
            workflow_run = _json(response, "the workflow run")
        else:
            since = instant_of(dispatched_at) or run.created_at
            workflow_run = workflow_run_find(run, org, repo, workflow, since, token)
            if workflow_run is not None:
                run = _link(run, workflow_run["id"], workflow_run.get("html_url"))
    except GitHubFailed as exc:
        run_fail_logged(run, str(exc))
        return
    except GitHubUnavailable as exc:
        logger.info("run %s: %s; polling again", run.id, exc)
        workflow_run = None
    if workflow_run is not None and _conclude(run, workflow_run):
        return
    outbox_enqueue(github_poll_task, [run.id, attempt + 1, dispatched_at], countdown=poll_delay(attempt + 1))


@shared_task(name="actions.github_dispatch", ignore_result=True)
def github_dispatch_task(run_id, attempt):
    delivery_retry_run(run_id, attempt, github_dispatch)


@shared_task(name="actions.github_poll", ignore_result=True)
def github_poll_task(run_id, attempt, dispatched_at):
    github_poll(run_id, attempt, dispatched_at)
