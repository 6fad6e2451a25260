"""``locust -f loadtest/h1user.py``: the HTTP/1.1 locust user (the code: ``loadtest/users/h1.py``).

A thin file so that the command stays short: locust loads it by path, it makes the checkout importable and
takes the user classes from the ``loadtest.users`` package.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # loaded by ``locust -f loadtest/h1user.py``: make the lab importable
    sys.path.insert(0, _ROOT)

from loadtest.users.h1 import LabUser, H1Error, WORKLOADS, FALLBACK_STATIC, static_links  # noqa: E402

__all__ = ['LabUser', 'H1Error', 'WORKLOADS', 'FALLBACK_STATIC', 'static_links']
