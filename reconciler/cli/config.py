"""``reconciler config check``: the dry run: is this config ready to sync?

Why: a new deployment wants to know, before the first sync and without
writing anything, that the config is valid, the database is reachable (and
which schema it has) and every account's credentials work.

Invariants: nothing is written: the config is only read, the database is
opened read-only (a missing SQLite file stays missing), credentials are tried
with one token refresh and one ``calendarList.list(maxResults=1)`` per account
(``reconciler.google.authcheck``; a refreshed user token is merged into its own
file, as every refresh does). One line per check on stdout; exit 0 when every
check passed, 1 when one failed, 2 for a config problem (one line each on
stderr, through the one error mapping). ``--skip-credentials`` validates a config
before its key file is installed: a credentials file that does not exist yet is
named, not an error.
"""

from __future__ import annotations

import sys

import click

from reconciler.cli.context import EXIT_FAILED, EXIT_OK, Context, pass_context


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@click.group("config")
def config_group() -> None:
    """Work with the config file."""


@config_group.command("check")
@click.option("--skip-credentials", is_flag=True,
              help="Do not try the accounts' credentials (no network).")
@pass_context
def check(ctx: Context, skip_credentials: bool) -> None:
    """Validate the config, open the database read-only, try each account's credentials.

    Nothing is synced or written. Exit 0 all ok, 1 a check failed, 2 config error.
    """
    from reconciler.errors import ReconcilerError, first_line
    from reconciler.google.authcheck import check_accounts
    from reconciler.store.readonly import inspect_database

    # ConfigError: one line per problem, exit 2; a key file not installed yet is no
    # problem when the credentials are not tried.
    config = ctx.config(check_files=not skip_credentials)
    calendars = sum(len(a.calendars) for a in config.accounts)
    discovering = sum(1 for a in config.accounts if a.discover)
    where = config.path or "built-in defaults and environment"
    click.echo(f"config {where}: ok ({_count(len(config.accounts), 'account')}, "
               f"{_count(calendars, 'configured calendar')}"
               f"{f', {discovering} discovering' if discovering else ''})")
    ok = True
    try:
        info = inspect_database(config.database.url)
    except ReconcilerError as exc:
        click.echo(f"database: {first_line(exc)}")
        ok = False
    else:
        click.echo(info.line)
        ok = ok and info.ok
    if skip_credentials:
        for account in config.accounts:
            if account.credentials is not None and not account.credentials.is_file():
                click.echo(f"account {account.name}: credentials file {account.credentials} "
                           "not installed yet")
        click.echo("credentials: not tried (--skip-credentials)")
    else:
        for result in check_accounts(config):
            click.echo(result.line)
            ok = ok and result.ok
    sys.exit(EXIT_OK if ok else EXIT_FAILED)
