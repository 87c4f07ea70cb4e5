from functools import cache

import jwt
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection
from rest_framework import authentication, exceptions

from portal.models import ApiClient
from portal.prepared_statements import execute_prepared
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
        user = token_user(claims["sub"], claims.get("clientId"))
        if user is None:
            raise exceptions.AuthenticationFailed("The credential behind this token is no longer active.")
        return user, claims

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def token_user(user_id, client_id):
    """The active user behind an active API client, with `_portal_is_admin` set, or None. One query, written as
    SQL and prepared once per connection: every CI call pays for it, and building it with the ORM cost more CPU
    than the rest of a lock check."""
    sql, fields = _token_user_sql()
    with connection.cursor() as cursor:
        execute_prepared(cursor, "token_user", sql, [ADMINS_TEAM, user_id, client_id])
        row = cursor.fetchone()
    if row is None:
        return None
    user = get_user_model().from_db(DEFAULT_DB_ALIAS, fields, row[:-1])
    user._portal_is_admin = user.is_superuser or row[-1]
    return user


@cache
def _token_user_sql():
    user_model = get_user_model()
    fields = [field.attname for field in user_model._meta.concrete_fields]
    columns = ", ".join(f'u."{field.column}"' for field in user_model._meta.concrete_fields)
    memberships = user_model.groups.through._meta.db_table
    group_table = user_model.groups.field.related_model._meta.db_table
    sql = (f'SELECT {columns}, EXISTS (SELECT 1 FROM "{memberships}" m JOIN "{group_table}" g ON g.id = m.group_id '
           f'WHERE m.user_id = u.id AND g.name = %s) '
           f'FROM "{user_model._meta.db_table}" u JOIN "{ApiClient._meta.db_table}" c ON c.user_id = u.id '
           f'WHERE u.id = %s AND u.is_active AND c.client_id = %s AND c.is_active LIMIT 1')
    return sql, fields
