"""The GITLAB backend: a pipeline trigger (`POST /api/v4/projects/:id/trigger/pipeline`), then the
pipeline followed to its end.

- Project: `groupName/projectName` (URL-encoded as GitLab's API wants); `ref`: `defaultRef`, else "main";
  variables: `pipelineVariables` rendered over the run's template context (non-strings as compact JSON),
  plus `PORT_RUN_ID` so the pipeline can report back.
- Trigger token: an admin-managed Secret — `GITLAB_TRIGGER_TOKEN_<GROUP>_<PROJECT>` (upper case, every
  other character as `_`), else `GITLAB_TRIGGER_TOKEN`. Trigger tokens belong to one project, so the
  per-project name is the usual one.
- Following: with GITLAB_TOKEN (a read token, sent as PRIVATE-TOKEN) the pipeline is polled like GitHub
  runs (backoff up to CI_POLL_MAX_SECONDS, until the run ends or times out): success → SUCCESS;
  failed, canceled, skipped → FAILURE. Without it the run stays IN_PROGRESS for the pipeline to report
  back (a run log says so).
- Refusals (bad token, unknown project or ref) end the run as FAILURE with GitLab's reason; connection
  errors and 5xx are retried with backoff (CI_DISPATCH_MAX_ATTEMPTS tries in all).
"""
import logging
import re
from dataclasses import dataclass
from urllib.parse import quote

import requests
from celery import shared_task
from django.conf import settings
from django.utils import timezone

from actions.choices import RunStatus
from actions.backends.github import rendered_name, string_values
from actions.credentials import write_only
from actions.secrets import secret_value
from actions.templating import Rendered, TemplateError, TemplateRenderer, run_template_context
from actions.backends.outcome import (backoff_seconds, backend_run_load, delivery_retry_run, run_fail_logged,
                                      run_log_system)
from portal.actor import Actor
from portal.outbound import OutboundRefused, outbound_session
from portal.outbox import outbox_enqueue

logger = logging.getLogger(__name__)
USER_AGENT = "portal-gitlab/1"
DEFAULT_TOKEN_SECRET = "GITLAB_TRIGGER_TOKEN"
ENDED = {"success": RunStatus.SUCCESS, "failed": RunStatus.FAILURE, "canceled": RunStatus.FAILURE,
         "skipped": RunStatus.FAILURE}


class GitLabFailed(Exception):
    """An answer another try cannot change: the run ends as FAILURE with this text as its label."""


class GitLabUnavailable(Exception):
    """A connection error, a 5xx or a rate limit: worth another try."""


def _api(method, path, **kwargs):
    url = settings.GITLAB_URL.rstrip("/") + "/api/v4" + path
    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    try:
        response = outbound_session(timeout=settings.CI_HTTP_TIMEOUT_SECONDS).request(method, url, headers=headers, **kwargs)
    except OutboundRefused as exc:
        raise GitLabFailed(f"GitLab: {exc}") from None
    except requests.RequestException as exc:
        raise GitLabUnavailable(f"GitLab unreachable ({str(exc)[:200]})") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise GitLabUnavailable(f"GitLab answered {response.status_code}")
    return response


