"""Real XMPP clients (slixmpp, Debian's python3-slixmpp) driven from
synchronous tests: every client lives on one asyncio loop in a background
thread, and each method blocks until the server has answered, with a deadline.
"""

import asyncio
import atexit
import ssl
import threading

import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

DEADLINE = 20  # seconds for any single network step


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

    def __init__(self, jid, password, port, show=None, presence=True, starttls=False):
        self.jid = jid
        self.loop = _loop()
        self.messages = None
        self.xmpp = None
        self.loop.run(self._connect(jid, password, port, show, presence, starttls))

    async def _connect(self, jid, password, port, show, presence, starttls):
        self.messages = asyncio.Queue()
        self.presence_errors = asyncio.Queue()
        self.carbons = asyncio.Queue()
        xmpp = slixmpp.ClientXMPP(jid, password)
        # Loopback test server without TLS: allow SASL PLAIN in the clear.
        xmpp["feature_mechanisms"].unencrypted_plain = True
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
        xmpp.add_event_handler(
            "message", lambda m: m["type"] == "error" or self.messages.put_nowait(m))
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
