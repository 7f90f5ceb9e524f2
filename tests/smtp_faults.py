"""A fault-injecting SMTP server on 127.0.0.1 (aiosmtpd, STARTTLS when given a certificate).

`FaultyInbox` is an aiosmtpd handler that keeps every message it accepts, like test_deliver_smtp's Inbox,
and fails on purpose where a test asks it to:
- `greeting`: what the next connections get instead of "220": "drop" (closed before any greeting) or a
  reply such as "421 4.3.2 try later" (then closed); one list item per connection;
- `drop`: {phase: how many connections} to drop at that phase (math.inf: every connection):
  "rcpt" (at the first RCPT TO), "data" (at the DATA command, before "354": nothing sent yet),
  "after_data" (the whole message received and KEPT, then the connection dropped with no reply: the
  client cannot know it was delivered), "after_data_lost" (the same, but the message is lost),
  "quit" (at QUIT, after the message was accepted with "250");
- `greylist`: recipients answered "450 4.2.0 greylisted" at RCPT TO while they are listed;
- `hold`: a threading.Event; a message is not answered until it is set (`arrived` is set meanwhile),
  so a test can see what a second delivery does while the first one is in the middle of its send.
`received()` counts the copies each recipient got. Faults count only after `start()` (aiosmtpd opens
one connection of its own to check that the server is up).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from test_deliver_smtp import HOST, Inbox, free_port

EVERY = math.inf
GREYLISTED = "450 4.2.0 greylisted, try again later"


def _drop(server: SMTP) -> None:
    """Cut the TCP connection at once (under STARTTLS too), as a crashed server or a broken network would."""
    transport = getattr(server, "_original_transport", None) or server.transport
    transport.abort()


class FaultyInbox(Inbox):
    def __init__(self, *, greeting: list[str] | None = None, drop: dict[str, float] | None = None,
                 greylist: set[str] | None = None, hold: threading.Event | None = None, **kw):
        super().__init__(**kw)
        self.greeting = list(greeting or [])
        self.drop = dict(drop or {})
        self.greylist = set(greylist or ())
        self.hold = hold
        self.arrived = threading.Event()
        self.connections = 0
        self.armed = False
        self.lock = threading.Lock()

    def take(self, phase: str) -> bool:
        """True (and one fewer to go) when this connection is to be dropped at `phase`."""
        with self.lock:
            left = self.drop.get(phase, 0)
            if not self.armed or left <= 0:
                return False
            self.drop[phase] = left - 1
            return True

    def on_connect(self) -> str | None:
        with self.lock:
            if not self.armed:
                return None
            self.connections += 1
            return self.greeting.pop(0) if self.greeting else None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.take("rcpt"):
            _drop(server)
            return "250 OK"
        if address in self.greylist:
            return GREYLISTED
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        self.arrived.set()
        while self.hold is not None and not self.hold.is_set():
            await asyncio.sleep(0.02)
        if self.take("after_data_lost"):
            self.data_calls += 1
            _drop(server)
            return "250 OK"
        if self.take("after_data"):
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            self.data_calls += 1
            _drop(server)
            return "250 OK"   # never reaches the client: the connection is gone
        return await super().handle_DATA(server, session, envelope)

    async def handle_QUIT(self, server, session, envelope):
        if self.take("quit"):
            _drop(server)
        return "221 Bye"

    def received(self) -> collections.Counter:
        """Copies received per recipient address."""
        return collections.Counter(r for _, rcpts, _ in self.messages for r in rcpts)


class FaultySMTP(SMTP):
    async def _handle_client(self) -> None:
        fault = self.event_handler.on_connect()
        if fault is None:
            return await super()._handle_client()
        if fault != "drop":
            await self.push(fault)
        self.transport.close()

    async def smtp_DATA(self, arg: str) -> None:
        if self.envelope is not None and self.envelope.rcpt_tos and self.event_handler.take("data"):
            _drop(self)
            return
        await super().smtp_DATA(arg)


class FaultyController(Controller):
    def factory(self) -> SMTP:
        return FaultySMTP(self.handler, **self.SMTP_kwargs)


@contextlib.contextmanager
def faulty_server(inbox: FaultyInbox, **kwargs):
    """A running fault-injecting server on 127.0.0.1; yields its port."""
    port = free_port()
    ctl = FaultyController(inbox, hostname=HOST, port=port, **kwargs)
    ctl.start()
    inbox.armed = True
    try:
        yield port
    finally:
        ctl.stop()
