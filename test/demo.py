"""`make demo`: a fresh throw-away ejabberd 23.01 with clicktochat on 127.0.0.1,
in the foreground until Ctrl-C or `make demo-stop` (Debian's /usr/bin/python3).

Debian's stock ejabberd.yml made a sandbox (sandbox.stock_yml_config: roster,
offline storage, stream management, carbons..., STARTTLS required, SCRAM):
HTTP on $DEMO_HTTP_PORT (5280) with the API, WebSocket and BOSH, XMPP clients
on $DEMO_C2S_PORT (5222), vhosts clients.localhost and helpdesk.localhost,
agents agent1..agent3 with the password `demo`. A small bot keeps agent1
online so that the seed's curl commands work at once; it answers visitors'
messages.
"""

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sandbox import CLIENT_HOST, HELPDESK_HOST, Sandbox  # noqa: E402

AGENTS = ["agent1", "agent2", "agent3"]
PASSWORD = "demo"
BOT_AGENT = "agent1"


def sandbox():
    name = os.environ.get("DEMO_NAME", "demo")
    # A waiting line, so that a busy desk shows the widget's place in line.
    return Sandbox(name,
                   int(os.environ.get("DEMO_C2S_PORT", "5222")),
                   int(os.environ.get("DEMO_HTTP_PORT", "5280")),
                   {"max_waiting": 10},
                   root=f"/tmp/clicktochat-{name}", stock_config=True)


def start_bot(port):
    from xmpp_client import Client
    bot = Client(f"{BOT_AGENT}@{HELPDESK_HOST}/demo-bot", PASSWORD, port, starttls=True)

    def answer(message):
        if message["body"] and message["type"] in ("chat", "normal"):
            message.reply(f"Hello {message['from'].bare}, this is the demo agent "
                          f"{BOT_AGENT}. You said: {message['body']}").send()
    bot.xmpp.add_event_handler("message", answer)
    return bot


def banner(server):
    http = f"http://127.0.0.1:{server.http_port}/clicktochat"
    agents = ", ".join(f"{a}@{HELPDESK_HOST}" for a in AGENTS)
    return f"""
clicktochat demo: ejabberd 23.01 node {server.node} (files in {server.dir}),
Debian's stock ejabberd.yml with our vhosts, module and listeners
  Widget     {http}/demo (open it in a browser: the chat button, bottom right)
  HTTP API   {http}/register (POST), {http}/list (GET), {http}/status (GET)
  WebSocket  ws://127.0.0.1:{server.http_port}/ws
  BOSH       http://127.0.0.1:{server.http_port}/bosh
  XMPP       127.0.0.1:{server.c2s_port}, STARTTLS required (the ejabberd package's
             self-signed certificate), SCRAM passwords
  Visitors   on {CLIENT_HOST}
  Agents     {agents}, password "{PASSWORD}"
             ({BOT_AGENT} is kept online by a demo bot that answers visitors)

Try the seed's commands:
  curl -i -H "Accept: text/xml" -X POST -d "<?xml version='1.0'?><registration><username>my_client</username><password>123</password></registration>" {http}/register
  curl -i -X GET {http}/list

Log in as an agent with any XMPP client (Gajim, Profanity, Conversations...):
  JID agent2@{HELPDESK_HOST}, password {PASSWORD}, server 127.0.0.1, port {server.c2s_port},
  STARTTLS, accepting the self-signed certificate. Once it is online, registrations
  are shared between {BOT_AGENT} and it, round robin. A registered visitor logs in
  the same way (or over WebSocket or BOSH) with the JID and password it registered,
  and chats with its agent.

Stop with Ctrl-C, or `make demo-stop` from another shell.
"""


def main():
    if os.geteuid() != 0:
        sys.exit("make demo needs root: ejabberdctl runs the node as the ejabberd user")
    server = sandbox()
    if "--stop" in sys.argv[1:]:
        server.stop()
        print(f"demo node {server.node} stopped")
        return
    if server.pid() is not None:
        sys.exit(f"a demo is already running (node {server.node}); stop it with make demo-stop")
    try:
        server.start()
    except RuntimeError as error:
        sys.exit(f"could not start the demo: {error}\n(is another ejabberd, e.g. the system "
                 "service, using the ports? stop it or set DEMO_HTTP_PORT/DEMO_C2S_PORT)")
    bot = None
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for agent in AGENTS:
            server.register(agent, HELPDESK_HOST, PASSWORD)
        bot = start_bot(server.c2s_port)
        print(banner(server), flush=True)
        # Foreground until Ctrl-C or until `make demo-stop` stops the node.
        while not stopping and server.pid() is not None:
            time.sleep(0.5)
    finally:
        print("stopping the demo...", flush=True)
        if bot is not None and server.pid() is not None:
            bot.disconnect()
        server.stop()
        print("demo stopped", flush=True)


if __name__ == "__main__":
    main()
