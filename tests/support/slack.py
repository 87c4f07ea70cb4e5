"""A fake Slack Web API on a pytest-httpserver: it records the messages posted and knows no users."""
import json

from werkzeug.wrappers import Response


class FakeSlack:
    def __init__(self, httpserver):
        self.messages = []
        httpserver.expect_request("/api/chat.postMessage").respond_with_handler(self._post)
        httpserver.expect_request("/api/users.lookupByEmail").respond_with_json({"ok": False, "error": "users_not_found"})

    def _post(self, request):
        self.messages.append(json.loads(request.get_data()))
        return Response(json.dumps({"ok": True, "channel": "C1", "ts": "1.1"}), content_type="application/json")

    def to(self, channel):
        return [m for m in self.messages if m["channel"] == channel]
