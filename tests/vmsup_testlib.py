# SPDX-License-Identifier: LGPL-2.1-or-later
"""What the Python tests share: the suite's timeout multiplier, a failure
that names what did not hold, and vmsup's exit codes (src/cli/vmsup-cli.h)."""

import os

MULTIPLIER = float(os.environ.get("VMSUP_TEST_TIMEOUT_MULTIPLIER", "1"))

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_INVALID_ARGUMENT = 5
EXIT_FAILED_PRECONDITION = 7
EXIT_NO_DAEMON = 10


class Failure(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
