"""Real XMPP clients (slixmpp, Debian's python3-slixmpp) driven from
synchronous tests: every client lives on one asyncio loop in a background
thread, and each method blocks until the server has answered, with a deadline.
"""

import asyncio
import atexit
import ssl
import threading
import time
from dataclasses import dataclass, field

import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

DEADLINE = 20  # seconds for any single network step

# The namespace of the module's notices (DESIGN.md "Waiting line", "Routing").
NOTICE_NS = "urn:xmpp:clicktochat:0"
NOTICE_KINDS = ("waiting", "assigned", "visitor", "passed_on")


def _optional_int(value):
    """An integer attribute that may be left out: None when absent; a value
    that is not a non-negative decimal integer raises ValueError (in the test
    that reads it, not on the client's loop)."""
    if value is None:
        return None
    if not value.isdigit() or not value.isascii():
        raise ValueError(f"not a non-negative integer: {value!r}")
    return int(value)


@dataclass(frozen=True)
class Notice:
    """A message of the module carrying one `urn:xmpp:clicktochat:0` payload:
    kind is the payload's element name (waiting, assigned, visitor,
    passed_on), attrs its attributes; sender, type and body those of the
    message; at, the monotonic time it was received."""
    kind: str
    attrs: dict = field(default_factory=dict)
    sender: str = ""
    type: str = ""
    body: str = ""
    at: float = 0.0

    # <waiting position='P' estimated_wait='S'/> (either may be left out)
    @property
    def position(self):
        return _optional_int(self.attrs.get("position"))

    @property
    def estimated_wait(self):
        return _optional_int(self.attrs.get("estimated_wait"))

    # <assigned agent='a@helpdesk'/>
    @property
    def agent(self):
        return self.attrs.get("agent")

    # <visitor jid='v@clients' reason='from_line' | 'passed_on'/>
    @property
    def jid(self):
        return self.attrs.get("jid")

    @property
    def reason(self):
        return self.attrs.get("reason")

    # <passed_on visitor='v@clients' to='b@helpdesk'/>
    @property
    def visitor(self):
        return self.attrs.get("visitor")

    @property
    def to(self):
        return self.attrs.get("to")


def parse_notice(message, at=0.0):
    """The Notice a message element ({jabber:client}message, an
    ElementTree element) carries, or None when it has no element in
    NOTICE_NS. Several such elements: ValueError (the contract has one)."""
    payloads = [child for child in message if child.tag.startswith(f"{{{NOTICE_NS}}}")]
    if not payloads:
        return None
    if len(payloads) > 1:
        raise ValueError(f"more than one {NOTICE_NS} payload: {[p.tag for p in payloads]}")
    payload = payloads[0]
    return Notice(kind=payload.tag.split("}", 1)[1], attrs=dict(payload.attrib),
                  sender=message.get("from", ""), type=message.get("type", "normal"),
                  body=message.findtext("{jabber:client}body") or "", at=at)


class Notices:
    """The notices one client received: `log`, every one in arrival order
    (kept, for checks over a whole history), and a queue that next() and
    expect() consume. Filled on the client's loop, read from the test."""

    def __init__(self):
        self.log = []
        self.queue = asyncio.Queue()
        self._lock = threading.Lock()

    def add(self, notice):
        with self._lock:
            self.log.append(notice)
        self.queue.put_nowait(notice)

    def history(self, kind=None):
        with self._lock:
            return [n for n in self.log if kind is None or n.kind == kind]

    async def next(self):
        return await self.queue.get()

    async def expect(self, kind, attrs):
        """Consumes notices until one of `kind` whose attributes include
        `attrs` (values compared as strings); the skipped ones stay in log."""
        wanted = {k: str(v) for k, v in attrs.items()}
        while True:
            notice = await self.queue.get()
            if notice.kind == kind and all(notice.attrs.get(k) == v for k, v in wanted.items()):
                return notice


