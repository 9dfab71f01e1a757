"""Two ejabberd 23.01 nodes from Debian's stock configuration, clustered with
`ejabberdctl join_cluster` on 127.0.0.1 (node "ca": 15233 c2s / 15292 HTTP,
node "cb": 15234 / 15293), both running the module for the same client host:
one rotation, one capacity count, one guard and one archive for the whole
cluster, agents and visitors on either node; and the loss of either node,
the rotation's owner included, survived.

The tests run in file order on one cluster; the node-loss tests come last."""

import http.client
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import AGENT_PASSWORD, BYSTANDER, CLIENT_HOST, HELPDESK_HOST, Http, agent_jid
from sandbox import Sandbox, wait_for
from test_archive import conversations, record_of
from test_archive_riak import archive_status
from test_foundation import XML_PROLOG, assigned_agent
from xmpp_client import Client

PORTS = {"ca": (15233, 15292), "cb": (15234, 15293)}
MAX_SESSIONS = 2
VISITOR_TTL = 6
AGENTS = ["agent1", "agent2", "agent3", "agent4"]
PASSWORD = "visitor-pw"
CREATED = re.compile(re.escape(XML_PROLOG) + r"<register><status>ok</status>"
                     r"<from>([^<]+)</from><to>([^<]+)</to></register>")


class Cluster:
    def __init__(self):
        options = {"max_sessions": MAX_SESSIONS, "visitor_ttl": VISITOR_TTL,
                   "max_registrations_per_minute": 0}
        self.nodes = {name: Sandbox(name, c2s, http_port, options, stock_config=True)
                      for name, (c2s, http_port) in PORTS.items()}
        self.clients = []

    def __getitem__(self, name):
        return self.nodes[name]

    def start(self):
        a, b = self.nodes["ca"], self.nodes["cb"]
        a.start()
        b.start()
        # join_cluster restarts ejabberd on b with a's Mnesia schema and tables.
        b.ctl("join_cluster", a.node)
        wait_for(lambda: a.node in b.ctl("list_cluster", check=False), 60,
                 "cb to list ca in its cluster")
        b.wait_started()
        for agent in AGENTS:
            a.register(agent, HELPDESK_HOST, AGENT_PASSWORD)
        a.register(BYSTANDER, CLIENT_HOST, "bystander-pw")
        wait_for(lambda: set(AGENTS) <= set(b.ctl("registered_users", HELPDESK_HOST).split()),
                 30, "the agents' accounts to reach cb")

    def stop(self):
        for node in self.nodes.values():
            node.stop()

    def connect(self, node, user, password=AGENT_PASSWORD, **kwargs):
        client = Client(user, password, self.nodes[node].c2s_port, starttls=True, **kwargs)
        self.clients.append(client)
        return client

    def disconnect_all(self):
        for client in self.clients:
            client.disconnect()
        self.clients = []

    def status(self, node):
        return archive_status(self.nodes[node])

    def owner(self):
        return self.status("ca")["owner"]


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.disconnect_all()
        cluster.stop()


def visitors(node):
    return node.registered_users(CLIENT_HOST) - {BYSTANDER}


@pytest.fixture(autouse=True)
def leave_cluster_clean(cluster):
    """Every test leaves the cluster as it found it: clients gone, no visitor
    account, no load anywhere."""
    yield
    cluster.disconnect_all()
    live = [node for node in cluster.nodes.values() if node.pid() is not None]
    for node in live:
        wait_for(lambda: not node.connected_users(), 30, f"{node.name}'s sessions to close")
    wait_for(lambda: not visitors(live[0]), VISITOR_TTL + 30, "every visitor account to go")
    wait_for(lambda: all(n == "0" for n in loads(cluster.status(live[0].name)).values()),
             30, "every load to be 0")


def loads(status):
    return dict(entry.split("=") for entry in status.get("loads", "").split())


def register(node, name):
    status, _, body = Http(node).register(name, PASSWORD)
    return status, body


def test_the_nodes_form_one_cluster_with_one_rotation_owner(cluster):
    for name in ("ca", "cb"):
        listed = cluster[name].ctl("list_cluster")
        assert cluster["ca"].node in listed and cluster["cb"].node in listed
    owners = {cluster.status(name)["owner"] for name in ("ca", "cb")}
    assert owners == {cluster["ca"].node}, "the first node to start owns the rotation"


