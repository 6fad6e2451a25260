"""The per-protocol glue: what a :class:`engines.session.Session` does differently for HTTP/1.x and
for HTTP/2, written here once per protocol, behind one interface, so that the session, the
exchanges and the engines never branch on the protocol themselves.

The session picks the glue once per connection, with its protocol object (ALPN, the client
preface, ``--http``), and swaps it when an HTTP/1.1 connection upgrades to h2c (RFC 7540 §3.2, as
RFC 9113 §3.1 still describes). hypercorn's ``ProtocolWrapper`` (H11 or H2, chosen once, swapped on
upgrade) is the model.

What the engines see of it is one fact about scheduling, :attr:`Glue.in_order`: HTTP/1.x serves a
connection's requests one after another in the order they came (pipelining, RFC 9112 §9.3), so a
request waiting unread in the socket is the next one; HTTP/2's streams run concurrently, each task
may be a job of its own, and the connection stays open until its two-step GOAWAY is written
(RFC 9113 §6.8).
"""

from __future__ import annotations

from typing import Any

from protocol.errors import ErrorCode
from protocol.h2_connection import H2Connection
from protocol.http1 import H1Connection

from .tasks import http_date

__all__ = ["Glue", "H1Glue", "H2Glue", "H1", "H2"]


class Glue:
    """One protocol's policies (the base: the interface). Stateless: one shared instance per
    protocol (:data:`H1`, :data:`H2`); a session's per-connection state stays in the session.

    The ``session`` argument of the methods is an ``engines.session.Session``: its ``conn`` (the
    protocol object), ``config``, ``last_activity``, ``last_exchange``, ``head_started``,
    ``partial_since`` and ``close_now()``.
    """

    #: requests are served one after another in arrival order (HTTP/1.x); False: concurrent streams
    in_order = True
    #: a request may pin the connection's certificate against its authority (HTTP/2 + TLS: 421)
    checks_authority = False
    #: a response body may leave by ``os.sendfile`` (HTTP/1.x on plain TCP)
    sendfile = False

    def start(self, conn: Any) -> None:
        """The protocol object is new: prime it."""

    def before_receive(self, conn: Any) -> None:
        """Bytes are about to be fed to ``conn``."""

    def idle_timeouts(self, session: Any, now: float) -> bool:
        """Timeouts of a connection with no request in flight (``now``: ``time.monotonic()`` s);
        True: flush what ``conn`` queued, then close."""
        raise NotImplementedError

    def send_stalled(self, session: Any, now: float) -> bool:
        """A response has waited for a flow-control window longer than ``--send-timeout``:
        end the connection (True) or not (False)."""
        return False

    def body_timed_out(self, conn: Any) -> None:
        """A request body came too slowly (``--body-timeout``, ``--body-min-rate``): queue the answer."""
        raise NotImplementedError

    def closes_when_idle_on_shutdown(self) -> bool:
        """On a graceful stop, whether a connection with nothing in flight closes at once."""
        return True

    def body_check(self, exchange: Any, request: Any, expect_continue: bool) -> None:
        """A request whose body is still to come: set ``exchange.check`` (the app may refuse
        it before reading, RFC 9110 §10.1.1) and ``exchange.expect_continue``."""
        raise NotImplementedError

    def after_exchange(self, session: Any, conn: Any, request: Any, refused: bool, complete: bool) -> None:
        """A response is complete (under the session lock)."""

    def send_external(self, conn: Any, stream_id: int, count: int) -> bool:
        """Account for ``count`` body bytes the engine writes itself (``os.sendfile``); False: the
        body must go through ``send_data`` instead."""
        return False


class H1Glue(Glue):
    """HTTP/1.x (RFC 9112): one request at a time, a ``Date`` per read, 408 on timeouts,
    ``Connection: close`` on drain, the next pipelined request parsed after each response."""

    in_order = True
    sendfile = True

    def start(self, conn: H1Connection) -> None:
        conn.set_date(http_date())

    def before_receive(self, conn: H1Connection) -> None:
        conn.set_date(http_date())

    def idle_timeouts(self, session: Any, now: float) -> bool:
        c, conn = session.config, session.conn
        if conn.awaiting_head_bytes:  # a request head begun: --header-timeout, then 408
            start = session.head_started or session.last_activity
            if now - start > c.header_timeout:
                conn.set_date(http_date())
                conn.send_timeout_error()
                return True
            return False
        return now - session.last_activity > c.keepalive_timeout

    def body_timed_out(self, conn: H1Connection) -> None:
        conn.set_date(http_date())
        conn.send_timeout_error("request body not received in time")

    def body_check(self, exchange: Any, request: Any, expect_continue: bool) -> None:
        exchange.check = expect_continue or request.header("expect") is not None

    def send_external(self, conn: H1Connection, stream_id: int, count: int) -> bool:
        return conn.send_data_external(stream_id, count)

    def after_exchange(self, session: Any, conn: H1Connection, request: Any, refused: bool, complete: bool) -> None:
        if not conn.closed:
            events = conn.next_events()
            if events:
                session.handle_events(events)


class H2Glue(Glue):
    """HTTP/2 (RFC 9113): concurrent streams; GOAWAY(ENHANCE_YOUR_CALM) on timeouts and on a
    window left at zero; the two-step GOAWAY on drain; 421 for an authority the certificate does
    not cover; a refused body's stream reset with NO_ERROR (§8.1)."""

    in_order = False
    checks_authority = True

    def idle_timeouts(self, session: Any, now: float) -> bool:
        # A frame or header block left partial for --header-timeout (slowloris), or no request
        # for --keepalive-timeout (frames such as PING do not count).
        c, conn = session.config, session.conn
        if conn.awaiting_frame_bytes:
            if session.partial_since is None:
                session.partial_since = now
            elif now - session.partial_since > c.header_timeout:
                conn.close_connection(ErrorCode.ENHANCE_YOUR_CALM, "request head timeout")
                return True
        else:
            session.partial_since = None
        if now - session.last_exchange > c.keepalive_timeout:
            conn.close_connection(ErrorCode.NO_ERROR)
            return True
        return False

    def send_stalled(self, session: Any, now: float) -> bool:
        limit = session.config.send_timeout
        if any(st.blocked_since is not None and now - st.blocked_since > limit for st in session.exchanges()):
            session.conn.close_connection(ErrorCode.ENHANCE_YOUR_CALM, "send timeout: window left at zero")
            return True
        return False

    def body_timed_out(self, conn: H2Connection) -> None:
        conn.close_connection(ErrorCode.ENHANCE_YOUR_CALM, "request body timeout")

    def closes_when_idle_on_shutdown(self) -> bool:
        return False  # the two-step GOAWAY goes out first; the engine closes once it is written

    def body_check(self, exchange: Any, request: Any, expect_continue: bool) -> None:
        exchange.check = True
        expect = request.header("expect")
        exchange.expect_continue = expect is not None and expect.lower() == "100-continue"

    def after_exchange(self, session: Any, conn: H2Connection, request: Any, refused: bool, complete: bool) -> None:
        if refused and not complete:  # refused before the body came: ask the client to stop sending it
            conn.reset_stream(request.stream_id, ErrorCode.NO_ERROR)


#: the one instance of each
H1 = H1Glue()
H2 = H2Glue()
