from django.db import connection
from django.http import JsonResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.middleware import envelope_response
from portal.services.api_clients import access_token_issue


class AccessTokenInput(serializers.Serializer):
    # Credentials are compared as sent: trimming would turn a control character into a 422 for a blank field.
    clientId = serializers.CharField(trim_whitespace=False)
    clientSecret = serializers.CharField(trim_whitespace=False)


class AccessTokenView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        data = AccessTokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        token, expires_in = access_token_issue(client_id=data.validated_data["clientId"], client_secret=data.validated_data["clientSecret"])
        return Response({"ok": True, "accessToken": token, "expiresIn": expires_in, "tokenType": "Bearer"})


def healthz(request):
    """200 when the database and the broker answer; 503 naming what is down."""
    from portal.celery import app

    status = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        status["database"] = "ok"
    except Exception as exc:  # report, don't raise: this is the probe
        status["database"] = f"down: {exc.__class__.__name__}"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        status["broker"] = "ok"
    except Exception as exc:
        status["broker"] = f"down: {exc.__class__.__name__}"
    ok = all(value == "ok" for value in status.values())
    return JsonResponse({"ok": ok, **status}, status=200 if ok else 503)


def api_route_missing(request, *args, **kwargs):
    """The last /v1 route: an unknown path answers the 404 envelope whatever DEBUG says."""
    return envelope_response(404, "not_found", f"No API route {request.method} {request.path}.")