def test_fairness_across_nodes(cluster):
    # agents log in on both nodes, in an order that mixes them
    for node, agent in [("cb", "agent3"), ("ca", "agent1"), ("cb", "agent4"), ("ca", "agent2")]:
        cluster.connect(node, agent_jid(agent))
    given = Counter()
    names = [f"fair{i}" for i in range(2 * len(AGENTS))]   # K agents x 2 slots
    for i, name in enumerate(names):
        status, body = register(cluster["ca" if i % 2 == 0 else "cb"], name)
        given[assigned_agent(status, body)] += 1
    # N = 8 registrations over K = 4 agents: exactly 2 each, whichever node
    # the registration or the agent is on, and then none is free anywhere.
    assert given == {agent_jid(a): MAX_SESSIONS for a in AGENTS}
    for node in ("ca", "cb"):
        status, body = register(cluster[node], f"one_too_many_{node}")
        assert status == 503 and "no_agent_available" in body
    assert loads(cluster.status("cb")) == {agent_jid(a): "2" for a in AGENTS}
    # Both nodes' public status is the cluster's: 4 agents, no free slot.
    for node in ("ca", "cb"):
        code, _, body = Http(cluster[node]).request("GET", "/clicktochat/status")
        assert (code, body) == (200, f"{XML_PROLOG}<status><agents_available>4"
                                     "</agents_available><free_slots>0</free_slots>"
                                     "<waiting>0</waiting></status>")


def test_capacity_holds_cluster_wide_under_concurrent_registrations(cluster):
    for node, agent in [("ca", "agent1"), ("cb", "agent2"), ("cb", "agent3")]:
        cluster.connect(node, agent_jid(agent))

    def post(i):
        node = cluster["ca" if i % 2 else "cb"]
        connection = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=60)
        try:
            body = (f"{XML_PROLOG}<registration><username>burst{i:04d}</username>"
                    f"<password>pw</password></registration>")
            connection.request("POST", "/clicktochat/register", body)
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(post, range(1000), timeout=180))
    created = [CREATED.fullmatch(body) for status, body in results if status == 201]
    assert Counter(status for status, _ in results) == {201: 3 * MAX_SESSIONS, 503: 1000 - 6}
    assert Counter(m.group(2) for m in created) == {
        agent_jid(a): MAX_SESSIONS for a in ("agent1", "agent2", "agent3")}
    # No account but those the 201s named (they never log in: visitor_ttl
    # removes them, which the autouse fixture waits for).
    assert visitors(cluster["cb"]) <= {m.group(1).split("@")[0] for m in created}


def test_visitor_on_one_node_agent_on_the_other(cluster):
    agent = cluster.connect("cb", agent_jid("agent2"))
    other_agent = cluster.connect("cb", agent_jid("agent3"), show="dnd")
    status, body = register(cluster["ca"], "crossing")
    assert assigned_agent(status, body) == agent_jid("agent2")
    visitor = cluster.connect("ca", f"crossing@{CLIENT_HOST}", PASSWORD)
    visitor.send(agent_jid("agent2"), "hello from ca")
    assert agent.receive()["body"] == "hello from ca"
    agent.send(f"crossing@{CLIENT_HOST}", "hello from cb")
    assert visitor.receive()["body"] == "hello from cb"
    # The guard knows the assignment on the visitor's node.
    visitor.send(agent_jid("agent3"), "spam")
    refused = visitor.receive()
    assert refused["type"] == "error" and refused["error"]["condition"] == "not-allowed"
    assert other_agent.pending_messages() == 0
    # Archived once, readable from either node.
    for node in ("ca", "cb"):
        records = conversations(Http(cluster[node]), agent_jid("agent2"))
        _, _, entries = record_of(records, f"crossing@{CLIENT_HOST}")
        assert [e[3] for e in entries] == ["hello from ca", "hello from cb"]
    # Logging out on ca frees the slot in the one rotation.
    assert loads(cluster.status("cb"))[agent_jid("agent2")] == "1"
    visitor.disconnect()
    wait_for(lambda: "crossing" not in cluster["cb"].registered_users(CLIENT_HOST), 30,
             "the visitor's account to go")
    wait_for(lambda: loads(cluster.status("ca"))[agent_jid("agent2")] == "0", 30,
             "agent2's slot to be freed")


