"""Entry point: `flask --app run ...` for commands, `python run.py` to serve (PORT, default 8080).

Unsafe settings (config.ConfigError) stop everything, naming every problem: `python run.py` prints them and exits
with status 1; a WSGI server importing `run:app` gets the exception (its worker fails to boot); `flask --app run
<command>` prints them as an error, except `flask --app run check-config`, which lists them without the portal.
"""

import os
import sys

PORT = int(os.environ.get("PORT", "8080"))
# Links in mail and the bank's return and notification URLs follow the port served here unless set explicitly.
os.environ.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{PORT}")

from app import create_app  # noqa: E402 - the environment above must be read by the configuration
from config import ConfigError

CHECK_CONFIG_COMMAND = "check-config"


def refusal(error: ConfigError) -> str:
    """The operator's message: every problem on its own line."""
    lines = "\n".join(f"  - {problem}" for problem in error.problems)
    return (f"The portal refuses to start (APP_ENV={os.environ.get('APP_ENV') or 'development'}):\n{lines}\n"
            f"`flask --app run {CHECK_CONFIG_COMMAND}` lists the same problems.")


def _loading_for_a_flask_command() -> bool:
    """Whether `flask --app run <command>` is importing this module to look its command up (the app's commands are
    only known once it is loaded). `flask run` and `flask shell` load it from their own command instead: they get
    the exception, never a stand-in."""
    import click
    from flask.cli import FlaskGroup

    context = click.get_current_context(silent=True)
    return context is not None and isinstance(context.command, FlaskGroup)


def refused_app(error: ConfigError):
    """A stand-in for the refused portal, for the `flask` command line only: it knows `check-config` alone, and
    answers any other command with the problems. It serves nothing: every request raises the error again."""
    import click
    from flask import Flask
    from flask.cli import AppGroup

    from app.cli import check_config_command

    class RefusedCommands(AppGroup):
        def get_command(self, ctx, name):
            if name == check_config_command.name:
                return check_config_command
            raise click.ClickException(refusal(error))

        def list_commands(self, ctx):
            return [check_config_command.name]

    stand_in = Flask(__name__)
    stand_in.cli = RefusedCommands()

    def refuse(environ, start_response):
        raise error

    stand_in.wsgi_app = refuse
    return stand_in


try:
    app = create_app()
except ConfigError as config_error:
    if __name__ == "__main__":
        sys.exit(refusal(config_error))
    if not _loading_for_a_flask_command():
        raise
    app = refused_app(config_error)

if __name__ == "__main__":
    from app.http import PortalRequestHandler
    from app.scheduler import start_scheduler

    if app.config["SCHEDULER_ENABLED"]:
        start_scheduler(app)
    # create_app has put the token redaction on the access log; the handler sends no `Server` banner.
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=PORT, debug=False, use_reloader=False, threaded=True,
            request_handler=PortalRequestHandler)
