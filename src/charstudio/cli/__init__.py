"""The ``charstudio`` command line: a thin layer over :mod:`charstudio.services`.

Each command parses its options, makes one service call and renders the result. Errors
are mapped to exit codes in :func:`main` only: usage errors exit 2, failures exit 1.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from charstudio import __version__
from charstudio.cli import character, dataset, db, faces, jobs, lora, qc, setup
from charstudio.cli.accept import accept
from charstudio.cli.console import Console
from charstudio.cli.context import CliState
from charstudio.cli.demo import demo
from charstudio.cli.generate import generate
from charstudio.cli.lab import report, tune
from charstudio.cli.options import flag
from charstudio.cli.quiet import quiet_third_party
from charstudio.cli.serve import serve, worker
from charstudio.cli.train import train
from charstudio.cli.workflow import workflow
from charstudio.config import EnvVars, load_settings
from charstudio.errors import FULL_DISK_ERRNOS, CharstudioError, storage_error_from

__all__ = ["app", "debug_enabled", "main"]

app = typer.Typer(
    name="charstudio",
    help="Keep a character's identity consistent across generated images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("init")(setup.init)
app.command("demo")(demo)
app.command("generate")(generate)
app.command("workflow")(workflow)
app.command("accept")(accept)
app.add_typer(character.app, name="character")
app.add_typer(faces.app, name="faces")
app.add_typer(qc.app, name="qc")
app.command("tune")(tune)
app.command("report")(report)
app.add_typer(dataset.app, name="dataset")
app.command("train")(train)
app.add_typer(lora.app, name="lora")
app.command("serve")(serve)
app.command("worker")(worker)
app.add_typer(jobs.app, name="jobs")
app.add_typer(db.app, name="db")


def _version(value: bool) -> None:
    if value:
        Console().info(f"charstudio {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        str | None,
        typer.Option(
            "--home",
            envvar=EnvVars.HOME,
            help="Data root (database, references, LoRAs, outputs). Default ./charstudio-data.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        flag("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """charstudio: character LoRA + IP-Adapter, ComfyUI or diffusers, identity checks."""
    ctx.obj = CliState(home=home)
    ctx.call_on_close(ctx.obj.close)


def debug_enabled() -> bool:
    """``Settings.debug``: ``CHARSTUDIO_DEBUG`` (``1``/``true``; ``0``/``false`` is off) or
    ``debug = true`` in charstudio.toml. Off when the settings themselves are invalid: that
    error is reported by the command that loads them."""
    try:
        return load_settings().debug
    except CharstudioError:
        return False


def main() -> None:
    """Entry point: run the app and turn charstudio errors into one line and an exit code.

    Typer itself handles ``--help``, usage errors (exit 2) and ``typer.Exit``.
    """
    debug = debug_enabled()
    quiet_third_party(debug=debug)
    try:
        app()
    except CharstudioError as exc:
        Console().error(str(exc))
        if debug:
            raise
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        Console().error("interrupted; nothing half-written was kept")
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        if isinstance(exc, OSError) and exc.errno in FULL_DISK_ERRNOS:
            error = storage_error_from(exc, exc.filename)  # a write outside the store's helpers
            Console().error(str(error))
            sys.exit(error.exit_code)
        Console().error(
            f"internal error: {exc.__class__.__name__}: {exc} "
            f"(set {EnvVars.DEBUG}=1 for the traceback, and please report it)"
        )
        sys.exit(1)
