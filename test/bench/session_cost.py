"""ejabberd's own cost of a session and clicktochat's cost of a visitor, on
Debian's stock configuration (STARTTLS, SCRAM, stream management, roster...):
the node's memory (after a full GC) before and after N agents log in, then
after 10 N visitors are registered (account + assignment + TTL timer, not
logged in: ten times as many, as each costs far less than a session), then
after N of them log in (SASL SCRAM-SHA-1, as the widget does against SCRAM
records); then N more log in with PLAIN, which makes ejabberd redo the
record's PBKDF2. ejabberd's CPU a registration and a login of each kind. Run by `make bench` with Debian's
/usr/bin/python3; its own sandbox on 127.0.0.1:15235 (c2s) / 15294 (HTTP)."""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from benchlib import cpu_seconds  # noqa: E402
from conftest import Http  # noqa: E402
from sandbox import CLIENT_HOST, HELPDESK_HOST, Sandbox  # noqa: E402
from xmpp_client import Client  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100
def main():
    server = Sandbox("bench_sessions", 15235, 15294,
                     {"max_sessions": N, "visitor_ttl": 600,
                      "max_registrations_per_minute": 0},
                     stock_config=os.environ.get("MINIMAL_CONFIG") is None)
    clients = []
    with server.serving([(f"agent{i}", HELPDESK_HOST, "pw") for i in range(N)]):
        control = server.control()
        try:
            idle = control.memory()
            clients += [Client(f"agent{i}@{HELPDESK_HOST}", "pw", server.c2s_port,
                               starttls=server.stock_config) for i in range(N)]
            agents = control.memory()
            http = Http(server)
            started, cpu = time.monotonic(), cpu_seconds(server.pid())
            for i in range(10 * N):
                status, _, body = http.register(f"visitor{i}", "pw")
                assert status == 201, body
            registering = (time.monotonic() - started) / (10 * N)
            registering_cpu = (cpu_seconds(server.pid()) - cpu) / (10 * N)
            registered = control.memory()
            scram = login_cpu(server, clients, range(N), "SCRAM-SHA-1")
            visitors = control.memory()
            plain = login_cpu(server, clients, range(N, 2 * N), "PLAIN")
        finally:
            for client in clients:
                client.disconnect()
            control.close()
    print(f"{N} sessions each, Debian's stock configuration, STARTTLS")
    print(f"an agent's session (ejabberd's c2s, TLS, roster, presence): "
          f"{(agents - idle) / N / 1024:7.1f} KiB")
    print(f"a registered visitor (account, assignment, TTL timer):       "
          f"{(registered - agents) / (10 * N) / 1024:7.1f} KiB")
    print(f"a visitor's session once logged in:                          "
          f"{(visitors - registered) / N / 1024:7.1f} KiB")
    print(f"a registration (HTTP request, SCRAM account, assignment), one client "
          f"at a time: {registering * 1000:.2f} ms, of which ejabberd's CPU "
          f"{registering_cpu * 1000:.2f} ms")
    print(f"a visitor's login (TLS, SASL, bind, presence), one client at a time, ejabberd's "
          f"CPU: SCRAM-SHA-1 (the widget's) {scram * 1000:.2f} ms, PLAIN {plain * 1000:.2f} ms")


def login_cpu(server, clients, numbers, mechanism):
    """ejabberd's CPU seconds a visitor login with `mechanism`, visitors
    `numbers` logging in one after the other (and staying in `clients`)."""
    cpu = cpu_seconds(server.pid())
    for i in numbers:
        clients.append(Client(f"visitor{i}@{CLIENT_HOST}", "pw", server.c2s_port,
                              starttls=server.stock_config, mechanism=mechanism))
    return (cpu_seconds(server.pid()) - cpu) / len(numbers)


main()
