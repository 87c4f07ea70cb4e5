"""The test session's settings: the portal's, with a random key of the session's own when SECRET_KEY is not set
(the portal refuses an external DATABASE_URL without one, and CI runs the suite against one). pytest-django
imports settings before any conftest, so the key is set here; processes the tests start inherit it."""
import os
import secrets

if not os.environ.get("SECRET_KEY"):
    os.environ["SECRET_KEY"] = "tests-" + secrets.token_urlsafe(50)

from portal.settings import *  # noqa: E402,F403

AUDIT_FLUSH_ALLOWED = True  # pytest-django's transactional tests flush every table, the audit log's included
