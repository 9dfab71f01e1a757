"""Minimal synchronous XMPP clients for what slixmpp does not do here:
WebSocket (RFC 7395, ejabberd's /ws), BOSH (XEP-0124/0206, /bosh), and TCP
with STARTTLS and stream management (XEP-0198) whose drop and resumption a
test drives step by step. Debian's /usr/bin/python3: the standard library
and python3-websockets.

Each client logs in with SASL SCRAM-SHA-1 (checking the server's signature
too), binds a resource and sends its presence. Every wait has a deadline.
"""

import asyncio
import base64
import hashlib
import hmac
import http.client
import itertools
import os
import socket
import ssl
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections import namedtuple
from xml.sax.saxutils import escape, quoteattr

import websockets.client
import websockets.exceptions

DEADLINE = 20  # seconds for any single network step

CLIENT = "jabber:client"
STREAM = "http://etherx.jabber.org/streams"
TLS = "urn:ietf:params:xml:ns:xmpp-tls"
SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
BIND = "urn:ietf:params:xml:ns:xmpp-bind"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"
SM = "urn:xmpp:sm:3"
FRAMING = "urn:ietf:params:xml:ns:xmpp-framing"
HTTPBIND = "http://jabber.org/protocol/httpbind"
XBOSH = "urn:xmpp:xbosh"

# A received message: sender's full JID, type, body (None if none), and the
# error condition of an error message.
Message = namedtuple("Message", "sender type body error")


def q(tag, ns):
    return f"{{{ns}}}{tag}"


def error_condition(stanza):
    error = stanza.find(q("error", CLIENT))
    if error is None:
        return None
    return next((c.tag.split("}")[1] for c in error if c.tag.startswith(f"{{{STANZAS}}}")
                 and not c.tag.endswith("}text")), "undefined-condition")


