"""``reconciler auth login`` and ``reconciler auth check``: the command line of credentials.

Why a module of its own: the click layer only parses options and maps errors
to the exit-status contract (0 ok, 1 a failure, 2 usage/config); the work is in
``reconciler.google.login`` and ``reconciler.google.authcheck``; errors go
through the one mapping of :mod:`reconciler.cli.context`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from reconciler.cli.context import Context, pass_context


@click.group("auth")
def auth() -> None:
    """Obtain and check the credentials of accounts."""


@auth.command("login")
@click.option("--client-secrets", "client_secrets", required=True, metavar="FILE",
              type=click.Path(path_type=Path, dir_okay=False),
              help="OAuth client JSON of a 'Desktop app' client from the Cloud console.")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="Token file to write.")
@click.option("--account", metavar="NAME",
              help="Write the token file that this account's `credentials` names in the config.")
@click.option("--no-browser", is_flag=True,
              help="Print the URL (open it on any machine) and read the redirected address back.")
@click.option("--force", is_flag=True,
              help="Replace the output file even when it is not a token file.")
@click.option("--timeout", type=click.FloatRange(min=1, max=86400), default=300, show_default=True,
              help="Seconds to wait for the browser's answer (loopback mode).")
@pass_context
def login_command(ctx: Context, client_secrets: Path, output: Path | None,
                  account: str | None, no_browser: bool, force: bool, timeout: float) -> None:
    """Sign in with Google and write an authorized-user token file (mode 0600)."""
    from reconciler.google.login import account_credentials_path, login

    if (output is None) == (account is None):
        raise click.UsageError("give exactly one of --output FILE or --account NAME")
    target = output.absolute() if output is not None else account_credentials_path(
        str(account), ctx.config_path)
    data = login(client_secrets, target, no_browser=no_browser, force=force, timeout=timeout,
                 read_line=sys.stdin.readline, echo=click.echo)
    click.echo(f"wrote {target} (authorized user, client {data['client_id']}); check it with "
               "`reconciler auth check`; a running `reconciler run` picks it up on SIGHUP")


@auth.command("check")
@click.option("--account", "accounts", multiple=True, metavar="NAME",
              help="Check only this account (repeatable).")
@pass_context
def check_command(ctx: Context, accounts: tuple[str, ...]) -> None:
    """Per account: one token refresh and one calendarList call (exit 0 all ok, 1 any failing)."""
    from reconciler.errors import ConfigError
    from reconciler.google.authcheck import check_accounts

    config = ctx.config()
    unknown = sorted(set(accounts) - {a.name for a in config.accounts})
    if unknown:
        raise ConfigError(f"no account named {', '.join(unknown)} in {ctx.config_path or 'the config'}")
    results = check_accounts(config, list(accounts))
    for result in results:
        click.echo(result.line)
    sys.exit(0 if all(r.ok for r in results) else 1)