def test_an_agent_on_both_nodes_counts_once(cluster):
    cluster.connect("ca", agent_jid("agent1") + "/desk")
    cluster.connect("cb", agent_jid("agent1") + "/phone")
    given = [register(cluster["ca" if i % 2 else "cb"], f"twice{i}") for i in range(3)]
    assert [status for status, _ in given] == [201, 201, 503], given
    status = cluster.status("ca")
    assert status["agents_on " + cluster["ca"].node] == agent_jid("agent1")
    assert status["agents_on " + cluster["cb"].node] == agent_jid("agent1")
    assert status["queue"] == ""    # full: out of the rotation on both nodes
    assert loads(status)[agent_jid("agent1")] == "2"


def chat(visitor, visitor_jid, agent, agent_name, text):
    visitor.send(agent_jid(agent_name), f"{text} (visitor)")
    assert agent.receive()["body"] == f"{text} (visitor)"
    agent.send(visitor_jid, f"{text} (agent)")
    assert visitor.receive()["body"] == f"{text} (agent)"


def lose_node(cluster, lost, survivor):
    """agent1 on `lost`, agent2 on `survivor`, one visitor of each logged in
    on the agent's node and chatting; then `lost` is killed with SIGKILL.
    Returns the survivor's agent and visitor clients and the visitors' names."""
    agent1 = cluster.connect(lost, agent_jid("agent1"))
    agent2 = cluster.connect(survivor, agent_jid("agent2"))
    names = {}
    for agent_name, node in (("agent1", lost), ("agent2", survivor)):
        name = f"{agent_name}_visitor_on_{node}"
        status, body = register(cluster[node], name)
        assert assigned_agent(status, body) == agent_jid(agent_name)
        names[agent_name] = name
    visitor1 = cluster.connect(lost, f"{names['agent1']}@{CLIENT_HOST}", PASSWORD)
    visitor2 = cluster.connect(survivor, f"{names['agent2']}@{CLIENT_HOST}", PASSWORD)
    chat(visitor1, f"{names['agent1']}@{CLIENT_HOST}", agent1, "agent1", "before")
    chat(visitor2, f"{names['agent2']}@{CLIENT_HOST}", agent2, "agent2", "before")
    cluster.clients.remove(agent1)
    cluster.clients.remove(visitor1)
    cluster[lost].kill()
    return agent2, visitor2, names


def survives_and_rejoins(cluster, lost, survivor):
    agent2, visitor2, names = lose_node(cluster, lost, survivor)
    killed_at = time.monotonic()
    node = cluster[survivor]
    # Within 10 s the survivor serves registrations with correct loads:
    # agent1 (its node is gone) is out of the rotation, its visitor keeps
    # its slot for now; agent2 has one visitor and one free slot.
    attempts = []

    def registered():
        attempts.append(register(node, "after_loss"))
        return attempts[-1][0] == 201
    wait_for(registered, 10, "the survivor to serve registrations", interval=0.2)
    assert time.monotonic() - killed_at < 10
    assert assigned_agent(*attempts[-1]) == agent_jid("agent2")
    assert all(status == 503 for status, _ in attempts[:-1]), attempts
    assert cluster.status(survivor)["owner"] == owner_after(cluster, lost, survivor)
    # Checked from the agent's side too: the new visitor reaches agent2.
    newcomer = cluster.connect(survivor, f"after_loss@{CLIENT_HOST}", PASSWORD)
    chat(newcomer, f"after_loss@{CLIENT_HOST}", agent2, "agent2", "newcomer")
    status, body = register(node, "after_loss_full")
    assert status == 503 and "no_agent_available" in body
    assert loads(cluster.status(survivor)) == {agent_jid("agent1"): "1", agent_jid("agent2"): "2"}
    # The survivor's conversation goes on.
    chat(visitor2, f"{names['agent2']}@{CLIENT_HOST}", agent2, "agent2", "after")
    # The lost node's visitor never comes back: removed after visitor_ttl,
    # its slot freed; nothing orphaned.
    wait_for(lambda: names["agent1"] not in node.registered_users(CLIENT_HOST),
             VISITOR_TTL + 20, "the lost node's visitor to be removed")
    wait_for(lambda: loads(cluster.status(survivor)).get(agent_jid("agent1"), "0") == "0", 10,
             "agent1's slot to be freed")
    assert visitors(node) == {names["agent2"], "after_loss"}
    # The lost node comes back, rejoins, and serves again; nothing counted twice.
    cluster[lost].start(fresh=False)
    wait_for(lambda: cluster[lost].node in node.ctl("list_cluster", check=False)
             and cluster.status(lost).get("owner") == owner_after(cluster, lost, survivor),
             60, "the lost node to rejoin")
    agent1 = cluster.connect(lost, agent_jid("agent1"))
    status, body = register(cluster[lost], "after_rejoin")
    assert assigned_agent(status, body) == agent_jid("agent1")
    rejoined = cluster.connect(survivor, f"after_rejoin@{CLIENT_HOST}", PASSWORD)
    chat(rejoined, f"after_rejoin@{CLIENT_HOST}", agent1, "agent1", "rejoined")
    for name in (lost, survivor):
        assert loads(cluster.status(name)) == {agent_jid("agent1"): "1",
                                               agent_jid("agent2"): "2"}
    assert visitors(cluster[lost]) == {names["agent2"], "after_loss", "after_rejoin"}


