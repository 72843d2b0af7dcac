"""Settings, all from the environment (12-factor) through django-environ.

DATABASE_URL (default: SQLite under .data/), REDIS_URL (default: local Redis), SECRET_KEY,
DEBUG, ALLOWED_HOSTS, FERNET_KEYS (comma-separated; default: a development key generated into
.data/fernet.key on first use), EMAIL_URL.
"""

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
# Files and folders the app creates (SQLite databases, keys, uploads, staging) are its own:
# 0600 / 0700. MP_UMASK (octal) overrides.
os.umask(int(os.environ.get("MP_UMASK", "077"), 8))
DATA_DIR = Path(environ.Env().str("MP_DATA_DIR", default=str(BASE_DIR / ".data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "testserver"]),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env("DEBUG")
# An empty value (a copied .env.example) counts as unset; then the key scripts/run.sh and
# scripts/test.sh generate into .data/secret.key (mode 0600) is used; only DEBUG may run
# without any key.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and (DATA_DIR / "secret.key").is_file():
    # the key the scripts generated for this install, so manage.py works outside them too
    SECRET_KEY = (DATA_DIR / "secret.key").read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: set it in the environment (or .env) to a long random value, "
            'e.g. python3 -c "import secrets; print(secrets.token_urlsafe(50))". '
            "Only DEBUG=true runs without one."
        )
    SECRET_KEY = "dev-only-insecure-key-for-debug-" + "x" * 20
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "simple_history",
    "rules.apps.AutodiscoverRulesConfig",
    "csp",
    "axes",
    "migration_planner.lib",
    "migration_planner.audit",
    "mappings",
    "runs",
    "validation",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "migration_planner.lib.middleware.LoginRequiredMiddleware",
    "csp.middleware.CSPMiddleware",
    "migration_planner.lib.middleware.SecurityHeadersMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "migration_planner.urls"
WSGI_APPLICATION = "migration_planner.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "migration_planner.lib.context.roles",
                "runs.notifications.notification_context",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'app.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web server write concurrently: WAL and a busy timeout avoid "locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
if "postgresql" in DATABASES["default"]["ENGINE"]:
    # Interactive queries: JIT compiled a queue page's query for ~570 ms to run it in 60 ms
    # (its cost estimate counts a walk that the page's LIMIT ends early).
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["options"] = f"-c jit=off {options.get('options', '')}".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: counts failures, refuses locked-out logins
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(DATA_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "migration_planner.lib.staticfiles.IncrementalCompressedStaticFilesStorage"
    },
}
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(DATA_DIR / "media"))
MEDIA_URL = "media/"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport, minus the restore-on-close that crashes a worker after a broker
# restart (migration_planner/lib/broker.py); the supervisor re-queues instead.
CELERY_BROKER_TRANSPORT = "migration_planner.lib.broker:Transport"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
# Celery closes Django's connections before and after every task unless told to reuse them:
# each batch then paid a new backend of our database (fork, authentication, cold catalog and
# plpgsql caches). Reused instead; runs.tasks closes them as Django closes a request's (past
# CONN_MAX_AGE, or unusable after an error).
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 60 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 55 * 60
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# SQLite and file systems may only use files inside this directory (resolved, symlinks followed);
# the application's own database, key file and .env are refused even inside it.
MP_SYSTEMS_DIR = Path(env.str("MP_SYSTEMS_DIR", default=str(DATA_DIR))).resolve()

FERNET_KEYS = env.list("FERNET_KEYS", default=[])
FERNET_KEY_FILE = DATA_DIR / "fernet.key"
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="demo-pass-2026")
DEMO_DATA_DIR = DATA_DIR / "demo"

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="migration-planner@localhost")

REST_FRAMEWORK = {
    # Token first: anonymous calls get 401 with a WWW-Authenticate header. No HTTP Basic: it
    # paid a password hash per request and bypassed the login throttle. Personal access
    # tokens (accounts app) are stored hashed; "Token" and "Bearer" are both accepted.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.AccessTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["migration_planner.lib.permissions.RolePermission"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "migration_planner.lib.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "migration_planner.lib.api.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Migration Planner API",
    "DESCRIPTION": "Plan, rehearse, execute and prove data migrations.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "migration_planner.lib.openapi.error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "RunStatusEnum": "runs.enums.RunStatus",
        "BatchStatusEnum": "runs.enums.BatchStatus",
        "FailedRecordStatusEnum": "runs.enums.FailedRecordStatus",
        "PlanStatusEnum": "mappings.enums.PlanStatus",
        "VerdictEnum": "validation.enums.Verdict",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Our database owns progress; the broker only carries messages (docs/operations.md).
# A running batch's claim lasts this long without a heartbeat (renewed every third of it);
# past it the supervisor puts the batch back to pending and queues it again.
MP_BATCH_LEASE_SECONDS = env.float("MP_BATCH_LEASE_SECONDS", default=60.0)

# -------------------------------------------------- deployment (docs/operations.md, Security)
# MP_HTTPS=true when users reach the app over HTTPS: secure cookies, HTTPS redirect, HSTS.
# MP_PROXY_SSL_HEADER=true when a TLS-terminating proxy sets X-Forwarded-Proto (and strips it
# from clients). Each setting can also be given on its own.
MP_HTTPS = env.bool("MP_HTTPS", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=MP_HTTPS)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=MP_HTTPS)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=MP_HTTPS)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if MP_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=MP_HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=MP_HTTPS)
if env.bool("MP_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
X_FRAME_OPTIONS = "DENY"

# Content-Security-Policy (django-csp): every asset is local; no inline script anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # htmx adds its indicator <style>; the exported documents carry inline CSS.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=()"
)