def _message(response) -> str:
    """GitLab's `message` (a string, or field → errors) or `error`, briefly."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300].strip()
    if not isinstance(data, dict):
        return ""
    message = data.get("message", data.get("error", ""))
    if isinstance(message, dict):
        message = "; ".join(f"{field}: {', '.join(map(str, errors)) if isinstance(errors, list) else errors}"
                            for field, errors in message.items())
    return str(message)[:300]


def token_secret_name(group, project) -> str:
    return DEFAULT_TOKEN_SECRET + "_" + re.sub(r"[^A-Z0-9]", "_", f"{group}_{project}".upper())


@dataclass
class PipelineTrigger:
    # Names as rendered: polling reads the project back from the run, and GitLab's link on the run shows it.
    project: str  # "group/project"
    ref: str
    variables: Rendered  # as sent, as stored (actions.templating)
    revealed: tuple  # text rendered from secrets

    @property
    def project_path(self) -> str:
        return "/projects/" + quote(self.project, safe="")

    def payload(self) -> dict:
        """What the run stores: the variables as rendered for storage; never the trigger token."""
        return {"type": "GITLAB", "project": self.project, "ref": self.ref, "variables": self.variables.stored}


def trigger_build(run, context) -> PipelineTrigger:
    """Render `run`'s GITLAB invocation method over `context`. TemplateError on failure."""
    invocation = run.action.invocation
    renderer = TemplateRenderer(context, write_only=write_only)
    names = {}
    for key in ("groupName", "projectName"):
        names[key] = rendered_name(renderer, invocation.get(key), key).strip("/ ")
        if not names[key]:
            raise TemplateError(key, "must render to a non-empty string, got only slashes")
    ref = rendered_name(renderer, invocation.get("defaultRef") or "main", "defaultRef")
    variables = renderer.render(invocation.get("pipelineVariables") or {}, "pipelineVariables")
    if not isinstance(variables.value, dict):
        raise TemplateError("pipelineVariables", "must render to an object")
    variables = Rendered(*({**string_values(side), "PORT_RUN_ID": run.id} for side in variables))
    return PipelineTrigger(project=f"{names['groupName']}/{names['projectName']}", ref=ref, variables=variables,
                           revealed=tuple(renderer.revealed))


# --- run bookkeeping (through actions.services.runs, as the system) -------------------------------







def poll_delay(attempt: int) -> float:
    from actions.backends.github import poll_delay as github_poll_delay  # the same CI polling schedule

    return github_poll_delay(attempt)


# --- entry points ---------------------------------------------------------------------------------

def gitlab_run(run) -> None:
    """The backend's entry point for a claimed IN_PROGRESS run (the claim counted the first try)."""
    gitlab_trigger(run.id, 1)


def gitlab_trigger(run_id, attempt: int) -> None:
    run = backend_run_load(run_id)
    if run is None or run.status != RunStatus.IN_PROGRESS:
        return
    from actions.services.runs import run_record_response, run_update

    try:
        trigger = trigger_build(run, run_template_context(run))
    except TemplateError as exc:
        run_fail_logged(run, f"Template error in {exc}")
        return
    group, project = trigger.project.rsplit("/", 1)
    secret_name = token_secret_name(group, project)
    token = secret_value(secret_name) or secret_value(DEFAULT_TOKEN_SECRET)
    if not token:
        run_fail_logged(run, f"GitLab: no trigger token: add a Secret named {secret_name} (or {DEFAULT_TOKEN_SECRET})")
        return
    # Recorded before the first send: a run that may have been triggered is never claimed again.
    run_record_response(run=run, response=None, payload=trigger.payload(), revealed=trigger.revealed)
    form = {"token": token, "ref": trigger.ref,
            **{f"variables[{key}]": value for key, value in trigger.variables.value.items()}}
    try:
        response = _api("POST", f"{trigger.project_path}/trigger/pipeline", data=form)
        if response.status_code != 201:
            raise _refused(response, trigger)
        try:
            pipeline = response.json()
        except ValueError:
            pipeline = None
        if not isinstance(pipeline, dict) or pipeline.get("id") is None:
            raise GitLabFailed("GitLab: unexpected answer to the pipeline trigger (no pipeline id)")
    except GitLabFailed as exc:
        run_fail_logged(run, str(exc))
        return
    except GitLabUnavailable as exc:
        _retry_or_fail(run, attempt, str(exc))
        return
    run_record_response(run=run, response=pipeline, revealed=trigger.revealed)
    links = list(run.links or [])
    if pipeline.get("web_url") and pipeline["web_url"] not in links:
        links.append(pipeline["web_url"])
    run = run_update(actor=Actor.system(), run=run, external_run_id=str(pipeline["id"]), link=links)
    where = f"pipeline {pipeline['id']} of {trigger.project}@{trigger.ref}"
    if not settings.GITLAB_TOKEN:
        run_log_system(run, f"Triggered {where}. GITLAB_TOKEN is not set, so the portal does not follow it: "
                  "the pipeline reports the run's end itself (PORT_RUN_ID).")
        return
    run_log_system(run, f"Triggered {where}.")
    if _conclude(run, pipeline):
        return
    outbox_enqueue(gitlab_poll_task, [run.id, 1], countdown=poll_delay(1))


