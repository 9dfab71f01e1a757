"""ejabberd's own cost of a session and clicktochat's cost of a visitor, on
Debian's stock configuration (STARTTLS, SCRAM, stream management, roster...):
the node's memory (after a full GC) before and after N agents log in, then
after N visitors are registered (account + assignment + TTL timer, not
logged in), then after they log in. Run by `make bench` with Debian's
/usr/bin/python3; its own sandbox on 127.0.0.1:15235 (c2s) / 15294 (HTTP)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from conftest import Http  # noqa: E402
from sandbox import CLIENT_HOST, HELPDESK_HOST, Sandbox  # noqa: E402
from xmpp_client import Client  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100


def main():
    server = Sandbox("bench_sessions", 15235, 15294,
                     {"max_sessions": N, "visitor_ttl": 600,
                      "max_registrations_per_minute": 0}, stock_config=True)
    clients = []
    with server.serving([(f"agent{i}", HELPDESK_HOST, "pw") for i in range(N)]):
        control = server.control()
        try:
            idle = control.memory()
            clients += [Client(f"agent{i}@{HELPDESK_HOST}", "pw", server.c2s_port,
                               starttls=True) for i in range(N)]
            agents = control.memory()
            http = Http(server)
            for i in range(N):
                status, _, body = http.register(f"visitor{i}", "pw")
                assert status == 201, body
            registered = control.memory()
            clients += [Client(f"visitor{i}@{CLIENT_HOST}", "pw", server.c2s_port,
                               starttls=True) for i in range(N)]
            visitors = control.memory()
        finally:
            for client in clients:
                client.disconnect()
            control.close()
    print(f"{N} sessions each, Debian's stock configuration, STARTTLS")
    print(f"an agent's session (ejabberd's c2s, TLS, roster, presence): "
          f"{(agents - idle) / N / 1024:7.1f} KiB")
    print(f"a registered visitor (account, assignment, TTL timer):       "
          f"{(registered - agents) / N / 1024:7.1f} KiB")
    print(f"a visitor's session once logged in:                          "
          f"{(visitors - registered) / N / 1024:7.1f} KiB")


main()
