"""The SLACK backend (our extension): `{"type": "SLACK", "channel": ..., "text": ...}`, both `{{ jq }}` templates
over the run's context, posted with `chat.postMessage` (actions/slack.py). The post is the whole job: Slack's
answer ends the run — SUCCESS with the message's ts in the label, FAILURE with Slack's error code
(`channel_not_found`, `not_in_channel`, ...). The payload is recorded before the post, so a re-dispatched
run is never posted twice (see run_dispatch_claim).
"""
from actions.choices import RunStatus
from actions.slack import SlackFailed, SlackNotConfigured, slack_configured, slack_post
from actions.templating import TemplateError, TemplateRenderer, run_template_context
from actions.backends.outcome import run_end




def slack_run(run) -> None:
    from actions.services.runs import run_record_response

    if not slack_configured():
        run_end(run, RunStatus.FAILURE, SlackNotConfigured.message)
        return
    invocation = run.action.invocation
    renderer = TemplateRenderer(run_template_context(run))
    try:
        channel = renderer.render(invocation.get("channel"), "channel")
        text = renderer.render(invocation.get("text"), "text")
    except TemplateError as exc:
        run_end(run, RunStatus.FAILURE, f"Template error in {exc}")
        return
    for name, value in (("channel", channel.value), ("text", text.value)):
        if not isinstance(value, str) or not value.strip():
            run_end(run, RunStatus.FAILURE, f"Template error in {name}: must render to a non-empty string")
            return
    revealed = tuple(renderer.revealed)
    run_record_response(run=run, response=None, payload={"type": "SLACK", "channel": channel.stored, "text": text.stored},
                        revealed=revealed)
    try:
        answer = slack_post(channel.value, text.value)
    except SlackFailed as exc:
        run_record_response(run=run, response=exc.response, revealed=revealed)
        run_end(run, RunStatus.FAILURE, exc.label)
        return
    run_record_response(run=run, response={key: answer.get(key) for key in ("ok", "channel", "ts")}, revealed=revealed)
    run_end(run, RunStatus.SUCCESS, f"Posted to {channel.stored} (ts {answer.get('ts')})")
