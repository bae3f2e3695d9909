"""Entry point: `flask --app run ...` for commands, `python run.py` to serve (PORT, default 8080)."""

import os

from app import create_app

app = create_app()

if __name__ == "__main__":
    from app.scheduler import start_scheduler

    if app.config["SCHEDULER_ENABLED"]:
        start_scheduler(app)
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "8080")), debug=False,
            use_reloader=False)