class Session:
    """An XMPP client session over a transport (open, restart, send, recv,
    close, drop): login, stanzas, and the stream management counter."""

    def __init__(self, transport, jid, password, presence=True):
        self.transport = transport
        self.user, _, rest = jid.partition("@")
        self.host, _, self.resource = rest.partition("/")
        self.password = password
        self.jid = None            # the bound full JID
        self.inbox = []            # stanzas received and not yet taken
        self.ids = itertools.count(1)
        self.sm_id = None          # stream management: the resumable session's id
        self.handled = None        # stanzas received since <enabled/> (h), or None
        self.ended = False
        self.login(presence)

    # --- login -------------------------------------------------------------
    def login(self, presence):
        self.authenticate(self.transport.open(self.host))
        self.transport.restart(self.host)
        resource = f"<resource>{escape(self.resource)}</resource>" if self.resource else ""
        bound = self.query("set", f"<bind xmlns='{BIND}'>{resource}</bind>")
        self.jid = bound.find(f"{q('bind', BIND)}/{q('jid', BIND)}").text
        if presence:
            self.send_presence()

    def authenticate(self, features):
        """SASL SCRAM-SHA-1 (RFC 5802), without channel binding."""
        mechanisms = [m.text for m in features.iter(q("mechanism", SASL))]
        if "SCRAM-SHA-1" not in mechanisms:
            raise PermissionError(f"SCRAM-SHA-1 not offered: {mechanisms}")
        nonce = b64(os.urandom(18))
        name = self.user.replace("=", "=3D").replace(",", "=2C")
        first_bare = f"n={name},r={nonce}"
        self.send_xml(f"<auth xmlns='{SASL}' mechanism='SCRAM-SHA-1'>"
                      f"{b64(('n,,' + first_bare).encode())}</auth>")
        server_first = base64.b64decode(self.sasl_step().text or "").decode()
        fields = dict(item.split("=", 1) for item in server_first.split(","))
        if not fields["r"].startswith(nonce):
            raise PermissionError("SCRAM: the server's nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha1", self.password.encode(),
                                     base64.b64decode(fields["s"]), int(fields["i"]))
        client_key = hmac_sha1(salted, b"Client Key")
        final_bare = f"c={b64(b'n,,')},r={fields['r']}"
        auth_message = f"{first_bare},{server_first},{final_bare}".encode()
        signature = hmac_sha1(hashlib.sha1(client_key).digest(), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.send_xml(f"<response xmlns='{SASL}'>"
                      f"{b64(f'{final_bare},p={b64(proof)}'.encode())}</response>")
        success = self.sasl_step()
        if success.tag != q("success", SASL):
            raise PermissionError(f"SCRAM: expected success, got {success.tag}")
        server_signature = hmac_sha1(hmac_sha1(salted, b"Server Key"), auth_message)
        if base64.b64decode(success.text or "") != f"v={b64(server_signature)}".encode():
            raise PermissionError("SCRAM: wrong server signature")

    def sasl_step(self):
        reply = self.wait(lambda e: e.tag.startswith(f"{{{SASL}}}"), "a SASL answer")
        if reply.tag == q("failure", SASL):
            raise PermissionError(f"authentication failed for {self.user}@{self.host}: "
                                  f"{[c.tag for c in reply]}")
        return reply

    # --- stanzas -----------------------------------------------------------
    def send_xml(self, xml):
        self.transport.send(xml)

    def send_presence(self, ptype=None, show=None):
        type_attr = f" type={quoteattr(ptype)}" if ptype else ""
        show_el = f"<show>{show}</show>" if show else ""
        self.send_xml(f"<presence xmlns='{CLIENT}'{type_attr}>{show_el}</presence>")
        self.barrier()

    def send(self, to, body, mtype="chat"):
        """Sends a message (as xmpp_client.Client.send does)."""
        self.send_xml(f"<message xmlns='{CLIENT}' to={quoteattr(to)} type={quoteattr(mtype)}>"
                      f"<body>{escape(body)}</body></message>")
        self.barrier()

    def query(self, itype, payload, to=None):
        """Sends an IQ and returns the reply (result or error)."""
        iq_id = f"iq{next(self.ids)}"
        to_attr = f" to={quoteattr(to)}" if to else ""
        self.send_xml(f"<iq xmlns='{CLIENT}' type='{itype}' id='{iq_id}'{to_attr}>{payload}</iq>")
        return self.wait(lambda e: e.tag == q("iq", CLIENT) and e.get("id") == iq_id
                         and e.get("type") in ("result", "error"), f"the answer to IQ {iq_id}")

    def iq(self, to, itype, payload):
        """(type, error condition or None) of the reply, as Client.iq."""
        reply = self.query(itype, payload, to)
        return reply.get("type"), error_condition(reply)

    def barrier(self):
        """Returns once the server has handled what this client sent before:
        it answers a ping to our own server in order."""
        self.query("get", "<ping xmlns='urn:xmpp:ping'/>", to=self.host)

    def receive(self, timeout=DEADLINE):
        """The next message with a body, or error."""
        message = self.wait(lambda e: e.tag == q("message", CLIENT) and (
            e.find(q("body", CLIENT)) is not None or e.get("type") == "error"),
            "a message", timeout)
        body = message.find(q("body", CLIENT))
        return Message(message.get("from"), message.get("type", "normal"),
                       None if body is None else body.text or "", error_condition(message))

    def wait(self, matches, what, timeout=DEADLINE):
        """The first stanza or element received that `matches`; the others
        stay in the inbox for later waits."""
        for element in self.inbox:
            if matches(element):
                self.inbox.remove(element)
                return element
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            element = self.next_element(remaining)
            if matches(element):
                return element
            self.inbox.append(element)

    def next_element(self, timeout):
        """The next top-level element, with stream management handled: a
        stanza counts as handled once received, <r/> is answered."""
        while True:
            element = self.transport.recv(timeout)
            if element.tag == q("error", STREAM):
                raise ConnectionError(f"stream error: {[c.tag for c in element]}")
            if element.tag == q("r", SM):
                self.send_xml(f"<a xmlns='{SM}' h='{self.handled or 0}'/>")
                continue
            if self.handled is not None and element.tag in (
                    q("message", CLIENT), q("presence", CLIENT), q("iq", CLIENT)):
                self.handled += 1
            return element

    # --- the end -----------------------------------------------------------
    def close(self):
        """Ends the stream cleanly: the server closes the session at once."""
        self.ended = True
        self.transport.close()

    def drop(self):
        """Drops the connection without ending the stream, as a lost network does."""
        self.ended = True
        self.transport.drop()

    def disconnect(self):
        """Closes the stream unless it was already closed or dropped."""
        if not self.ended:
            self.close()


def b64(data):
    return base64.b64encode(data).decode()


def hmac_sha1(key, message):
    return hmac.new(key, message, hashlib.sha1).digest()


# --- TCP with STARTTLS and stream management ---------------------------------
class TcpTransport:
    """An XML stream over TCP to 127.0.0.1, upgraded with STARTTLS when the
    server offers it (its certificate is not verified: the package's is
    self-signed)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.ready = []
        self.parser = None
        self.root = None
        self.ended = False

    def open(self, host):
        features = self.restart(host)
        if features.find(q("starttls", TLS)) is None:
            return features
        self.send(f"<starttls xmlns='{TLS}'/>")
        if self.recv(DEADLINE).tag != q("proceed", TLS):
            raise ConnectionError("STARTTLS refused")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(self.sock, server_hostname=host)
        return self.restart(host)

    def restart(self, host):
        """A new stream (after STARTTLS or SASL): returns its features."""
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.root, self.ready, self.ended = None, [], False
        self.send(f"<?xml version='1.0'?><stream:stream xmlns='{CLIENT}' "
                  f"xmlns:stream='{STREAM}' to={quoteattr(host)} version='1.0'>")
        features = self.recv(DEADLINE)
        if features.tag != q("features", STREAM):
            raise ConnectionError(f"expected stream features, got {features.tag}")
        return features

    def send(self, xml):
        self.sock.sendall(xml.encode())

    def recv(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.ready:
            if self.ended:
                raise ConnectionError("the server ended the stream")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"nothing received within {timeout}s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise ConnectionError("the server closed the connection")
            self.parser.feed(data)
            for event, element in self.parser.read_events():
                if event == "start" and self.root is None:
                    self.root = element
                elif event == "end" and element is self.root:
                    self.ended = True
                elif event == "end" and element in list(self.root):
                    self.root.remove(element)
                    self.ready.append(element)
        return self.ready.pop(0)

    def close(self):
        try:
            self.send("</stream:stream>")
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline:
                self.recv(deadline - time.monotonic())
        except (ConnectionError, TimeoutError, OSError):
            pass
        finally:
            self.sock.close()

    def drop(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class TcpClient(Session):
    """A client over TCP with STARTTLS that can enable stream management,
    drop its connection and resume its session on a new one."""

    def __init__(self, jid, password, port, presence=True):
        self.port = port
        super().__init__(TcpTransport(port), jid, password, presence)

    def enable_sm(self, max_seconds):
        """Enables resumable stream management, asking the server to keep the
        session `max_seconds` after a drop; returns the granted seconds."""
        self.send_xml(f"<enable xmlns='{SM}' resume='true' max='{max_seconds}'/>")
        enabled = self.wait(lambda e: e.tag in (q("enabled", SM), q("failed", SM)),
                            "<enabled/>")
        if enabled.tag != q("enabled", SM):
            raise ConnectionError("stream management refused")
        self.sm_id, self.handled = enabled.get("id"), 0
        return int(enabled.get("max"))

    def ack(self):
        """Acknowledges every stanza received so far (an unrequested <a/>),
        so that none is resent or stored offline once the session ends."""
        self.send_xml(f"<a xmlns='{SM}' h='{self.handled}'/>")
        self.barrier()

    def resume(self):
        """Resumes the dropped session on a new connection (XEP-0198)."""
        self.ended = False
        self.transport = TcpTransport(self.port)
        self.authenticate(self.transport.open(self.host))
        self.transport.restart(self.host)
        self.send_xml(f"<resume xmlns='{SM}' previd={quoteattr(self.sm_id)} h='{self.handled}'/>")
        resumed = self.wait(lambda e: e.tag in (q("resumed", SM), q("failed", SM)),
                            "<resumed/>")
        if resumed.tag != q("resumed", SM):
            raise ConnectionError(f"resumption failed: {[c.tag for c in resumed]}")


# --- WebSocket (RFC 7395) ----------------------------------------------------
class WebSocketTransport:
    """One XML element per WebSocket text frame, sub-protocol `xmpp`; a
    private asyncio loop runs only while a call waits."""

    def __init__(self, url):
        async def connect():  # made on the loop that runs it
            return await websockets.client.connect(url, subprotocols=["xmpp"],
                                                   ping_interval=None, open_timeout=DEADLINE)
        self.loop = asyncio.new_event_loop()
        self.ws = self.run(connect())

    def run(self, coroutine, timeout=DEADLINE):
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, timeout))

    def open(self, host):
        return self.restart(host)

    def restart(self, host):
        self.send(f"<open xmlns='{FRAMING}' to={quoteattr(host)} version='1.0'/>")
        if self.recv(DEADLINE).tag != q("open", FRAMING):
            raise ConnectionError("expected <open/>")
        return self.recv(DEADLINE)

    def send(self, xml):
        self.run(self.ws.send(xml))

    def recv(self, timeout):
        try:
            frame = self.run(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"nothing received within {timeout}s") from None
        except websockets.exceptions.ConnectionClosed as closed:
            raise ConnectionError(f"WebSocket closed: {closed}") from None
        element = ET.fromstring(frame)
        if element.tag == q("close", FRAMING):
            raise ConnectionError("the server closed the stream")
        return element

    def close(self):
        try:
            self.send(f"<close xmlns='{FRAMING}'/>")
            while True:
                self.recv(DEADLINE)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self.run(self.ws.close())
            self.loop.close()

    def drop(self):
        self.ws.transport.abort()
        self.run(self.ws.wait_closed())
        self.loop.close()


class WebSocketClient(Session):
    def __init__(self, jid, password, url, presence=True):
        super().__init__(WebSocketTransport(url), jid, password, presence)


# --- BOSH (XEP-0124, XEP-0206) -----------------------------------------------
class BoshTransport:
    """HTTP POSTs of <body/> wrappers, one at a time: ejabberd 23.01 drops
    the payload of a request that reaches it before an earlier one, so this
    client never has two in flight. What is sent waits for the next request,
    made when an answer is awaited; the server holds a request up to WAIT
    seconds when it has nothing for us."""

    WAIT = 2

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.address, self.path = (parts.hostname, parts.port), parts.path
        self.rid = int.from_bytes(os.urandom(4), "big")
        self.sid = None
        self.outgoing = []
        self.received = []
        self.ended = None  # why the server ended the session

    def request(self, attrs=""):
        """One request carrying what waits to be sent; its answer's payload
        goes to self.received."""
        self.rid += 1
        payload, self.outgoing = "".join(self.outgoing), []
        sid = f" sid='{self.sid}'" if self.sid else ""
        connection = http.client.HTTPConnection(*self.address, timeout=self.WAIT + DEADLINE)
        try:
            connection.request("POST", self.path, (
                f"<body xmlns='{HTTPBIND}' xmlns:xmpp='{XBOSH}' rid='{self.rid}'{sid}{attrs}>"
                f"{payload}</body>").encode(), {"Content-Type": "text/xml; charset=utf-8"})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise ConnectionError(f"BOSH: HTTP {response.status}")
        body = ET.fromstring(data)
        self.received.extend(body)
        if body.get("type") == "terminate":
            self.ended = body.get("condition", "terminated")
        return body

    def open(self, host):
        created = self.request(f" to={quoteattr(host)} xml:lang='en' ver='1.11' "
                               f"wait='{self.WAIT}' hold='1' xmpp:version='1.0'")
        self.sid = created.get("sid")
        return self.features()

    def restart(self, host):
        self.request(f" to={quoteattr(host)} xml:lang='en' xmpp:restart='true'")
        return self.features()

    def features(self):
        features = self.recv(DEADLINE)
        if features.tag != q("features", STREAM):
            raise ConnectionError(f"expected stream features, got {features.tag}")
        return features

    def send(self, xml):
        self.outgoing.append(xml)

    def recv(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.received:
            if self.ended:
                raise ConnectionError(f"the server ended the BOSH session: {self.ended}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing received within {timeout}s")
            self.request()
        return self.received.pop(0)

    def close(self):
        self.send(f"<presence xmlns='{CLIENT}' type='unavailable'/>")
        self.request(" type='terminate'")

    def drop(self):
        """Stops making requests: the server ends the session once its
        inactivity limit passes (mod_bosh's max_inactivity, 30 s by default)."""
        self.outgoing = []


class BoshClient(Session):
    def __init__(self, jid, password, url, presence=True):
        super().__init__(BoshTransport(url), jid, password, presence)
