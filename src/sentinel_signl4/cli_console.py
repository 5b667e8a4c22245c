"""``sentinel-signl4 console``: set up access to the operator console."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

__all__ = ["console_app"]

console_app = typer.Typer(help="Set up access to the operator console.", no_args_is_help=True)


@console_app.command("hash-password")
def hash_password_command(
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the password from the first line of stdin "
                                        "instead of prompting.")] = False,
) -> None:
    """Print the scrypt hash of a password for ``[[console.users]] password_hash`` (the password is never stored).

    The hash is not the password, but treat it as a secret too: keep it in an environment variable and refer to it
    as ``password_hash = "${CONSOLE_ADMIN_HASH}"``.
    """
    from sentinel_signl4.web.console_auth import hash_password

    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        typer.echo("Use at least 12 characters.", err=True)
        raise typer.Exit(2)
    typer.echo(hash_password(password))
