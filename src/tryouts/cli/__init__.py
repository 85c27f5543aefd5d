"""The ``tryouts`` command: a Typer app, one module per command, Rich output.

Exit codes (docs/cli.md): 0 success; 1 bad usage or a Tryouts error (message says what to do);
2 some models failed (the others' results are stored); 130 interrupted.

Command modules import heavy code inside the command functions, so ``tryouts --help`` imports
neither torch nor any provider SDK.
"""

from __future__ import annotations

import os
import sys

import typer

from .._version import __version__

app = typer.Typer(
    name="tryouts",
    help="Put pre-trained AI models through the same drills: one prompt through API and local models, "
    "measured (TTFT, tokens/s, latency), costed and stored.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_ERROR, EXIT_MODEL_FAILED, EXIT_INTERRUPTED = 0, 1, 2, 130


def _version(value: bool) -> None:
    if value:
        print(f"tryouts {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """Tryouts: compare pre-trained models on the same prompts."""


# The import order is the order of the command groups in --help.
# isort: off
from . import compare as _compare  # noqa: E402,F401
from . import run as _run  # noqa: E402,F401
from . import init_cmd as _init_cmd  # noqa: E402,F401
from . import load as _load  # noqa: E402,F401
from . import ui as _ui  # noqa: E402,F401
from . import demo as _demo  # noqa: E402,F401
from . import runs as _runs  # noqa: E402,F401
from . import report as _report  # noqa: E402,F401
from . import baseline as _baseline  # noqa: E402,F401
from . import score as _score  # noqa: E402,F401
from . import eval_task as _eval_task  # noqa: E402,F401
from . import arena as _arena  # noqa: E402,F401
from . import models as _models  # noqa: E402,F401
from . import card as _card  # noqa: E402,F401
from . import memory as _memory  # noqa: E402,F401
from . import recommend as _recommend  # noqa: E402,F401
from . import providers as _providers  # noqa: E402,F401
from . import keys as _keys  # noqa: E402,F401
# isort: on


def _interrupt_held_runs() -> None:
    """Mark every run this process was still running as interrupted, and say how to resume a suite run."""
    store = sys.modules.get("tryouts.store")
    if store is None:  # nothing was stored
        return
    for run_id, kind in store.interrupt_held_runs():
        hint = f" Resume with: tryouts run --resume {run_id}" if kind == "suite" else ""
        print(f"Run {run_id} is marked interrupted; its results so far are kept.{hint}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tryouts`` console script."""
    import signal

    from ..errors import TryoutsError

    def on_sigterm(signum: int, frame: object) -> None:  # SIGTERM (kill, a CI timeout) ends work as Ctrl-C does
        raise KeyboardInterrupt

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        code = app(args=argv, prog_name="tryouts", standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        print("Interrupted.", file=sys.stderr)
        _interrupt_held_runs()
        code = EXIT_INTERRUPTED
    except typer.exceptions.TyperException as exc:  # usage errors from the (vendored) click layer
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        no_args_help = type(exc).__name__ == "NoArgsIsHelpError"
        code = EXIT_OK if no_args_help else EXIT_ERROR
    except TryoutsError as exc:
        from rich.text import Text

        from .render import SafeConsole

        # the message may quote a file, a URL or a server's words: text, never markup, emoji codes or terminal
        # control codes (SafeConsole); never broken into lines by us (soft_wrap), so a path or a command in it
        # can be copied whole
        SafeConsole(stderr=True, markup=False).print(Text.assemble(("Error:", "bold red"), " ", exc.message),
                                                     highlight=False, soft_wrap=True)
        code = EXIT_ERROR
    except Exception as exc:  # a bug, or a row of a results database someone edited: one line, never a traceback
        if os.environ.get("TRYOUTS_DEBUG"):
            raise
        print(f"Error: {unexpected(exc)}", file=sys.stderr)
        _interrupt_held_runs()  # what was recorded stays; a suite run can be resumed
        code = EXIT_ERROR
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def unexpected(exc: BaseException) -> str:
    """What to say of an exception no part of Tryouts expected: its type and where it was raised (never its
    text, which may quote a stored value), and what to do."""
    from ..errors import raised_at

    return (f"Tryouts stopped on an unexpected {type(exc).__name__} at {raised_at(exc)}. If the command read "
            "stored runs, a row of the results database may be malformed (edited by someone or something else); "
            "otherwise this is a bug in Tryouts. Run it again with TRYOUTS_DEBUG=1 to see the traceback, and "
            "report it.")
