"""The widget (issue #11, README "Widget") in a real browser: Debian's
chromium, headless, driven by playwright-core through test/browser/driver.mjs
(one JSON command per line), against Debian's stock ejabberd.yml (WebSocket
at /ws beside /clicktochat, stream management on) on 127.0.0.1:15240 (c2s,
STARTTLS) and :15299 (HTTP). The agents are real XMPP clients (slixmpp over
STARTTLS); the assertions stay here.

The tests run in file order on one server: max_sessions 1, a line of 3; the
last one starts its own, with the client host's passwords kept otherwise."""

import json
import queue
import socket
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import AGENT_PASSWORD, HELPDESK_HOST, CLIENT_HOST, Http, agent_jid, visitor_name
from browser_client import Browser
from sandbox import REPO, Sandbox, wait_for
from xmpp_client import Client
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

C2S_PORT, HTTP_PORT = 15240, 15299
# The server of test_the_widget_logs_in_as_the_server_keeps_passwords.
OTHER_C2S_PORT, OTHER_HTTP_PORT = 15242, 15311
AGENT1 = agent_jid("agent1")
DEMO = f"http://127.0.0.1:{HTTP_PORT}/clicktochat/demo"
STORAGE_KEY = f"clicktochat:http://127.0.0.1:{HTTP_PORT}/clicktochat"
CHATSTATES = "http://jabber.org/protocol/chatstates"
RESULTS = REPO / "test" / "integration" / ".results"
STEP = 20  # seconds for any one browser or XMPP step

# Inside the widget's (open) shadow root.
LAUNCHER = "[data-clicktochat] .launcher"
STATUS = "[data-clicktochat] .status"
LOG = "[data-clicktochat] .log li"
TYPING = "[data-clicktochat] .typing"
INPUT = "[data-clicktochat] textarea"
CLOSE = "[data-clicktochat] .close"


# Named apart from conftest's `server`, whose clean-up expects its own accounts.
@pytest.fixture(scope="module")
def widget_server():
    sandbox = Sandbox("widget", C2S_PORT, HTTP_PORT,
                      {"max_sessions": 1, "max_waiting": 3, "visitor_ttl": 60,
                       "max_registrations_per_minute": 0},
                      stock_config=True)
    with sandbox.serving([("agent1", HELPDESK_HOST, AGENT_PASSWORD)]):
        yield sandbox


@pytest.fixture(scope="module")
def control(widget_server):
    node = widget_server.control()
    yield node
    node.close()


@pytest.fixture(scope="module")
def browser(widget_server):
    RESULTS.mkdir(parents=True, exist_ok=True)
    driver = Browser(RESULTS / "widget-browser.log", step=STEP)
    yield driver
    driver.close()


@pytest.fixture
def agents(control):
    """The XMPP clients a test opened; disconnected after it, and then no
    visitor account may be left (a visitor the browser left behind goes
    when its session's resume time, 120 s, has passed)."""
    opened = []
    yield opened
    for client in opened:
        client.disconnect()
    wait_for(lambda: not control.registered_users(), 150,
             "every visitor account to be removed after the test", interval=0.5)


def login(agents, jid, password=AGENT_PASSWORD):
    client = Client(jid, password, C2S_PORT, starttls=True)
    agents.append(client)
    return client


def send_chat_state(agent, to, state):
    async def send():
        message = agent.xmpp.make_message(mto=to, mtype="chat")
        message.xml.append(ET.Element(f"{{{CHATSTATES}}}{state}"))
        message.send()
    agent.loop.run(send())


def chat_states(agent):
    """A queue of the chat states (XEP-0085) the agent receives, as (from,
    state): slixmpp's own "message" event fires for messages with a body only."""
    states = queue.Queue()

    def handle(message):
        for child in message.xml:
            if child.tag.startswith(f"{{{CHATSTATES}}}"):
                states.put((str(message["from"]), child.tag.split("}")[1]))
    agent.xmpp.register_handler(Callback("chat states", MatchXPath(
        f"{{jabber:client}}message/{{{CHATSTATES}}}composing"), handle))
    return states


