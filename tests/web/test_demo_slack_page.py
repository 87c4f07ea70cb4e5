"""The demo Slack page GET /demo/slack/ (web/demo_slack.py): what the demo Slack API was sent, to signed-in users,
only while the demo receiver is on."""
import uuid

from tests.factories import UserFactory


def test_the_demo_slack_page_shows_the_messages_posted_to_the_demo_slack_api(db, settings, client):
    settings.DEMO_RECEIVER_ENABLED = True
    text = f"lock changed {uuid.uuid4().hex}"
    posted = client.post("/demo/slack/chat.postMessage", {"channel": "#deploys", "text": text},
                         content_type="application/json")
    assert posted.status_code == 200 and posted.json()["ok"] is True
    assert client.get("/demo/slack/")["Location"].startswith("/login/")

    client.force_login(UserFactory())
    page = client.get("/demo/slack/")
    assert page.status_code == 200
    assert f"<tr><td>#deploys</td><td>{text}</td></tr>" in page.content.decode()

    settings.DEMO_RECEIVER_ENABLED = False
    assert client.get("/demo/slack/").status_code == 404
