"""Result: what a command returns to the shell (text exactly as the real tool prints it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    """Output of one command.

    Attributes:
        out: text for stdout.
        err: text for stderr (error lines in the real tool's style).
        code: exit status (0 success).
        changed: True when the command changed the switch and the state must be saved.
    """

    out: str = ""
    err: str = ""
    code: int = 0
    changed: bool = False
