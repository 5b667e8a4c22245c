"""The ``sentinel-signl4`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import signal
import sys
import tempfile
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from sentinel_signl4 import __version__
from sentinel_signl4.cli_console import console_app
from sentinel_signl4.cli_outbox import outbox_app
from sentinel_signl4.cli_pause import pause_app
from sentinel_signl4.config import Config, ConfigError, load_config
from sentinel_signl4.provision.app import provision_app

__all__ = ["app", "main"]

app = typer.Typer(help="Connects Microsoft Sentinel / Defender XDR incidents to SIGNL4 mobile alerting.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
config_app = typer.Typer(help="Work with configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(outbox_app, name="outbox")
app.add_typer(console_app, name="console")
app.add_typer(pause_app, name="pause")
app.add_typer(provision_app, name="provision")

def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"sentinel-signl4 {__version__} (Python {platform.python_version()})")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", is_eager=True,
                                          callback=_print_version)] = False,
) -> None:
    """Connects Microsoft Sentinel / Defender XDR incidents to SIGNL4 mobile alerting."""


ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path to the TOML config file.")]


class SourceChoice(StrEnum):
    """``demo --source``: the connector's ``source`` setting."""

    SENTINEL = "sentinel"
    GRAPH = "graph"


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(f"Invalid configuration:\n{exc}", err=True)
        raise typer.Exit(2) from None


@config_app.command("example")
def config_example() -> None:
    """Print a complete, commented example configuration."""
    typer.echo(resources.files("sentinel_signl4").joinpath("example-config.toml").read_text(encoding="utf-8"))


@config_app.command("validate")
def config_validate(config: ConfigOption) -> None:
    """Validate a configuration file without contacting anything (except Key Vault for ${keyvault:…} references)."""
    cfg = _load(config)
    names = ", ".join(c.name for c in cfg.connectors)
    typer.echo(f"{config}: OK ({len(cfg.connectors)} connector(s): {names})")


@app.command()
def run(config: ConfigOption,
        once: Annotated[bool, typer.Option("--once", help="Run one cycle of every connector, then exit.")] = False,
        dry_run: Annotated[bool, typer.Option(
            "--dry-run", help="Poll once and print what would be paged, as the phone shows it; send and write "
                              "nothing.")] = False,
        workers: Annotated[int, typer.Option(
            "--workers", min=1, max=64,
            help="Worker processes that run the connectors (each connector in one of them, under its lease); this "
                 "process keeps the webhook/health server and restarts a worker that dies. 1: everything in "
                 "this process.")] = 1,
        ) -> None:
    """Run the connectors (and the webhook/health server) until SIGTERM or Ctrl-C."""
    from sentinel_signl4.bootstrap import Runtime, instance_directory
    from sentinel_signl4.live_reload import LiveReload
    from sentinel_signl4.reload import AuthWatch, FileWatch, refresh_interval, run_reloading
    from sentinel_signl4.runner import dry_run as preview_run
    from sentinel_signl4.runner import health_finder, run_forever, run_once_all
    from sentinel_signl4.worker_pool import WorkerPool

    cfg = _load(config)
    if workers > 1 and (once or dry_run):
        typer.echo("--workers applies to a continuous run, not to --once or --dry-run.", err=True)
        raise typer.Exit(2)
    if dry_run:
        sys.exit(asyncio.run(preview_run(cfg, typer.echo)))
    if once:
        sys.exit(asyncio.run(run_once_all(cfg)))
    uses_keyvault = "${keyvault:" in config.read_text(encoding="utf-8")
    watch = FileWatch(config)
    # Workers prove a dead predecessor dead by its instance file; without a configured directory (PostgreSQL), they
    # register in one of this run's own.
    scratch = tempfile.TemporaryDirectory(prefix="s4s-workers-") if workers > 1 and not instance_directory(cfg) \
        else None
    private = Path(scratch.name) if scratch is not None else None
    # The workers' metric files: one directory for the whole run, so that counters go on across restarts of a
    # worker and of the pool (a reload that rebuilds it); wiped with the run.
    metrics_files = tempfile.TemporaryDirectory(prefix="s4s-metrics-") if workers > 1 else None

    async def main(stop: asyncio.Event) -> None:
        hup = asyncio.Event()
        with contextlib.suppress(NotImplementedError, AttributeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, hup.set)
        serving: list[Runtime] = []
        live: list[LiveReload] = []

        def errors() -> list[str | None]:
            return [p.runtime.health.error for p in serving[-1].connectors.values()] if serving else []

        def pool(runtime: Runtime) -> WorkerPool:
            shared = Path(metrics_files.name) if metrics_files is not None else None
            if shared is not None:
                runtime.metrics.include_workers(shared)
            return WorkerPool(config.resolve(), workers, health_finder(runtime), state_dir=private,
                              metrics_dir=shared)

        async def serve(cfg: Config, inner: asyncio.Event) -> None:
            await run_forever(cfg, inner, on_runtime=serving.append, on_live=live.append,
                              workers=pool if workers > 1 else None)

        async def apply(cfg: Config) -> bool:
            if not live:
                return False
            await live[-1].apply(cfg)
            return True

        # The first load is the one validated above; later ones re-read the file (and Key Vault).
        loads = iter([cfg])
        await run_reloading(lambda: next(loads, None) or load_config(config), serve, stop, hup,
                            refresh=lambda c: refresh_interval(c, uses_keyvault), auth=AuthWatch(errors),
                            apply=apply, file=watch)

    try:
        asyncio.run(_with_signals(main))
    finally:
        for directory in (scratch, metrics_files):
            if directory is not None:
                directory.cleanup()


