"""OpenAPI generation for views that take and return Port's JSON envelopes rather than serializers."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.AccessTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "Access token from POST /v1/auth/access_token"}


class EnvelopeSchema(AutoSchema):
    """Bodies are JSON objects documented in PORT_API.md; responses are {ok: true, ...} envelopes."""

    def get_request_serializer(self):
        return super().get_request_serializer() or (OpenApiTypes.OBJECT if self.method in ("POST", "PUT", "PATCH") else None)

    def get_response_serializers(self):
        return super().get_response_serializers() or OpenApiTypes.OBJECT

    def _get_serializer(self):
        view = self.view
        if getattr(view, "serializer_class", None) is None and not hasattr(view, "get_serializer"):
            return None
        return super()._get_serializer()

    def get_operation_id(self):
        path = self.path.strip("/").replace("/", "_").replace("{", "").replace("}", "").replace("-", "_")
        return f"{self.method.lower()}_{path}"

    def get_description(self):
        # Only a view's own docstring, not the one it inherits from ApiView.
        return (type(self.view).__dict__.get("__doc__") or "").strip()


def refusal(description):
    """Port's error envelope (the shared Error component), for a 4xx answer a view declares with
    extend_schema(responses={...})."""
    from drf_spectacular.utils import OpenApiResponse

    from portal.api.openapi import ERROR

    return OpenApiResponse(ERROR, description=description)
