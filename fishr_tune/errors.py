"""User-facing errors.

Every bad input a user can cause (unknown dataset, missing file, impossible hparam, ...) raises
:class:`UserError`. The command-line entry points catch it, print its message as ONE line and exit
with status 2, so a message must say what is wrong and how to fix it.
"""


import argparse


class UserError(Exception):
    """A bad input by the user: message is one line naming the problem and the fix."""


class CLIParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are the project's one-line UserErrors.

    argparse itself prints a usage block plus the message and exits; a CLI run through
    :func:`exit_status` then prints one ``error: ...`` line and exits with status 2 instead.
    """

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


def one_line(message: str) -> str:
    """Collapse a message to a single line (CLIs print exactly one line per error)."""
    return " ".join(str(message).split())


def exit_status(command, *args) -> int:
    """Run a CLI body; a UserError becomes one ``error: ...`` line on stderr and status 2."""
    import sys

    try:
        return command(*args)
    except UserError as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
