"""Settings from the environment (see .env.example). Importing this module never starts a server; the most it
writes is the embedded setup's random key, once (portal/secret_key.py)."""
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from portal.embedded.addresses import celery_broker_url, embedded_database_url, embedded_redis_url, portal_home
from portal.environment import Env
from portal.secret_key import secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
env = Env()  # a malformed value stops the start, naming its variable (portal/environment.py)


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = secret_key()  # from the environment, else PORTAL_HOME's own random key (embedded PostgreSQL only)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PORTAL_HOME = portal_home()
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")


def proxy_ssl_header(value):
    """`HTTP_X_FORWARDED_PROTO,https` (or `X-Forwarded-Proto,https`): the header a TLS-terminating proxy sets
    and its value on HTTPS requests. Only set it behind a proxy that overwrites that header."""
    if not value.strip():
        return None
    header, _, expected = (part.strip() for part in value.partition(","))
    if not header or not expected or "," in expected:
        raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER: expected HEADER,VALUE (e.g. HTTP_X_FORWARDED_PROTO,https), got {value!r}")
    header = header.upper().replace("-", "_")
    return (header if header.startswith("HTTP_") else f"HTTP_{header}", expected)


# Browser security. Behind a TLS-terminating proxy SECURE_PROXY_SSL_HEADER tells Django which requests came in
# over HTTPS (HSTS and the redirect need it); cookies are Secure when the portal is served over HTTPS.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(env.str("SECURE_PROXY_SSL_HEADER", default=""))
served_over_https = PORTAL_BASE_URL.lower().startswith("https://") or SECURE_PROXY_SSL_HEADER is not None
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=served_over_https)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=served_over_https)
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)  # opt-in: browsers remember it
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "guardian",
    "drf_spectacular",
    "portal",
    "audit",
    "catalog",
    "actions",
    "web",
]

MIDDLEWARE = [
    "portal.middleware.RequestIdMiddleware",
    "portal.middleware.NulRefusalMiddleware",
    "portal.middleware.ApiGuardMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # portal.browser_middleware: Django's own, passed around by a /v1 call with a bearer token
    "portal.browser_middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "portal.browser_middleware.AuthenticationMiddleware",
    "portal.browser_middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "web.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],  # templates live in web/templates (APP_DIRS)
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.pages.navigation",
            ],
        },
    },
]

DATABASE_URL = env.str("DATABASE_URL", default="") or embedded_database_url()
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
DATABASES["default"]["ENGINE"] = "portal.database"  # Django's PostgreSQL backend, a cheaper health check (base.py)
if "host" in DATABASES["default"].get("OPTIONS", {}):  # a unix-socket URL (?host=/dir): dbshell reads HOST
    DATABASES["default"]["HOST"] = DATABASES["default"]["OPTIONS"].pop("host")
DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str("TEST_DATABASE_NAME", default="test_portal")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The role every connection switches to (SET ROLE): all tables, but only SELECT and INSERT on the audit log.
# Migrations run as the role in DATABASE_URL (audit/database_role.py). Empty: stay as that role.
PORTAL_DB_APP_ROLE = env.str("PORTAL_DB_APP_ROLE", default="portal_app")
AUDIT_FLUSH_ALLOWED = False  # manage.py flush may empty the audit log: the test suite only (tests/settings.py)

REDIS_URL = env.str("REDIS_URL", default="") or embedded_redis_url()
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = PORTAL_HOME / "static"
WHITENOISE_USE_FINDERS = True  # serve app static files without collectstatic (tests, first start)
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.AccessTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["portal.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "portal.api.negotiation.BlankAcceptNegotiation",
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.EnvelopeSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Portal API",
    "DESCRIPTION": "Port-compatible v1 API of the self-hosted developer portal.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "web.openapi.complete_operations"],
}