def owner_after(cluster, lost, survivor):
    """The owner once `lost` went: the survivor if `lost` owned the rotation."""
    return cluster[survivor].node if lost == "ca" else cluster["ca"].node


def test_losing_a_node_that_does_not_own_the_rotation(cluster):
    assert cluster.owner() == cluster["ca"].node
    survives_and_rejoins(cluster, lost="cb", survivor="ca")


def test_losing_the_node_that_owns_the_rotation(cluster):
    assert cluster.owner() == cluster["ca"].node
    survives_and_rejoins(cluster, lost="ca", survivor="cb")


def test_one_line_for_the_cluster_survives_its_owner(cluster):
    """With a waiting line on both nodes: registrations through either node
    join one line, in order; the owner is killed while visitors wait; the
    survivor rebuilds the line from the replicated assignments and serves it
    in the same order. (Last in this module: the killed node stays down.)"""
    from line_common import check_assigned, check_visitor, check_waiting, parse_line
    for node in cluster.nodes.values():
        node.reload(max_waiting=3)
    wait_for(lambda: cluster.status("ca").get("owner") == cluster.status("cb").get("owner")
             in (cluster["ca"].node, cluster["cb"].node), 30, "both nodes to agree on an owner")
    owner = "ca" if cluster.owner() == cluster["ca"].node else "cb"
    other = "cb" if owner == "ca" else "ca"
    agent1 = cluster.connect(other, agent_jid("agent1"))
    for name, node in (("lv1", owner), ("lv2", other)):
        status, body = register(cluster[node], name)
        assert assigned_agent(status, body) == agent_jid("agent1")
    # One line, whichever node is asked.
    for name, node, position in (("lw1", other, 1), ("lw2", owner, 2)):
        status, body = register(cluster[node], name)
        assert status == 202 and f"<position>{position}</position>" in body, (status, body)
    waiters = {}
    for position, name in enumerate(["lw1", "lw2"], 1):
        waiters[name] = cluster.connect(other, f"{name}@{CLIENT_HOST}", PASSWORD)
        check_waiting(waiters[name].next_notice(15), position)
    lv1 = cluster.connect(other, f"lv1@{CLIENT_HOST}", PASSWORD)
    cluster.connect(other, f"lv2@{CLIENT_HOST}", PASSWORD)   # within visitor_ttl
    chat(lv1, f"lv1@{CLIENT_HOST}", agent1, "agent1", "before the loss")

    cluster[owner].kill()
    wait_for(lambda: cluster.status(other).get("owner") == cluster[other].node, 30,
             "the survivor to own the rotation")
    line = parse_line(cluster[other].ctl("clicktochat_line", CLIENT_HOST))
    assert [jid for _, jid, _ in line] == [f"lw1@{CLIENT_HOST}", f"lw2@{CLIENT_HOST}"]
    # A chat ends: the head of the rebuilt line gets the slot, the next moves up.
    lv1.disconnect()
    check_assigned(waiters["lw1"].next_notice(15), agent_jid("agent1"))
    check_visitor(agent1.next_notice(15), f"lw1@{CLIENT_HOST}", "from_line")
    check_waiting(waiters["lw2"].next_notice(15), 1, bounds=(0, 3600))
    chat(waiters["lw1"], f"lw1@{CLIENT_HOST}", agent1, "agent1", "served after the loss")
    assert loads(cluster.status(other)) == {agent_jid("agent1"): "2"}
