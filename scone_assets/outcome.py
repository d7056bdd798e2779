"""Exit codes a script can trust, shared by every `scone` command.

0: everything asked for was done. 1: some units or light curves failed, the
rest were done (each failure named). 2: a config or usage error, or nothing to
do. 130: interrupted (Ctrl-C); 143: terminated (SIGTERM).
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    PARTIAL = 1
    USAGE = 2
    INTERRUPTED = 130
    TERMINATED = 143


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that `finally` blocks stop workers and
    remove temporary files, as for Ctrl-C."""
