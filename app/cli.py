"""Command-line interface: `flask --app run <command>`."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext



@click.command("init-security")
@with_appcontext
def init_security_command():
    """Create the roles and the permission rows of every view (run after `flask db upgrade`)."""
    current_app.appbuilder.sm.sync_roles_and_permissions()
    click.echo("Roles and permissions are up to date.")


@click.command("seed-demo")
@click.option("--households", default=200, show_default=True, type=click.IntRange(2, 200_000),
              help="How many households the demo landlord has (2 to 200000).")
@with_appcontext
def seed_demo_command(households: int):
    """Create the demo landlord (idempotent: existing households are kept, missing ones added)."""
    from app.services.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, SeedError, seed_demo

    try:
        report = seed_demo(households, echo=click.echo)
    except SeedError as exc:
        raise click.BadParameter(str(exc), param_hint="--households") from exc
    click.echo(f"Demo landlord ready: {report['households_total']} households "
               f"({report['households_created']} created in {report['seconds']} s).")
    click.echo(f"Demo accounts (password {DEMO_PASSWORD}):")
    for account in DEMO_ACCOUNTS:
        click.echo(f"  {account.email:28} {account.role}")


@click.command("scheduler")
@click.option("--no-wait", is_flag=True, help="Exit at once when another scheduler holds the lock.")
@with_appcontext
def scheduler_command(no_wait: bool):
    """Run the scheduled jobs in this process. Exactly one runs: started beside a running one (another machine's
    standby), it waits and takes over when that one stops; it exits if it ever loses its lock."""
    import signal
    import time

    from app.scheduler import SchedulerLock, start_scheduler

    app = current_app._get_current_object()
    retry = app.config["SCHEDULER_LOCK_RETRY_SECONDS"]
    lock = SchedulerLock(app)
    if no_wait and not lock.acquire():
        raise click.ClickException("another scheduler is already running (lock held): nothing to do")
    if not no_wait:
        lock.wait(retry, announce=lambda: click.echo(
            f"Another scheduler is running: standing by, trying to take over every {retry:g} s."))
    scheduler = start_scheduler(app, lock)

    def stop(signum, frame):  # a service manager's SIGTERM stops it like Ctrl+C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        click.echo("Scheduler running; stop with Ctrl+C.")
        while lock.held():
            time.sleep(retry)
    except KeyboardInterrupt:
        scheduler.shutdown(wait=False)
        click.echo("Scheduler stopped.")
        return
    scheduler.shutdown(wait=False)
    raise click.ClickException("the scheduler lock was lost (database connection ended): stopped, so that the "
                               "scheduler taking over runs alone; restart this process to stand by again")


@click.command("regenerate-documents")
@click.argument("client_number")
@click.option("--all", "everything", is_flag=True, help="Also render the documents never downloaded yet.")
@with_appcontext
def regenerate_documents_command(client_number: str, everything: bool):
    """Render again the stored documents of the household CLIENT_NUMBER (8 digits)."""
    import sqlalchemy as sa

    from app.extensions import db
    from app.models import Household
    from app.services.documents import regenerate

    household = db.session.scalar(sa.select(Household).where(Household.client_number == client_number.strip()))
    if household is None:
        raise click.BadParameter(f"no household has the client number {client_number!r}", param_hint="CLIENT_NUMBER")
    click.echo(f"{regenerate(household.id, everything)} documents rendered again for household {household.client_number}.")


@click.command("call-rents")
@click.option("--month", required=True, help="The month to call, as YYYY-MM.")
@with_appcontext
def call_rents_command(month: str):
    """Create the due notices of a month (idempotent: a second run creates nothing)."""
    from app.models import utcnow
    from app.services.rent_calls import call_rents, parse_period

    try:
        first_day = parse_period(month)
    except ValueError as exc:
        raise click.BadParameter("use the form YYYY-MM, for example 2026-12", param_hint="--month") from exc
    click.echo(f"{call_rents(first_day, utcnow())} due notices created for {month}.")


@click.command("collect-debits")
@click.option("--day", type=click.Choice(["2", "7", "10"]), required=True, help="The debit day (2, 7 or 10).")
@click.option("--month", required=True, help="The month, as YYYY-MM.")
@with_appcontext
def collect_debits_command(day: str, month: str):
    """Build the pain.008 collection file of a debit day from its pre-notified debits (once per day and month)."""
    from app.models import utcnow
    from app.services.direct_debits import build_file
    from app.services.rent_calls import parse_period
    from app.services.sepa import SepaError

    try:
        parse_period(month)
    except ValueError as exc:
        raise click.BadParameter("use the form YYYY-MM, for example 2026-12", param_hint="--month") from exc
    try:
        batch = build_file(month, int(day), utcnow().date(), utcnow())
    except SepaError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"File {batch.message_id}: {batch.count} debits, {batch.total} EUR on {batch.collection_date} "
               f"({batch.schema}).")


@click.command("import-bank-file")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def import_bank_file_command(path: str):
    """Apply the bank's answer (pain.002, camt.054 or camt.053): rejects and returns; the rest listed for review."""
    from pathlib import Path

    from app.models import utcnow
    from app.services.direct_debits import import_bank_answer
    from app.services.sepa import SepaError

    try:
        record = import_bank_answer(Path(path).read_bytes(), Path(path).name, utcnow().date(), utcnow())
    except SepaError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"{record.message_type} {record.message_id}: {record.applied} applied, {record.to_review} to review.")


