"""The SLACK backend (our extension): `{"type": "SLACK", "channel": ..., "text": ...}`, both `{{ jq }}` templates
over the run's context, posted with `chat.postMessage` (actions/slack.py). The post is the whole job: Slack's
answer ends the run — SUCCESS with the message's ts in the label, FAILURE with Slack's error code
(`channel_not_found`, `not_in_channel`, ...). The payload is recorded before the post, so a re-dispatched
run is never posted twice (see run_dispatch_claim).
"""
from actions.choices import RunStatus
from actions.secrets import redact_secrets, secrets_for_templates
from actions.slack import SlackFailed, SlackNotConfigured, slack_configured, slack_post
from actions.templating import TemplateError, render_template, run_template_context
from actions.backends.outcome import run_end




def slack_run(run) -> None:
    from actions.services.runs import run_record_response

    if not slack_configured():
        run_end(run, RunStatus.FAILURE, SlackNotConfigured.message)
        return
    invocation = run.action.invocation
    secrets = secrets_for_templates()
    context = run_template_context(run, secrets=secrets)
    try:
        channel = render_template(invocation.get("channel"), context, "channel")
        text = render_template(invocation.get("text"), context, "text")
    except TemplateError as exc:
        run_end(run, RunStatus.FAILURE, f"Template error in {exc}")
        return
    for name, value in (("channel", channel), ("text", text)):
        if not isinstance(value, str) or not value.strip():
            run_end(run, RunStatus.FAILURE, f"Template error in {name}: must render to a non-empty string")
            return
    payload = redact_secrets({"type": "SLACK", "channel": channel, "text": text}, secrets)
    run_record_response(run=run, response=None, payload=payload)
    try:
        answer = slack_post(channel, text)
    except SlackFailed as exc:
        run_record_response(run=run, response=exc.response)
        run_end(run, RunStatus.FAILURE, exc.label)
        return
    run_record_response(run=run, response={key: answer.get(key) for key in ("ok", "channel", "ts")})
    run_end(run, RunStatus.SUCCESS, f"Posted to {channel} (ts {answer.get('ts')})")
