"""The lab's application: requests and responses without sockets, a router, static files, metrics.

``create_app(www_dir, data_dir)`` builds what every engine (and, through :mod:`app.asgi`, uvicorn
and hypercorn) hosts; ``await app.handle(request)`` answers one request.
"""

from .effects import Effect, Sleep, wait
from .lab import create_app
from .messages import Body, ConnectionInfo, FileBody, HTTPError, Request, Response
from .metrics import Metrics
from .routing import App

__all__ = ["App", "Request", "Response", "FileBody", "Body", "HTTPError", "ConnectionInfo", "Effect",
           "Sleep", "wait", "create_app", "Metrics"]
