"""``python -m loadtest.sessionbench``: the micro-benchmark of the engines' shared session code
(the code: ``loadtest/micro/sessionbench.py``; this file keeps the command short)."""

import sys

from loadtest.micro.sessionbench import *  # noqa: F401,F403
from loadtest.micro.sessionbench import __all__, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