@app.command(hidden=True)
def worker(config: ConfigOption,
           index: Annotated[int, typer.Option("--index", min=0, help="This worker's number, from 0.")],
           of: Annotated[int, typer.Option("--of", min=1, help="How many workers share the connectors.")],
           state_dir: Annotated[str | None, typer.Option(
               "--state-dir", help="Instance directory when the config names none.")] = None) -> None:
    """One worker process of `run --workers N` (started by it; wakes on stdin, health on stdout)."""
    from sentinel_signl4.worker_process import serve_partition

    if index >= of:
        typer.echo(f"--index must be below --of ({of})", err=True)
        raise typer.Exit(2)
    cfg = _load(config)
    uses_keyvault = "${keyvault:" in config.read_text(encoding="utf-8")

    async def main(stop: asyncio.Event) -> None:
        hup = asyncio.Event()
        with contextlib.suppress(NotImplementedError, AttributeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, hup.set)
        await serve_partition(config, cfg, index, of, stop, hup, uses_keyvault=uses_keyvault, state_dir=state_dir)

    asyncio.run(_with_signals(main))


@app.command()
def check(config: ConfigOption) -> None:
    """Check each connector's credentials, roles, workspace and SIGNL4 access; exit non-zero on any error."""
    from sentinel_signl4.checks import run_checks

    cfg = _load(config)
    ok = asyncio.run(run_checks(cfg, echo=typer.echo))
    raise typer.Exit(0 if ok else 1)


@app.command("webhook-url")
def webhook_url(
    config: ConfigOption,
    connector: Annotated[str, typer.Option("--connector", help="Name of the connector ([[connectors]] name).")],
) -> None:
    """Print the URL to register in SIGNL4 as the connector's outbound webhook.

    The URL CONTAINS THE SECRET webhook token (SIGNL4 cannot sign requests, so the token is in the URL). This is
    the only command that prints a secret: do not paste its output into tickets or chats.
    """
    from sentinel_signl4.web import WebhookUrlError
    from sentinel_signl4.web import webhook_url as build_webhook_url

    cfg = _load(config)
    try:
        url = build_webhook_url(cfg, connector)
    except WebhookUrlError as exc:
        typer.echo(f"Cannot build the webhook URL: {exc}", err=True)
        raise typer.Exit(2) from None
    # Only the URL on stdout, so that it can be piped; the hint goes to stderr.
    typer.echo(url)
    typer.echo("Register it in the SIGNL4 portal: Integrations → Gallery → \"Webhook (Outbound)\", "
               "Name: any, URL: the line above. It contains the connector's secret token.", err=True)
    if url.startswith("http://"):
        typer.echo("Warning: public_url is http://, so the token crosses the network in clear text; "
                   "put the server behind HTTPS.", err=True)


def _require_emulators(command: str) -> None:
    """``demo`` and ``emulate`` run on the emulators, a distribution of their own (the ``demo`` extra)."""
    try:
        import sentinel_signl4_emulators  # noqa: F401
    except ModuleNotFoundError as exc:
        if exc.name != "sentinel_signl4_emulators":
            raise
        typer.echo(f"`sentinel-signl4 {command}` needs the emulators, which are not installed: install "
                   "sentinel-signl4[demo] (from a clone: pip install -e ./emulators -e '.[demo]')", err=True)
        raise typer.Exit(2) from None


@app.command()
def demo(
    keep_running: Annotated[bool, typer.Option("--keep-running", help="Keep the emulators up at the end.")] = False,
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps its CA, config and database.")] = Path(".demo"),
    source: Annotated[SourceChoice, typer.Option(
        help="Where incidents come from: the Sentinel REST API or Defender XDR through Microsoft Graph.",
    )] = SourceChoice.SENTINEL,
) -> None:
    """Run the connector against emulated Azure and SIGNL4 over real HTTPS and narrate what happens."""
    _require_emulators("demo")
    from sentinel_signl4.demo import run_demo

    raise typer.Exit(asyncio.run(run_demo(workdir, keep_running=keep_running, echo=typer.echo,
                                          source=source.value)))


@app.command()
def emulate(
    port: Annotated[int, typer.Option(help="HTTPS port for the emulators.")] = 8443,
    workdir: Annotated[Path, typer.Option(help="Where to write the CA and a ready config.")] = Path(".emulate"),
) -> None:
    """Serve the emulators (Entra ID, Sentinel, SIGNL4) over HTTPS and print a config that points at them."""
    _require_emulators("emulate")
    from sentinel_signl4.emulate import serve

    serve(port, workdir, echo=typer.echo)


async def _with_signals(main: object) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    assert callable(main)
    await main(stop)


def main() -> None:
    app()
