# Espace locataire: one image for the web nodes (the default command), the scheduler (`flask --app run scheduler`)
# and the one-shot commands (`flask --app run db upgrade`, `init-security`, `backup`, `check-config`...).
#
#   docker build -t localhost/espace-locataire .
#   docker compose build              # compose.yaml builds the same file
#
# Settings come from the environment only (README, « Configuration »); APP_ENV=production is the default here, so a
# container started without them stops at once and names every missing one (`flask --app run check-config`).

# --- build: the virtualenv, from the hashed lock ------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src
# Every runtime package pinned with its hashes (`make lock`): pip refuses anything else. Its own layer, so that a
# change of the code alone does not download the dependencies again.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

# The portal itself, without dependencies (they all came from the lock above). The catalogs are compiled first so
# that the .mo files are part of the installed package (pyproject.toml's package-data).
COPY pyproject.toml README.md babel.cfg config.py ./
COPY app ./app
RUN pybabel compile -d app/translations \
    && pip install --no-cache-dir --no-deps .

# --- runtime -----------------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

# wkhtmltopdf and a font for the PDF documents (app/pdf.py); pg_dump for `flask --app run backup` (same major
# version as the PostgreSQL 15 server). No libpq: psycopg[binary] carries its own.
# Versions are not pinned: Debian stable ships its security fixes as new versions and drops the old ones from the
# mirror (postgresql-client-15 moves with every PostgreSQL minor release), so a pin would break the next build
# instead of bringing the fix; the base image's tag fixes the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends wkhtmltopdf fonts-dejavu-core postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 espace \
    && useradd --system --no-log-init --uid 10001 --gid espace --home-dir /nonexistent --shell /usr/sbin/nologin \
        espace \
    && install -d -o espace -g espace -m 0750 /var/lib/espace-locataire /var/lib/espace-locataire/files

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    INSTANCE_DIR=/var/lib/espace-locataire \
    FILES_DIR=/var/lib/espace-locataire/files

COPY --from=build /opt/venv /opt/venv
# app/__init__.py looks for the migrations beside the `app` package (MIGRATIONS_DIR), which is installed in the
# virtualenv: they go there, read-only like the rest of the code.
COPY migrations /opt/venv/lib/python3.11/site-packages/migrations

# Only the entry point and gunicorn's settings here: `app` and `config` are imported from the installed package.
WORKDIR /opt/espace-locataire
COPY run.py gunicorn.conf.py ./

# The code belongs to root and is read-only for the portal's user; it writes in /var/lib/espace-locataire only
# (FILES_DIR: a volume shared by the web nodes and the scheduler). Numeric, so that an orchestrator can tell it is not
# root (Kubernetes' runAsNonRoot) and volumes can be prepared for it: uid 10001 is `espace`.
USER 10001:10001
EXPOSE 8080

# Liveness only (the process answers, no database): /health/ready also checks the database, the files, the
# scheduler's heartbeat and the mail queue, which say the portal as a whole is unwell, not this container.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8080'), timeout=4)"]

# gunicorn.conf.py binds HOST:PORT (0.0.0.0:8080 here), WEB_CONCURRENCY workers of WEB_THREADS threads.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "run:app"]