def init_app(app: Flask) -> None:
    app.cli.add_command(init_security_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(scheduler_command)
    app.cli.add_command(regenerate_documents_command)
    app.cli.add_command(call_rents_command)
    app.cli.add_command(collect_debits_command)
    app.cli.add_command(import_bank_file_command)
    app.cli.add_command(export_accounting_command)
    app.cli.add_command(rotate_encryption_key_command)
    app.cli.add_command(reindex_households_command)
    app.cli.add_command(check_config_command)
    from app.backup import register as register_backup_commands

    register_backup_commands(app)


@click.command("export-accounting")
@click.option("--from", "start", required=True, metavar="YYYY-MM-DD", help="First day of the range (included).")
@click.option("--to", "end", required=True, metavar="YYYY-MM-DD", help="Last day of the range (included).")
@click.option("--output", type=click.Path(dir_okay=False, writable=True),
              help="The CSV file to write, replaced only once complete (default: standard output).")
@with_appcontext
def export_accounting_command(start: str, end: str, output: str | None):
    """Write the accounting export (card payments and reversals, direct debits and rejects) of a range as CSV."""
    import io
    import os
    import sys
    import tempfile
    import time
    from pathlib import Path

    from app.services.accounting import AccountingError, parse_range, write_csv

    try:
        first, last = parse_range(start, end)
    except AccountingError as error:
        raise click.BadParameter(error.message, param_hint="--from" if error.field == "start" else "--to") from None
    started = time.perf_counter()
    if output is None:
        sys.stdout.flush()
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        try:
            count = write_csv(stream, first, last)
        finally:
            stream.flush()
            stream.detach()
    else:  # written beside the target, then renamed: a failed export never leaves half a file under its name
        target = Path(output)
        try:
            partial = tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", dir=target.parent,
                                                  prefix=f".{target.name}.", suffix=".part", delete=False)
        except OSError as error:
            raise click.ClickException(f"cannot write in {target.parent}: {error.strerror}") from None
        with partial as stream:
            try:
                count = write_csv(stream, first, last)
            except BaseException:
                stream.close()
                os.unlink(stream.name)
                raise
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(stream.name, 0o666 & ~umask)  # as open() would have made it (mkstemp makes 0600)
        os.replace(stream.name, target)
    click.echo(f"{count} movements from {first} to {last} exported in {time.perf_counter() - started:.2f} s.",
               err=True)


@click.command("reindex-households")
@click.option("--batch-size", default=2000, show_default=True, type=click.IntRange(1, 100_000),
              help="Households rewritten and committed at a time.")