# API limits
API_MAX_BODY_BYTES = 1024 * 1024
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)
API_RATE_LIMIT = env.int("API_RATE_LIMIT", default=6000)  # requests per period per caller
API_RATE_PERIOD_SECONDS = env.int("API_RATE_PERIOD_SECONDS", default=60)
ACCESS_TOKEN_TTL_SECONDS = 3 * 3600
JQ_TIMEOUT_SECONDS = env.float("JQ_TIMEOUT_SECONDS", default=1.0)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES

# Outbound HTTP to user-configured URLs (portal/outbound.py) and webhook delivery (actions/backends/webhook.py)
OUTBOUND_ALLOWED_NETWORKS = env.list("OUTBOUND_ALLOWED_NETWORKS", default=[])  # CIDRs exempt from the private-address refusal
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=5)
WEBHOOK_RETRY_BASE_SECONDS = env.float("WEBHOOK_RETRY_BASE_SECONDS", default=2.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=60.0)
WEBHOOK_SIGNING_SECRET = env.str("WEBHOOK_SIGNING_SECRET", default="")  # else the Secret of that name, else from SECRET_KEY
PORTAL_ENCRYPTION_KEY = env.str("PORTAL_ENCRYPTION_KEY", default="")  # Fernet key(s), comma-separated; else from SECRET_KEY

# Slack (actions/slack.py): the SLACK backend and notifications; off while SLACK_BOT_TOKEN is empty
SLACK_BOT_TOKEN = env.str("SLACK_BOT_TOKEN", default="")
SLACK_API_URL = env.str("SLACK_API_URL", default="https://slack.com/api/")
SLACK_DEFAULT_CHANNEL = env.str("SLACK_DEFAULT_CHANNEL", default="")
SLACK_TIMEOUT_SECONDS = env.int("SLACK_TIMEOUT_SECONDS", default=10)
SLACK_MAX_RETRIES = env.int("SLACK_MAX_RETRIES", default=2)  # per request, for rate limits and connection errors

# GitHub and GitLab backends (actions/backends/github.py, gitlab.py); off until configured
GITHUB_API_URL = env.str("GITHUB_API_URL", default="https://api.github.com")  # GitHub Enterprise: https://HOST/api/v3
GITHUB_TOKEN = env.str("GITHUB_TOKEN", default="")  # used when no GitHub App is configured
# Backstage locations (catalog/backstage/reader.py): URL prefixes a location may read, directories a registered
# file location may read (empty: none), and how often beat looks for locations due for a refresh.
BACKSTAGE_URL_ALLOWED_PREFIXES = env.list("BACKSTAGE_URL_ALLOWED_PREFIXES", default=[])
BACKSTAGE_FILE_ROOTS = env.list("BACKSTAGE_FILE_ROOTS", default=[])
GITHUB_APP_ID = env.str("GITHUB_APP_ID", default="")
GITHUB_APP_PRIVATE_KEY = env.str("GITHUB_APP_PRIVATE_KEY", default="")  # PEM; newlines may be written as \n
GITLAB_URL = env.str("GITLAB_URL", default="https://gitlab.com")
GITLAB_TOKEN = env.str("GITLAB_TOKEN", default="")  # read_api token to follow pipelines; trigger tokens are Secrets
CI_HTTP_TIMEOUT_SECONDS = env.float("CI_HTTP_TIMEOUT_SECONDS", default=10.0)
CI_DISPATCH_MAX_ATTEMPTS = env.int("CI_DISPATCH_MAX_ATTEMPTS", default=4)  # tries on connection errors and 5xx
CI_RETRY_BASE_SECONDS = env.float("CI_RETRY_BASE_SECONDS", default=2.0)
CI_POLL_BASE_SECONDS = env.float("CI_POLL_BASE_SECONDS", default=5.0)  # status polls back off from this
CI_POLL_MAX_SECONDS = env.float("CI_POLL_MAX_SECONDS", default=60.0)  # … up to this