def conversation(browser):
    """The messages shown, without the "You: " / "agent1: " said to screen readers."""
    return [text.split(":", 1)[1].strip() for text in browser.texts(f"{LOG}:not(.note)")]


def visitor_of(browser):
    return browser.stored_chat(STORAGE_KEY)["jid"]


def leaves(control, jid):
    name = jid.split("@")[0]
    wait_for(lambda: name not in control.registered_users(), 30,
             f"visitor {jid}'s account to be removed")


def open_widget_with(browser, **data):
    """The demo page with its widget swapped for one configured with `data`
    (data-<key> attributes, as a page would write them), opened."""
    browser.call("open", url=DEMO)
    browser.call("eval", expression=f"""(() => {{
        document.querySelector('[data-clicktochat]').remove();
        const script = document.createElement('script');
        script.src = 'widget.js?swapped';
        Object.assign(script.dataset, {json.dumps(data)});
        document.body.appendChild(script);
        return true;
    }})()""")
    browser.call("wait_for_selector", selector=LAUNCHER)
    browser.call("click", selector=LAUNCHER)


def test_the_widget_is_served(widget_server):
    http = Http(widget_server)
    status, headers, body = http.request("GET", "/clicktochat/widget.js")
    assert status == 200 and headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=3600" and len(body) < 100_000
    status, again, _ = http.request("GET", "/clicktochat/widget.js",
                                    headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and again["ETag"] == headers["ETag"]
    status, headers, body = http.request("GET", "/clicktochat/demo")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<script src="widget.js"' in body
    assert http.request("POST", "/clicktochat/demo", "x")[0] == 405


def test_no_agent_is_said_in_plain_words(widget_server, control, browser):
    browser.call("open", url=DEMO)
    browser.call("click", selector=LAUNCHER)
    browser.wait_text(STATUS, "Nobody is available to chat right now")
    assert control.registered_users() == set()


def test_chat_reload_move_and_close(widget_server, control, browser, agents):
    agent = login(agents, AGENT1)
    states = chat_states(agent)
    started = time.monotonic()
    browser.call("open", url=DEMO)
    browser.call("click", selector=LAUNCHER)
    browser.wait_text(STATUS, "You are chatting with agent1")
    visitor = visitor_of(browser)
    assert visitor.endswith(f"@{CLIENT_HOST}")

    # The visitor types (the agent sees it), then sends with Enter.
    browser.call("type", selector=INPUT, text="Hello from the browser")
    sender, state = states.get(timeout=STEP)
    assert (sender.split("/")[0], state) == (visitor, "composing")
    browser.call("press", selector=INPUT, key="Enter")
    message = agent.receive()
    assert (str(message["from"]).split("/")[0], message["body"]) == (
        visitor, "Hello from the browser")

    # The agent types, then answers: the page shows both.
    send_chat_state(agent, visitor, "composing")
    browser.wait_text(TYPING, "agent1 is typing")
    agent.send(visitor, "Hello from agent1, how can I help?")
    browser.wait_text(f"{LOG}.agent", "Hello from agent1, how can I help?")
    assert browser.texts(TYPING) == [""]
    browser.call("screenshot", path=str(RESULTS / "widget.png"))

    # A reload: the same session (resumed), the conversation shown again.
    sessions = {j for j in control.connected_users() if j.startswith(visitor + "/")}
    assert len(sessions) == 1
    browser.call("reload")
    browser.wait_text(STATUS, "You are chatting with agent1")
    assert conversation(browser) == [
        "Hello from the browser", "Hello from agent1, how can I help?"]
    assert {j for j in control.connected_users() if j.startswith(visitor + "/")} == sessions
    browser.call("fill", selector=INPUT, value="Still there after the reload")
    browser.call("press", selector=INPUT, key="Enter")
    assert agent.receive()["body"] == "Still there after the reload"
    agent.send(visitor, "Yes, I am")
    browser.wait_text(f"{LOG}.agent", "Yes, I am")

    # Away from the site for a moment, and a message meanwhile: the next
    # page of the site resumes the session and shows it.
    dropped = f"Closing c2s connection for {next(iter(sessions))}: "
    before = widget_server.count_in_log(dropped)
    browser.call("open", url="about:blank")
    wait_for(lambda: widget_server.count_in_log(dropped) > before, STEP,
             "ejabberd to hold the visitor's session for resumption")
    assert visitor.split("@")[0] in control.registered_users()
    agent.send(visitor, "Sent while you were away")
    browser.call("open", url=DEMO + "?page=2")
    browser.wait_text(f"{LOG}.agent", "Sent while you were away")
    assert conversation(browser) == [
        "Hello from the browser", "Hello from agent1, how can I help?",
        "Still there after the reload", "Yes, I am", "Sent while you were away"]
    browser.wait_text(STATUS, "You are chatting with agent1")
    # Each of the three pages logged in, with SCRAM: the server holds SCRAM
    # records (stock), so the browser did the PBKDF2, not ejabberd.
    wait_for(lambda: widget_server.sasl_logins(visitor) == {"SCRAM-SHA-1": 3}, STEP,
             "three SCRAM-SHA-1 logins of the visitor in ejabberd's log",
             seen=lambda: widget_server.sasl_logins(visitor))
    browser.call("fill", selector=INPUT, value="Thanks, bye")
    browser.call("press", selector=INPUT, key="Enter")
    assert agent.receive()["body"] == "Thanks, bye"

    # Closing ends the chat: the account is removed, the storage emptied.
    browser.call("click", selector=CLOSE)
    leaves(control, visitor)
    assert browser.stored_chat(STORAGE_KEY) is None
    browser.call("wait_for_selector", selector=LAUNCHER)
    print(f"chat, reload, move and close: {time.monotonic() - started:.1f}s")


def test_the_line_shows_the_position_then_the_agent(widget_server, control, browser, agents):
    agent = login(agents, AGENT1)
    # agent1's one slot taken by another visitor.
    first = visitor_name("first")
    status, _, body = Http(widget_server).register(first, "first-pw")
    assert status == 201, body
    occupant = login(agents, f"{first}@{CLIENT_HOST}", "first-pw")

    browser.call("open", url=DEMO)
    browser.call("click", selector=LAUNCHER)
    browser.wait_text(STATUS, "You are number 1 in line")
    assert browser.call("attribute", selector=INPUT, name="disabled") is not None
    visitor = visitor_of(browser)

    # The slot frees: the page is told its agent, and the chat begins.
    occupant.disconnect()
    browser.wait_text(f"{LOG}.note", "agent1 joined the chat")
    browser.wait_text(STATUS, "You are chatting with agent1")
    browser.call("fill", selector=INPUT, value="My turn")
    browser.call("press", selector=INPUT, key="Enter")
    message = agent.receive()
    assert (str(message["from"]).split("/")[0], message["body"]) == (visitor, "My turn")

    # A reload logs in again, and the server says again who the agent is
    # (it tells a visitor from the line on every login): the page says
    # "joined" once. The agent's message after the login comes after that notice.
    logged_in = widget_server.sasl_logins(visitor)
    browser.call("reload")
    wait_for(lambda: sum(widget_server.sasl_logins(visitor).values()) > sum(logged_in.values()),
             STEP, "the reloaded page to log in")
    browser.wait_text(STATUS, "You are chatting with agent1")
    agent.send(visitor, "Still here")
    browser.wait_text(f"{LOG}.agent", "Still here")
    joined = [t for t in browser.texts(f"{LOG}.note") if "joined the chat" in t]
    assert len(joined) == 1, browser.texts(LOG)

    browser.call("click", selector=CLOSE)
    leaves(control, visitor)
    leaves(control, f"{first}@{CLIENT_HOST}")


def test_refusals_and_an_unreachable_service_are_said_in_plain_words(
        widget_server, control, browser, agents):
    login(agents, AGENT1)
    # agent1's one slot and the line of 3 taken by visitors registered over
    # HTTP (logged in, so that they end with their sessions).
    taken = [visitor_name("occupant")] + [visitor_name(f"waiter{i}") for i in range(3)]
    for name in taken:
        status, _, body = Http(widget_server).register(name, "pw")
        assert status in (201, 202), body
        login(agents, f"{name}@{CLIENT_HOST}", "pw")
    browser.call("open", url=DEMO)
    browser.call("click", selector=LAUNCHER)
    browser.wait_text(STATUS, "the waiting line is full")
    assert control.registered_users() == set(taken)

    # Over the registration limit of the page's address: 429, in words.
    widget_server.reload(max_registrations_per_minute=1)
    try:
        assert Http(widget_server).register(visitor_name("spent"), "pw")[0] == 503
        browser.call("open", url=DEMO)
        browser.call("click", selector=LAUNCHER)
        browser.wait_text(STATUS, "Too many attempts")
    finally:
        widget_server.reload(max_registrations_per_minute=0)
    assert control.registered_users() == set(taken)

    # A service that cannot be reached (nothing listens on port 1).
    open_widget_with(browser, service="http://127.0.0.1:1/clicktochat")
    browser.wait_text(STATUS, "cannot be reached")


class CuttableProxy:
    """A TCP proxy on 127.0.0.1:`port` to the HTTP listener whose connections
    the test can cut at once, as a lost network does (no WebSocket close
    frame, no XMPP </close>), while new connections still get through."""

    def __init__(self, port, target):
        self.target, self.links = target, []
        self.listener = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.links.append((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def cut(self):
        """Ends every connection so far; returns how many there were."""
        links, self.links = self.links, []
        for pair in links:
            for sock in pair:
                # shutdown wakes the pump blocked in recv (a bare close would
                # leave the socket open under it); then both peers see the
                # connection end without a goodbye.
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        return len(links)

    def close(self):
        self.listener.close()
        self.cut()


PROXY_PORT = 15300   # the widget's WebSocket, through CuttableProxy


def test_a_lost_connection_is_said_and_the_chat_goes_on(widget_server, control, browser, agents):
    agent = login(agents, AGENT1)
    proxy = CuttableProxy(PROXY_PORT, HTTP_PORT)
    try:
        open_widget_with(browser, websocket=f"ws://127.0.0.1:{PROXY_PORT}/ws")
        browser.wait_text(STATUS, "You are chatting with agent1")
        visitor = visitor_of(browser)
        assert proxy.cut() >= 1
        browser.wait_text(STATUS, "Connection lost")
        # xmpp.js reconnects through the proxy and resumes the same session.
        browser.wait_text(STATUS, "You are chatting with agent1", timeout=60)
        assert visitor.split("@")[0] in control.registered_users()
        # The reconnection logged in again, with SCRAM (its keys remembered).
        wait_for(lambda: widget_server.sasl_logins(visitor) == {"SCRAM-SHA-1": 2}, STEP,
                 "two SCRAM-SHA-1 logins of the visitor",
                 seen=lambda: widget_server.sasl_logins(visitor))
        browser.call("fill", selector=INPUT, value="Back after the cut")
        browser.call("press", selector=INPUT, key="Enter")
        assert agent.receive()["body"] == "Back after the cut"
        agent.send(visitor, "Welcome back")
        browser.wait_text(f"{LOG}.agent", "Welcome back")
        browser.call("click", selector=CLOSE)
        leaves(control, visitor)
    finally:
        proxy.close()


def test_a_chat_whose_account_went_meanwhile_is_said_to_have_ended(
        widget_server, control, browser, agents):
    """Away from the site while the visitor's account goes (here removed by
    the operator): back on a page, the widget's SCRAM login is refused with
    not-authorized, and it says the chat ended instead of retrying."""
    login(agents, AGENT1)
    browser.call("open", url=DEMO)
    browser.call("click", selector=LAUNCHER)
    browser.wait_text(STATUS, "You are chatting with agent1")
    visitor = visitor_of(browser)
    browser.call("open", url="about:blank")
    widget_server.ctl("unregister", visitor.split("@")[0], CLIENT_HOST)
    leaves(control, visitor)
    browser.call("open", url=DEMO)
    browser.wait_text(STATUS, "This chat has ended.")
    assert browser.stored_chat(STORAGE_KEY) is None
    refused = f"Failed c2s SCRAM-SHA-1 authentication for {visitor}"
    wait_for(lambda: widget_server.count_in_log(refused), STEP, "the refused login in the log",
             seen=lambda: [line for line in widget_server.log_text().splitlines()
                           if "Failed c2s" in line][-3:])


def test_a_page_without_webcrypto_logs_in_with_plain(widget_server, control, browser, agents):
    """A page that is not a secure context (plain http: on a name other than
    localhost; the driver maps *.test to 127.0.0.1) has no WebCrypto: there
    the widget logs in with PLAIN, and the chat works."""
    agent = login(agents, AGENT1)
    service = f"http://widget.test:{HTTP_PORT}/clicktochat"
    browser.call("open", url=f"{service}/demo")
    assert browser.call("eval", expression="[isSecureContext, typeof crypto.subtle]") == [
        False, "undefined"]
    browser.call("click", selector=LAUNCHER)
    browser.wait_text(STATUS, "You are chatting with agent1")
    visitor = browser.stored_chat(f"clicktochat:{service}")["jid"]
    wait_for(lambda: widget_server.sasl_logins(visitor) == {"PLAIN": 1}, STEP,
             "one PLAIN login of the visitor", seen=lambda: widget_server.sasl_logins(visitor))
    browser.call("fill", selector=INPUT, value="Hello over plain http")
    browser.call("press", selector=INPUT, key="Enter")
    assert agent.receive()["body"] == "Hello over plain http"
    browser.call("click", selector=CLOSE)
    leaves(control, visitor)


@pytest.mark.parametrize("global_options, mechanism", [
    ({"auth_password_format": "plain"}, "PLAIN"),
    ({"auth_scram_hash": "sha256"}, "SCRAM-SHA-256"),
], ids=["plain-passwords", "scram-sha-256"])
def test_the_widget_logs_in_as_the_server_keeps_passwords(browser, global_options, mechanism):
    """The stock configuration with the client host's passwords kept another
    way: in plain text the widget logs in with PLAIN (a SCRAM login would
    make ejabberd compute the salted password), with SHA-256 records with
    SCRAM-SHA-256. The chat works either way."""
    sandbox = Sandbox("widget_login", OTHER_C2S_PORT, OTHER_HTTP_PORT,
                      {"max_sessions": 1, "visitor_ttl": 60, "max_registrations_per_minute": 0},
                      stock_config=True, global_options=global_options)
    with sandbox.serving([("agent1", HELPDESK_HOST, AGENT_PASSWORD)]):
        control = sandbox.control()
        agent = Client(AGENT1, AGENT_PASSWORD, OTHER_C2S_PORT, starttls=True)
        try:
            service = f"http://127.0.0.1:{OTHER_HTTP_PORT}/clicktochat"
            browser.call("open", url=f"{service}/demo")
            browser.call("click", selector=LAUNCHER)
            browser.wait_text(STATUS, "You are chatting with agent1")
            visitor = browser.stored_chat(f"clicktochat:{service}")["jid"]
            wait_for(lambda: sandbox.sasl_logins(visitor) == {mechanism: 1}, STEP,
                     f"one {mechanism} login of the visitor",
                     seen=lambda: sandbox.sasl_logins(visitor))
            browser.call("fill", selector=INPUT, value=f"Logged in with {mechanism}")
            browser.call("press", selector=INPUT, key="Enter")
            assert agent.receive()["body"] == f"Logged in with {mechanism}"
            browser.call("click", selector=CLOSE)
            leaves(control, visitor)
        finally:
            agent.disconnect()
            control.close()
