"""gunicorn's settings for a web node of the portal:

    gunicorn -c gunicorn.conf.py run:app

Each node runs `WEB_CONCURRENCY` worker processes of `WEB_THREADS` threads. What the nodes share lives outside them:
PostgreSQL (data, sessions, login throttles, the scheduler's lock), Redis (`RATELIMIT_STORAGE_URI`: rate limits
counted across every process and machine) and the file store (`FILES_DIR` on a shared volume, or object storage).
The scheduler is not a web node: run `flask --app run scheduler` beside them (README, « Production »).
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
# A PDF rendered on demand (a receipt asked for the first time) takes a few seconds; nothing should take 60.
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Workers are replaced now and then, so that a slow leak never grows for weeks.
max_requests = 5000
max_requests_jitter = 500
# Each worker builds its own app (its own database connections): nothing is shared by fork.
preload_app = False
# Logs on stderr, for the service manager; the portal's log filter masks tokens in the access log's URLs.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
# The reverse proxy's X-Forwarded-* headers are read by the app (PROXY_FIX_HOPS), not by gunicorn.
forwarded_allow_ips = ""


def child_exit(server, worker):
    """With Prometheus' multiprocess mode, a dead worker's live gauges are dropped from the shared folder."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