# Celery
CELERY_BROKER_URL = celery_broker_url(REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# The worker keeps its database connection between tasks, checked before each as a request's is (portal/celery.py);
# Celery's default closes it after every task. It is closed anyway after twice this many tasks.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=500)
# Worker and beat outlive a Redis outage of any length: they retry the broker forever, at start too.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# A task still running when the broker connection drops is stopped: its unacknowledged message goes back to the
# queue and runs again, so letting it go on would run it twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# A half-open connection (Redis restarted, a NAT forgot us) is noticed by keepalive, timeouts and health checks
# instead of hanging; no retry_on_timeout: a publish retried after a timeout may queue its message twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_keepalive": True,
    "socket_connect_timeout": 5,
    "socket_timeout": 30,
    "health_check_interval": 25,
}

# The built-in demo receiver and fake Slack (actions/demo_receiver.py): on in `make demo`, off in production.
DEMO_RECEIVER_ENABLED = env.bool("PORTAL_DEMO_RECEIVER", default=False)
DEMO_RECEIVER_DELAY_SECONDS = env.float("PORTAL_DEMO_RECEIVER_DELAY", default=3.0)
CELERY_BEAT_SCHEDULE = {
    "actions-approvals-expire": {"task": "actions.tasks.run_approvals_expire_task", "schedule": 30.0},
    "actions-run-timeouts": {"task": "actions.tasks.run_timeouts_task", "schedule": 60.0},
    "actions-run-delivery-leases": {"task": "actions.tasks.run_delivery_leases_task", "schedule": 5.0},
}

# Automations, timers and TTL (actions/services/automations.py, timers.py, ttl.py)
AUTOMATION_MAX_DEPTH = env.int("AUTOMATION_MAX_DEPTH", default=3)  # automations fired by automations' runs, at most this deep
CELERY_BEAT_SCHEDULE["actions-timers-sweep"] = {"task": "actions.tasks.timers_sweep_task", "schedule": 30.0}
CELERY_BEAT_SCHEDULE["actions-ttl-warnings"] = {"task": "actions.tasks.ttl_warnings_task", "schedule": 60.0}

# Scorecard history (catalog/services/scorecards.py): today's level counts, rewritten hourly.
CELERY_BEAT_SCHEDULE["catalog-backstage-locations-refresh"] = {"task": "catalog.tasks.backstage_locations_refresh_task",
                                                           "schedule": 60.0}
CELERY_BEAT_SCHEDULE["catalog-scorecard-snapshots"] = {"task": "catalog.tasks.scorecard_snapshots_task", "schedule": 3600.0}
# Aggregation values a deployment report moves are refreshed this long after it, by the worker, once for every report
# of that window (catalog/services/aggregations.py aggregates_refresh_queue).
AGGREGATES_REFRESH_DELAY_SECONDS = env.float("AGGREGATES_REFRESH_DELAY_SECONDS", default=1.0)
# Sort indexes of indexed properties (catalog/services/entity_indexes.py): queued by blueprint changes; hourly repair.
CELERY_BEAT_SCHEDULE["catalog-entity-indexes"] = {"task": "catalog.tasks.entity_indexes_sync_task", "schedule": 3600.0}

# The audit chain (audit/chain.py): events are sealed after their commit; beat seals what that missed (and what a
# CI deployment report left to it) every AUDIT_SEAL_SECONDS, and writes a signed checkpoint of the chain's head
# outside the database every minute (audit/checkpoints.py).
AUDIT_SEAL_SECONDS = env.float("AUDIT_SEAL_SECONDS", default=5.0)
if not 0 < AUDIT_SEAL_SECONDS <= 60:  # audit_verify calls an event unsealed after 10 minutes a fault
    raise ImproperlyConfigured(f"AUDIT_SEAL_SECONDS: expected seconds between 0 and 60, got {AUDIT_SEAL_SECONDS!r}")
