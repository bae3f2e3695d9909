"""Entry point: `flask --app run ...` for commands, `python run.py` to serve (PORT, default 8080)."""

import os

PORT = int(os.environ.get("PORT", "8080"))
# Links in mail and the bank's return and notification URLs follow the port served here unless set explicitly.
os.environ.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT}")

from app import create_app  # noqa: E402 - the environment above must be read by the configuration

app = create_app()

if __name__ == "__main__":
    from app.http import PortalRequestHandler
    from app.scheduler import start_scheduler

    if app.config["SCHEDULER_ENABLED"]:
        start_scheduler(app)
    # create_app has put the token redaction on the access log; the handler sends no `Server` banner.
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=PORT, debug=False, use_reloader=False, threaded=True,
            request_handler=PortalRequestHandler)