# Login throttling and lockout (django-axes): the login form, the admin login and the API's
# token endpoint. MP_LOGIN_FAILURE_LIMIT failures for a user name from one address lock that
# pair out for MP_LOGIN_COOLOFF_MINUTES; every failure is in the audit log.
AXES_FAILURE_LIMIT = env.int("MP_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("MP_LOGIN_COOLOFF_MINUTES", default=15.0) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
if env.bool("MP_PROXY_SSL_HEADER", default=False):
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

# Uploads stream to a temporary file (never held in memory past 2.5 MB) and stop at this size.
MP_UPLOAD_MAX_BYTES = env.int("MP_UPLOAD_MAX_MB", default=200) * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "migration_planner.lib.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Files the app writes under .data/ are readable by its own user only.
FILE_UPLOAD_PERMISSIONS = 0o600
# Uploads stream into the data directory (not /tmp): keeping one is then a rename.
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "uploads-tmp")
Path(FILE_UPLOAD_TEMP_DIR).mkdir(mode=0o700, exist_ok=True)
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# Re-process and rollback leases on target tables expire this long after their last renewal.
MP_TABLE_LEASE_SECONDS = env.float("MP_TABLE_LEASE_SECONDS", default=300.0)
# The supervisor (Celery beat -> runs.supervise) runs this often: expired leases, lost
# messages, runs nobody finishes, stalls. Recovery takes at most lease + period (90 s default).
MP_SUPERVISOR_SECONDS = env.float("MP_SUPERVISOR_SECONDS", default=30.0)
# Each worker's parent process reports itself this often; a worker is live while its last
# heartbeat is younger than three intervals.
MP_WORKER_HEARTBEAT_SECONDS = env.float("MP_WORKER_HEARTBEAT_SECONDS", default=10.0)
# A running run with pending batches that no worker has claimed for this long raises an alert.
MP_STALL_ALERT_SECONDS = env.float("MP_STALL_ALERT_SECONDS", default=300.0)
# The post-run report shares its expected side (the source through the rules again) with a
# helper task on another worker: a second process, a second core (validation/expected_share.py).
MP_REPORT_HELPER = env.bool("MP_REPORT_HELPER", default=True)
# The broker's visibility timeout is only a backstop: it must outlast the longest task
# (CELERY_TASK_TIME_LIMIT), or Redis hands a message still being worked to a second worker.
# Recovery from a lost worker does not wait for it: the batch lease above does that.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int(
        "MP_BROKER_VISIBILITY_TIMEOUT", default=CELERY_TASK_TIME_LIMIT + 5 * 60
    )
}
# Supervisor messages get their own queue so a long batch queue never delays them; workers
# consume every queue listed here.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery"), Queue("mp_control"))
CELERY_TASK_ROUTES = {"runs.supervise": {"queue": "mp_control"}}
CELERY_BEAT_SCHEDULE = {
    "runs-supervise": {
        "task": "runs.supervise",
        "schedule": MP_SUPERVISOR_SECONDS,
        "options": {"expires": MP_SUPERVISOR_SECONDS},
    },
}
# Absolute links in e-mails (alerts) start with this URL.
MP_BASE_URL = env.str("MP_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# /metrics: with a token, a scraper sends "Authorization: Bearer <token>"; without one, only
# clients on the loopback interface are answered (docs/operations.md).
MP_METRICS_TOKEN = env.str("MP_METRICS_TOKEN", default="")
# Change data capture: source transactions applied per target transaction (at most), and the
# WAL a sync's replication slot may hold back before the run page warns.
MP_CDC_GROUP_SIZE = env.int("MP_CDC_GROUP_SIZE", default=5_000)
MP_CDC_WAL_WARN_BYTES = env.int("MP_CDC_WAL_WARN_BYTES", default=256 * 1024 * 1024)
# Creating a logical slot waits for every transaction open on the source server; past this the
# sync fails naming the blocking backends.
MP_CDC_SLOT_TIMEOUT_SECONDS = env.int("MP_CDC_SLOT_TIMEOUT_SECONDS", default=300)
