"""``locust -f loadtest/httpxuser.py``: the locust user built on httpx (http2=True), the h2user's yardstick (the code: ``loadtest/users/via_httpx.py``).

A thin file so that the command stays short: locust loads it by path, it makes the checkout importable and
takes the user class from the ``loadtest.users`` package.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # loaded by ``locust -f loadtest/httpxuser.py``: make the lab importable
    sys.path.insert(0, _ROOT)

from loadtest.users.via_httpx import HttpxH2User  # noqa: E402

__all__ = ['HttpxH2User']
