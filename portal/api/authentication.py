import jwt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef
from rest_framework import authentication, exceptions

from portal.roles import ADMINS_TEAM
from portal.services.api_clients import access_token_decode


class AccessTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <JWT>` issued by POST /v1/auth/access_token."""

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <accessToken>'.")
        try:
            claims = access_token_decode(token.strip())
        except jwt.ExpiredSignatureError:
            raise exceptions.AuthenticationFailed("Access token has expired; request a new one.")
        except jwt.PyJWTError:
            raise exceptions.AuthenticationFailed("Access token is invalid.")
        # One query: the user, that the credential is still active, and whether they are an admin.
        user = (
            get_user_model().objects.filter(pk=claims["sub"], is_active=True, api_clients__client_id=claims.get("clientId"),
                                             api_clients__is_active=True)
            .annotate(in_admins_team=Exists(Group.objects.filter(user=OuterRef("pk"), name=ADMINS_TEAM)))
            .first()
        )
        if user is None:
            raise exceptions.AuthenticationFailed("The credential behind this token is no longer active.")
        user._portal_is_admin = user.is_superuser or user.in_admins_team
        return user, claims

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