def _refused(response, trigger) -> GitLabFailed:
    status, message = response.status_code, _message(response)
    detail = f": {message}" if message else ""
    if status == 404:
        return GitLabFailed(f"GitLab: project {trigger.project} not found, or the trigger token is not valid for it (404)")
    if status in (401, 403):
        return GitLabFailed(f"GitLab: the trigger token was refused ({status}){detail}")
    return GitLabFailed(f"GitLab: the pipeline trigger for {trigger.project}@{trigger.ref} was refused ({status}){detail}")


def _retry_or_fail(run, attempt, label):
    max_attempts = max(1, int(settings.CI_DISPATCH_MAX_ATTEMPTS))
    if attempt >= max_attempts:
        run_fail_logged(run, f"{label} after {attempt} attempt{'s' if attempt != 1 else ''}")
        return
    delay = backoff_seconds(attempt, base=settings.CI_RETRY_BASE_SECONDS, cap=settings.CI_POLL_MAX_SECONDS)
    logger.info("run %s: %s; try %d of %d in %.2fs", run.id, label, attempt + 1, max_attempts, delay)
    from actions.services.runs import run_delivery_retry

    run_delivery_retry(run=run, attempt=attempt, countdown=delay, task=gitlab_trigger_task)


def _conclude(run, pipeline) -> bool:
    """End the run from a finished pipeline; False while it is still going."""
    from actions.services.runs import run_finish

    status = pipeline.get("status")
    if status not in ENDED:
        return False
    run_log_system(run, f"Pipeline {pipeline.get('id')} ended: {status}.")
    label = "GitLab pipeline succeeded" if status == "success" else f"GitLab pipeline {status}"
    run_finish(actor=Actor.system(), run=run, status=ENDED[status], label=label)
    return True


def gitlab_poll(run_id, attempt: int) -> None:
    """Poll `attempt` of the pipeline the run triggered."""
    run = backend_run_load(run_id)
    if run is None or run.status != RunStatus.IN_PROGRESS or not run.external_run_id or not settings.GITLAB_TOKEN:
        return
    if run.timeout_at is not None and timezone.now() >= run.timeout_at:
        return  # the run timeout sweep ends it
    project = (run.payload or {}).get("project", "")
    try:
        response = _api("GET", f"/projects/{quote(project, safe='')}/pipelines/{quote(run.external_run_id, safe='')}",
                        headers={"PRIVATE-TOKEN": settings.GITLAB_TOKEN})
        if response.status_code != 200:
            message = _message(response)
            raise GitLabFailed(f"GitLab: pipeline {run.external_run_id} of {project} could not be read "
                               f"({response.status_code}){': ' + message if message else ''}; check GITLAB_TOKEN")
        try:
            pipeline = response.json()
        except ValueError:
            pipeline = {}
    except GitLabFailed as exc:
        run_fail_logged(run, str(exc))
        return
    except GitLabUnavailable as exc:
        logger.info("run %s: %s; polling again", run.id, exc)
        pipeline = {}
    if isinstance(pipeline, dict) and _conclude(run, pipeline):
        return
    outbox_enqueue(gitlab_poll_task, [run.id, attempt + 1], countdown=poll_delay(attempt + 1))


@shared_task(name="actions.gitlab_trigger", ignore_result=True)
def gitlab_trigger_task(run_id, attempt):
    delivery_retry_run(run_id, attempt, gitlab_trigger)


@shared_task(name="actions.gitlab_poll", ignore_result=True)
def gitlab_poll_task(run_id, attempt):
    gitlab_poll(run_id, attempt)