def route_message(message, messages, notices):
    """Where the client files a received message: a module notice (a message
    with a NOTICE_NS payload, whatever its type) into `notices`; an error into
    `messages`; any other message into `messages`. Returns "notice" or
    "message". A payload the contract does not allow (two of them) is filed
    as a notice of kind "invalid", for the test to see (an exception here
    would be swallowed by slixmpp's event loop)."""
    try:
        notice = parse_notice(message.xml, time.monotonic())
    except ValueError as error:
        notice = Notice(kind="invalid", attrs={"error": str(error)},
                        sender=str(message["from"]), type=message["type"], at=time.monotonic())
    if notice is not None and message["type"] != "error":
        notices.add(notice)
        return "notice"
    messages.put_nowait(message)
    return "message"


class _Loop:
    """The one event loop all clients share."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        atexit.register(self.close)

    def close(self):
        """Cancels what slixmpp left running (stream filters of closed
        clients), so that the loop ends cleanly when the tests do."""
        async def cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)

    def run(self, coroutine, timeout=DEADLINE):
        future = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(coroutine, timeout), self.loop)
        return future.result(timeout + 5)


_LOOP = None


def _loop():
    global _LOOP
    if _LOOP is None:
        _LOOP = _Loop()
    return _LOOP


class Client:
    """A logged-in XMPP client over a real TCP socket to 127.0.0.1: plain
    TCP, or with `starttls` STARTTLS (required by Debian's stock
    configuration; the package's certificate is self-signed, so it is not
    verified)."""

    def __init__(self, jid, password, port, show=None, presence=True, starttls=False,
                 mechanism=None):
        self.jid = jid
        self.loop = _loop()
        self.messages = None
        self.xmpp = None
        self.loop.run(self._connect(jid, password, port, show, presence, starttls, mechanism))
        # The SASL mechanism the login used (slixmpp picks the strongest
        # offered unless told `mechanism`).
        self.mechanism = self.xmpp["feature_mechanisms"].mech.name

    async def _connect(self, jid, password, port, show, presence, starttls, mechanism):
        self.messages = asyncio.Queue()
        self.notices = Notices()
        self.presence_errors = asyncio.Queue()
        self.carbons = asyncio.Queue()
        xmpp = slixmpp.ClientXMPP(jid, password)
        # Loopback test server without TLS: allow SASL PLAIN in the clear.
        xmpp["feature_mechanisms"].unencrypted_plain = True
        if mechanism:
            xmpp["feature_mechanisms"].use_mech = mechanism
        self.xmpp = xmpp
        started = asyncio.get_running_loop().create_future()
        xmpp.add_event_handler("session_start", lambda _: started.done() or started.set_result(True))
        xmpp.add_event_handler(
            "failed_auth", lambda _: started.done() or started.set_exception(
                PermissionError(f"authentication failed for {jid}")))
        xmpp.add_event_handler(
            "connection_failed", lambda e: started.done() or started.set_exception(
                ConnectionError(f"connection failed for {jid}: {e}")))
        # An error with a body fires both events: take errors from one only.
        # The module's notices (headlines with a NOTICE_NS payload) go to
        # self.notices, not to receive().
        xmpp.add_event_handler(
            "message", lambda m: m["type"] == "error" or route_message(
                m, self.messages, self.notices))
        xmpp.add_event_handler("message_error", self.messages.put_nowait)
        xmpp.add_event_handler("presence_error", self.presence_errors.put_nowait)
        # Carbons have no body of their own: no "message" event.
        for direction in ("sent", "received"):
            xmpp.register_handler(Callback(f"carbon {direction}", MatchXPath(
                f"{{jabber:client}}message/{{urn:xmpp:carbons:2}}{direction}"),
                self.carbons.put_nowait))
        if starttls:
            xmpp.ssl_context.check_hostname = False
            xmpp.ssl_context.verify_mode = ssl.CERT_NONE
        xmpp.connect(address=("127.0.0.1", port), disable_starttls=not starttls,
                     force_starttls=starttls, use_ssl=False)
        await started
        if presence:
            await self._presence(show)

    async def _presence(self, show):
        if show is None:
            self.xmpp.send_presence()
        else:
            self.xmpp.send_presence(pshow=show)
        await self._barrier()

    async def _barrier(self):
        """The server handles a client's stanzas in order: once it answers an
        IQ sent after a presence, that presence's hooks have run."""
        iq = self.xmpp.make_iq_get(queryxmlns="urn:xmpp:ping", ito=self.xmpp.boundjid.domain)
        try:
            await iq.send(timeout=DEADLINE)
        except slixmpp.exceptions.IqError:
            pass  # an error reply is still a reply

    def barrier(self):
        """Returns once everything the server routed to this client before
        now has been received (the server answers a ping after it)."""
        self.loop.run(self._barrier())

    def pending_messages(self):
        """Messages received and not yet taken by receive()."""
        return self.messages.qsize()

    def send_presence(self, to, ptype=None):
        async def send():
            self.xmpp.send_presence(pto=to, ptype=ptype)
            await self._barrier()
        self.loop.run(send())

    def presence_error(self, timeout=DEADLINE):
        """The next presence error: (from, error condition)."""
        async def receive():
            presence = await self.presence_errors.get()
            return str(presence["from"]), presence["error"]["condition"]
        return self.loop.run(receive(), timeout)

    def iq(self, to, itype, payload):
        """Sends an IQ with an XML payload; (type, error condition or None)."""
        async def send():
            iq = self.xmpp.make_iq(ito=to, itype=itype)
            iq.append(ET.fromstring(payload))
            try:
                reply = await iq.send(timeout=DEADLINE)
                return reply["type"], None
            except slixmpp.exceptions.IqError as error:
                return "error", error.iq["error"]["condition"]
        return self.loop.run(send())

    def set_show(self, show):
        """show: None (available), 'chat', 'away', 'xa' or 'dnd'."""
        self.loop.run(self._presence(show))

    def go_unavailable(self):
        async def unavailable():
            self.xmpp.send_presence(ptype="unavailable")
            await self._barrier()
        self.loop.run(unavailable())

    def send(self, to, body, mtype="chat"):
        async def send():
            self.xmpp.send_message(mto=to, mbody=body, mtype=mtype)
            await self._barrier()
        self.loop.run(send())

    def receive(self, timeout=DEADLINE):
        """The next message with a body, or error (chat states etc. are skipped)."""
        async def receive():
            while True:
                message = await self.messages.get()
                if message["body"] or message["type"] == "error":
                    return message
        return self.loop.run(receive(), timeout)

    def next_notice(self, timeout=DEADLINE):
        """The next module notice received (a Notice), in arrival order."""
        return self.loop.run(self.notices.next(), timeout)

    def expect_notice(self, kind, timeout=DEADLINE, **attrs):
        """The next notice of `kind` whose attributes include `attrs`
        (e.g. expect_notice("waiting", position=1)); notices of other kinds or
        attributes received before it are skipped (they stay in
        notice_history())."""
        return self.loop.run(self.notices.expect(kind, attrs), timeout)

    def notice_history(self, kind=None):
        """Every notice received so far (of `kind`), in arrival order."""
        return self.notices.history(kind)

    def pending_notices(self):
        """Notices received and not yet taken by next_notice()/expect_notice()."""
        return self.notices.queue.qsize()

    def receive_carbon(self, timeout=DEADLINE):
        """The next carbon copy (XEP-0280) received: ('sent' or 'received',
        the copied message's from, to and body)."""
        async def receive():
            message = await self.carbons.get()
            for direction in ("sent", "received"):
                copy = message.xml.find(f"{{urn:xmpp:carbons:2}}{direction}/"
                                        "{urn:xmpp:forward:0}forwarded/{jabber:client}message")
                if copy is not None:
                    return (direction, copy.get("from"), copy.get("to"),
                            copy.findtext("{jabber:client}body"))
        return self.loop.run(receive(), timeout)

    def disconnect(self):
        async def disconnect():
            if self.xmpp.is_connected():
                await self.xmpp.disconnect()
        self.loop.run(disconnect())
