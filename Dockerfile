# Production image: gunicorn + whitenoise; the same image runs the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=migration_planner.settings \
    MP_DATA_DIR=/app/data \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/app/data/media

# Fonts and the Pango/HarfBuzz libraries are what PDF rendering (WeasyPrint) loads at run time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app

WORKDIR /app
COPY . /app
# The app's own modules compiled once here (pip compiles the requirements' as it installs
# them): with PYTHONDONTWRITEBYTECODE set, every process (a manage.py run_plan, each worker,
# each gunicorn worker) would otherwise compile every module it imports from source again.
RUN pip install . \
    && python -m compileall -q accounts mappings migration_planner runs validation manage.py \
    && mkdir -p /app/data/media /app/staticfiles \
    && SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v 0 \
    && chown -R app:app /app/data /app/staticfiles

USER app
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["gunicorn", "migration_planner.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--threads", "4", "--access-logfile", "-"]
