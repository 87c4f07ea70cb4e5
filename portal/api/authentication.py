"""`Authorization: Bearer <JWT>` for /v1: the token's signature and expiry are checked in Python, its credential (an
active API client of an active user) by one SQL statement.

That statement is a round trip to PostgreSQL before the view's own, on every call; on a by-identifier GET or a search
page, whose answer is itself one statement, it was as long as the page. A view that only reads may let it ride in its
own statement (`ApiView.token_check_rides`: the methods it does so for). The view then runs on the user this process
found behind the same credential last time (a hint, never an answer), and its statement also runs the check
(`TokenCheck`): the page is handed out only when the credential still stands and its user row is the hinted one
column for column; when the row changed, the view's statement runs again for the user as read; when the credential
no longer stands, the answer is 401 and the hint is dropped, so the next call checks first again. A pending check the
view did not run (it failed before its statement, or has none) is run on its own before any answer goes out
(ApiView.finalize_response): a revoked token never learns more than 401. Writes never ride: their checks come first.
"""
from functools import cache

import jwt
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection
from rest_framework import authentication, exceptions

from portal.kept import KeptValues
from portal.models import ApiClient
from portal.prepared_statements import execute_prepared
from portal.roles import ADMINS_TEAM
from portal.services.api_clients import access_token_decode

_hints = KeptValues(1024)  # (user id, client id) -> the token_user row last read for them
INACTIVE = "The credential behind this token is no longer active."


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
        key = (claims["sub"], claims.get("clientId"))
        view = request.parser_context.get("view") if request.parser_context else None
        if request.method in getattr(view, "token_check_rides", ()):
            hint = _hints.get(key)
            if hint is not None:
                request._request.token_check = TokenCheck(request, key, hint)
                return _user_of(hint), claims
        return _standing_user(key), claims

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class TokenCheck:
    """The check of a token whose view runs on its hinted user (module docstring), pending until `resolve`d with the
    check's columns as the view's statement read them, or `run` on its own. `sql` and `params` are what the
    statement adds: `LEFT JOIN ({sql}) auth ON true` and `auth.*` at the end of its select list."""

    def __init__(self, request, key, hint):
        self.request, self.key, self.hint, self.resolved = request, key, hint, False
        self.sql = _token_user_sql()[0]
        self.params = [ADMINS_TEAM, *key]

    def resolve(self, row):
        """The user the check found (`row`: its columns, all None when it found nothing), the hinted one when its row
        is the hint; AuthenticationFailed when the credential no longer stands. The request's user is the one found."""
        self.resolved = True
        row = None if row is None or all(value is None for value in row) else tuple(row)
        _hint_keep(self.key, row)
        if row is None:
            raise exceptions.AuthenticationFailed(INACTIVE)
        if row == self.hint:
            return self.request.user
        self.request.user = user = _user_of(row)
        return user

    def run(self):
        """The check alone, for a view that did not run it: raises AuthenticationFailed, or sets the user found."""
        self.resolved = True
        self.request.user = _standing_user(self.key)


def _standing_user(key):
    """token_user of `key` ((user id, client id)), or AuthenticationFailed when its credential no longer stands."""
    user = token_user(*key)
    if user is None:
        raise exceptions.AuthenticationFailed(INACTIVE)
    return user


def token_user(user_id, client_id):
    """The active user behind an active API client, with `_portal_is_admin` set, or None. One query, written as
    SQL and prepared once per connection: every CI call pays for it, and building it with the ORM cost more CPU
    than the rest of a lock check."""
    sql, _ = _token_user_sql()
    with connection.cursor() as cursor:
        execute_prepared(cursor, "token_user", sql, [ADMINS_TEAM, user_id, client_id])
        row = cursor.fetchone()
    _hint_keep((user_id, client_id), row)
    return None if row is None else _user_of(row)


def _user_of(row):
    user = get_user_model().from_db(DEFAULT_DB_ALIAS, _token_user_sql()[1], row[:-1])
    user._portal_is_admin = user.is_superuser or row[-1]
    return user


def _hint_keep(key, row):
    if row is None:
        _hints.drop(key)
    else:
        _hints.put(key, tuple(row))


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
