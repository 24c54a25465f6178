"""Small helpers shared by tests: parsing CLI command lines with the real CLI."""

from __future__ import annotations


def parse_cli(argv: list[str]) -> dict[str, object]:
    """Parse a `pigeonhole ...` command line with the real CLI, without running it.

    Walks the command groups as Click would, then builds the leaf command's context: an unknown
    command or option, or a value of the wrong type, raises Click's usage error. Returns the
    parsed parameters of the leaf command.
    """
    from typer.main import get_command

    from pigeonhole.cli import app

    assert argv[0] == "pigeonhole", argv
    command, name, args = get_command(app), argv[0], list(argv[1:])
    while hasattr(command, "resolve_command"):  # a group: find the subcommand
        context = command.make_context(name, args)
        found_name, found, args = command.resolve_command(context, [*context._protected_args, *context.args])
        assert found is not None and found_name is not None, argv
        command, name = found, found_name
    return dict(command.make_context(name, args).params)
