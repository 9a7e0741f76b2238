"""Commands of this group register themselves on the main Typer app."""
import typer


def register(app: typer.Typer) -> None:
    """No commands yet."""