@with_appcontext
def reindex_households_command(batch_size: int):
    """Rebuild the staff search terms of every household (after an import that bypassed the portal, or a repair)."""
    from app.services.household_search import reindex_all

    click.echo(f"Search terms rebuilt for {reindex_all(batch_size)} households.")


@click.command("rotate-encryption-key")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 100_000),
              help="Rows read, re-encrypted and committed at a time.")
@with_appcontext
def rotate_encryption_key_command(batch_size: int):
    """Encrypt every encrypted value and stored file again with the first key of DATA_ENCRYPTION_KEYS, and files
    still in clear (written before files were encrypted) for the first time (idempotent: what is already under that
    key is left alone). Afterwards the other keys can be removed from DATA_ENCRYPTION_KEYS."""
    import sqlalchemy as sa

    from app import crypto, filestore
    from app.dbtypes import EncryptedString
    from app.extensions import db

    columns = [(table, column) for table in db.metadata.sorted_tables for column in table.columns
               if isinstance(column.type, EncryptedString)]
    for table, column in columns:
        (key,) = table.primary_key.columns
        # Raw tokens, not the ORM's clear values: a token already under the first key is skipped, and a row
        # written meanwhile by the portal (already under the first key) is not overwritten.
        raw = sa.table(table.name, sa.column(key.name), sa.column(column.name, sa.String))
        raw_key, raw_value = raw.c[key.name], raw.c[column.name]
        rotated = checked = 0
        last = None
        while True:
            query = sa.select(raw_key, raw_value).where(raw_value.is_not(None)).order_by(raw_key).limit(batch_size)
            if last is not None:
                query = query.where(raw_key > last)
            rows = db.session.execute(query).all()
            if not rows:
                break
            for row_key, token in rows:
                if not crypto.is_current(token):
                    try:
                        new_token = crypto.rotate(token)
                    except crypto.DecryptionError:
                        db.session.rollback()
                        raise click.ClickException(
                            f"{table.name}.{column.name} of row {row_key} does not decrypt with any key of "
                            "DATA_ENCRYPTION_KEYS: put back the key it was encrypted with") from None
                    db.session.execute(raw.update().where(raw_key == row_key, raw_value == token)
                                       .values({column.name: new_token}))
                    rotated += 1
            checked += len(rows)
            last = rows[-1][0]
            db.session.commit()
        click.echo(f"{table.name}.{column.name}: {rotated} of {checked} values encrypted again with the first key.")
    store = "FILES_DIR" if current_app.config["FILE_STORAGE"] == "folder" else filestore.describe()
    try:
        seen, encrypted, rotated = filestore.rotate_all()
    except crypto.DecryptionError:
        raise click.ClickException(f"a file of {store} does not decrypt with any key of DATA_ENCRYPTION_KEYS: "
                                   "put back the key it was encrypted with") from None
    click.echo(f"{store}: {rotated} of {seen} files encrypted again with the first key, {encrypted} encrypted "
               "that were in clear.")


@click.command("check-config")
def check_config_command():
    """List every missing or unsafe setting of this environment (APP_ENV), one per line, without starting the portal
    (run.py lets this command through when the settings are refused); exit status 1 when there is one."""
    from app.services.direct_debits import calendar_problem
    from app.services.sepa import creditor_id_problem
    from config import CONFIGS, config_problems, env

    name = env("APP_ENV", "development")
    problems = config_problems(name)
    settings = CONFIGS.get(name)
    if settings is not None:  # create_app's own refusals (app/__init__.py), whatever the environment
        problem = creditor_id_problem(settings.SEPA_CREDITOR_ID)
        if problem:
            problems.append(f"SEPA_CREDITOR_ID is not a valid creditor identifier (ICS): {problem}")
        problem = calendar_problem(settings.RENT_CALL_DAY, settings.SEPA_PRENOTIFICATION_DAYS)
        if problem:
            problems.append(problem)
        from app.filestore import settings_problem

        problem = settings_problem(settings)
        if problem:
            problems.append(problem)
    for problem in problems:
        click.echo(problem)
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s): the portal refuses to start with APP_ENV={name}.")
    click.echo(f"OK: no configuration problem for APP_ENV={name}.")
