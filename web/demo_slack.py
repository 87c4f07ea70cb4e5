"""The demo Slack page: the messages the demo receiver's Slack API (actions/demo_receiver.py) was sent."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from actions.demo_receiver import slack_messages_posted


@login_required
def demo_slack_messages(request):
    return render(request, "actions/demo_slack.html", {"messages_posted": slack_messages_posted()})
