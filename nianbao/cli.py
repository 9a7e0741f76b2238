"""``nianbao`` command line. Each group of commands lives in its own module and registers here."""
from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Digitize 政府信息公开工作年度报告 tables into canonical, checked fields.")


@app.callback()
def root() -> None:
    """nianbao: digitize government-information-disclosure annual reports."""


def _register() -> None:
    from . import cli_extract, cli_service, cli_archive
    for module in (cli_extract, cli_service, cli_archive):
        module.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