CELERY_BEAT_SCHEDULE["audit-seal"] = {"task": "audit.tasks.audit_seal_task", "schedule": AUDIT_SEAL_SECONDS}
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {"task": "audit.tasks.audit_checkpoint_task", "schedule": 60.0}
AUDIT_CHECKPOINT_FILE = env.str("AUDIT_CHECKPOINT_FILE", default="") or str(PORTAL_HOME / "audit-checkpoints.jsonl")

# The transactional outbox (portal/outbox.py) and the delivery lease of runs (actions/services/runs.py)
OUTBOX_PUBLISH_TIMEOUT_SECONDS = env.float("OUTBOX_PUBLISH_TIMEOUT_SECONDS", default=1.0)  # fail fast, then the sweep
OUTBOX_LEASE_SECONDS = env.float("OUTBOX_LEASE_SECONDS", default=120.0)  # a worker's claim on a message
OUTBOX_REPUBLISH_SECONDS = env.float("OUTBOX_REPUBLISH_SECONDS", default=30.0)  # due, published, unclaimed: lost
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=10)
OUTBOX_KEEP_DONE_DAYS = env.int("OUTBOX_KEEP_DONE_DAYS", default=7)
OUTBOX_SWEEP_SECONDS = env.float("OUTBOX_SWEEP_SECONDS", default=5.0)
DELIVERY_LEASE_SECONDS = env.float("DELIVERY_LEASE_SECONDS", default=300.0)  # one delivery attempt's deadline
CELERY_BEAT_SCHEDULE["portal-outbox-sweep"] = {"task": "portal.outbox_sweep", "schedule": OUTBOX_SWEEP_SECONDS}
CELERY_BEAT_SCHEDULE["portal-outbox-purge"] = {"task": "portal.outbox_purge", "schedule": 3600.0}

# Kafka (portal/kafka.py): runs of KAFKA actions, agent runs when the agent streams from Kafka, and the change log
# are published to the user's own cluster. Empty KAFKA_BROKERS: Kafka is off.
ORGANIZATION_ID = env.str("ORGANIZATION_ID", default="portal")  # topics default to <id>.runs and <id>.change.log
KAFKA_BROKERS = env.str("KAFKA_BROKERS", default="")  # bootstrap servers, comma-separated host:port
KAFKA_SECURITY_PROTOCOL = env.str("KAFKA_SECURITY_PROTOCOL", default="plaintext")  # plaintext, ssl, sasl_plaintext, sasl_ssl
KAFKA_SASL_MECHANISM = env.str("KAFKA_SASL_MECHANISM", default="")  # PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
KAFKA_SASL_USERNAME = env.str("KAFKA_SASL_USERNAME", default="")
KAFKA_SASL_PASSWORD = env.str("KAFKA_SASL_PASSWORD", default="")
KAFKA_SSL_CA_LOCATION = env.str("KAFKA_SSL_CA_LOCATION", default="")  # a PEM file; empty: the system's CAs
KAFKA_DELIVERY_TIMEOUT_SECONDS = env.float("KAFKA_DELIVERY_TIMEOUT_SECONDS", default=10.0)  # one publish's deadline
KAFKA_MAX_ATTEMPTS = env.int("KAFKA_MAX_ATTEMPTS", default=20)  # publishes of a run before it ends FAILURE
KAFKA_RETRY_BASE_SECONDS = env.float("KAFKA_RETRY_BASE_SECONDS", default=2.0)
KAFKA_RETRY_MAX_SECONDS = env.float("KAFKA_RETRY_MAX_SECONDS", default=60.0)
# The client secret of the API client Port's execution agent runs with: it signs the messages of agent runs the way
# the agent verifies them in its Kafka mode. Else the admin Secret of that name.
KAFKA_AGENT_CLIENT_SECRET = env.str("KAFKA_AGENT_CLIENT_SECRET", default="")
CELERY_BEAT_SCHEDULE["portal-changelog-drain"] = {"task": "portal.changelog_drain", "schedule": 5.0}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "portal.middleware.RequestIdLogFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
