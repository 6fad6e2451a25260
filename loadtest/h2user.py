"""``locust -f loadtest/h2user.py``: the HTTP/2 locust user on the lab's sans-IO client (the code: ``loadtest/users/h2.py``).

A thin file so that the command stays short: locust loads it by path, it makes the checkout importable and
takes the user classes from the ``loadtest.users`` package.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # loaded by ``locust -f loadtest/h2user.py``: make the lab importable
    sys.path.insert(0, _ROOT)

from loadtest.users.h2 import H2User, H2Error, client_tls_context  # noqa: E402

__all__ = ['H2User', 'H2Error', 'client_tls_context']
