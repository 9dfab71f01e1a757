"""The conversation archive in Riak, through the Riak stand-in (test double
speaking Riak's Protocol Buffers protocol, test/riak_standin.py): two ejabberd
nodes race on one agent key and their siblings get merged; the stored value
is the seed's structure for binary_to_term; a Riak outage during a burst of
messages loses and duplicates nothing; an agent's archive far past
riak_max_value_size is split into bounded values that read back whole. Own
servers, own ports."""

import base64
import json
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import AGENT_PASSWORD, CLIENT_HOST, HELPDESK_HOST, Http, agent_jid, agent_and_visitor
from sandbox import REPO, Sandbox, wait_for
from test_archive import ENTRY, conversations, record_of, unescape

RIAK_PORT = 15287
AGENT_KEY = agent_jid("agent1")


class StandIn:
    def __init__(self, data, port=RIAK_PORT):
        self.data = data
        self.port = port
        self.process = None
        # The first start makes the first two writers (one per node) race.
        self.stale_reads_until = 2

    def start(self):
        self.process = subprocess.Popen(
            ["/usr/bin/python3", str(REPO / "test/riak_standin.py"), "--port", str(self.port),
             "--data", str(self.data), "--stale-reads-until", str(self.stale_reads_until)],
            stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()  # printed once it listens
        assert line.startswith("riak stand-in listening"), line
        self.stale_reads_until = 0

    def stop(self):
        self.process.kill()
        self.process.wait(30)

    def siblings(self, key):
        if not self.data.exists():
            return []
        for entry in json.loads(self.data.read_text()):
            if base64.b64decode(entry["key"]) == key.encode():
                return [base64.b64decode(s["value"]) for s in entry["siblings"]]
        return []

    def max_siblings(self):
        stats = Path(str(self.data) + ".stats")
        return json.loads(stats.read_text())["max_siblings"] if stats.exists() else 0


def seed_structure(value):
    """binary_to_term/1 in a real Erlang VM, matched against the seed's
    structure; returns [(start, user, [entry, ...]), ...]."""
    program = f"""
        [{{record, Records}}] = binary_to_term(base64:decode("{base64.b64encode(value).decode()}")),
        lists:foreach(
          fun([{{current_time, Start}}, {{user, User}}, {{conversation, Entries}}])
                when is_binary(Start), is_binary(User), is_list(Entries) ->
                  io:format("record ~s ~s~n", [base64:encode(Start), base64:encode(User)]),
                  [io:format("entry ~s~n", [base64:encode(E)]) || E <- Entries]
          end, Records),
        halt(0)."""
    out = subprocess.run(["erl", "-noshell", "-eval", program], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    records = []
    for line in out.splitlines():
        kind, *fields = line.split()
        decoded = [base64.b64decode(f).decode() for f in fields]
        if kind == "record":
            records.append((decoded[0], decoded[1], []))
        else:
            records[-1][2].append(decoded[0])
    return records


def archive_status(server):
    """`ejabberdctl clicktochat_status` as a dict."""
    lines = server.ctl("clicktochat_status", CLIENT_HOST).splitlines()
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def messages_of(entries):
    return [tuple(unescape(v) for v in ENTRY.fullmatch(e).groups()[1:]) for e in entries]


@pytest.fixture(scope="module")
def riak(tmp_path_factory):
    stand_in = StandIn(tmp_path_factory.mktemp("riak") / "data.json")
    stand_in.start()
    servers = []
    try:
        for name, c2s, http in [("riak_a", 15226, 15284), ("riak_b", 15227, 15285)]:
            server = Sandbox(name, c2s, http, {
                "store": "riak", "riak_cluster": f'["127.0.0.1:{RIAK_PORT}"]',
                "riak_bucket": "clicktochat"})
            server.start()
            servers.append(server)
            server.register("agent1", HELPDESK_HOST, AGENT_PASSWORD)
        yield stand_in, servers
    finally:
        for server in servers:
            server.stop()
        if stand_in.process.poll() is None:
            stand_in.stop()


def test_racing_writers_make_siblings_that_are_merged(riak):
    stand_in, (server_a, server_b) = riak
    agent_a, visitor_a = agent_and_visitor(server_a, "visitor_a")
    agent_b, visitor_b = agent_and_visitor(server_b, "visitor_b")
    try:
        # Both nodes push their first entry; the stand-in answers gets with the
        # empty key until two puts are stored, so both read the same (empty)
        # key and the second put makes a sibling, as two racing writers do
        # against a real Riak.
        senders = [threading.Thread(target=v.send, args=(AGENT_KEY, f"hello from {n}"))
                   for v, n in [(visitor_a, "a"), (visitor_b, "b")]]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(30)
        wait_for(lambda: stand_in.max_siblings() >= 2, 30, "concurrent writers to make siblings")

        # The next push from either node merges the siblings.
        agent_a.send(f"visitor_a@{CLIENT_HOST}", "answer on a")
        wait_for(lambda: len(stand_in.siblings(AGENT_KEY)) == 1
                 and len(seed_structure(stand_in.siblings(AGENT_KEY)[0])) == 2
                 and len(record_of(seed_structure(stand_in.siblings(AGENT_KEY)[0]),
                                   f"visitor_a@{CLIENT_HOST}")[2]) == 2,
                 30, "the siblings to be merged into one value")
        records = seed_structure(stand_in.siblings(AGENT_KEY)[0])
        assert messages_of(record_of(records, f"visitor_a@{CLIENT_HOST}")[2]) == [
            (f"visitor_a@{CLIENT_HOST}", AGENT_KEY, "hello from a"),
            (AGENT_KEY, f"visitor_a@{CLIENT_HOST}", "answer on a")]
        assert messages_of(record_of(records, f"visitor_b@{CLIENT_HOST}")[2]) == [
            (f"visitor_b@{CLIENT_HOST}", AGENT_KEY, "hello from b")]
        # Either node reads the whole merged archive back.
        for server in (server_a, server_b):
            users = sorted(user for _, user, _ in conversations(Http(server), AGENT_KEY))
            assert users == [f"visitor_a@{CLIENT_HOST}", f"visitor_b@{CLIENT_HOST}"]
    finally:
        for client in (agent_a, visitor_a, agent_b, visitor_b):
            client.disconnect()


def test_riak_outage_during_a_burst_loses_and_duplicates_nothing(riak):
    stand_in, (server_a, _) = riak
    agent, visitor = agent_and_visitor(server_a, "visitor_outage")
    visitor_jid = f"visitor_outage@{CLIENT_HOST}"
    try:
        sent = []

        def burst(first, last):
            for i in range(first, last):
                visitor.send(AGENT_KEY, f"burst {i} | ^ %")
                sent.append((visitor_jid, AGENT_KEY, f"burst {i} | ^ %"))

        burst(0, 10)
        stand_in.stop()
        burst(10, 20)
        # The writer has met the outage and keeps the entries in its outbox.
        status = wait_for(lambda: (s := archive_status(server_a))["archive_outbox_entries"] != "0"
                          and s["archive_last_error"].startswith("riak") and s, 30,
                          "the writer to report Riak unreachable with entries waiting")
        assert int(status["archive_committed_entries"]) >= 20
        stand_in.start()
        burst(20, 30)

        def stored():
            siblings = stand_in.siblings(AGENT_KEY)
            if len(siblings) != 1:
                return None
            mine = [r for r in seed_structure(siblings[0]) if r[1] == visitor_jid]
            return mine and len(mine[0][2]) >= len(sent) and mine[0]
        record = wait_for(stored, 90, "every message of the burst to reach Riak")
        assert messages_of(record[2]) == sent
        wait_for(lambda: archive_status(server_a)["archive_outbox_entries"] == "0", 30,
                 "the outbox to be empty once everything is in Riak")
    finally:
        agent.disconnect()
        visitor.disconnect()


BOUNDED_RIAK_PORT = 15324


def test_an_agent_far_past_the_value_bound_is_kept_in_bounded_values(tmp_path):
    stand_in = StandIn(tmp_path / "data.json", BOUNDED_RIAK_PORT)
    stand_in.stale_reads_until = 0
    stand_in.start()
    server = Sandbox("riak_bounded", 15322, 15323, {
        "store": "riak", "riak_cluster": f'["127.0.0.1:{BOUNDED_RIAK_PORT}"]',
        "riak_bucket": "clicktochat", "riak_max_value_size": 4096})
    try:
        with server.serving([("agent1", HELPDESK_HOST, AGENT_PASSWORD)]):
            agent, visitor = agent_and_visitor(server, "visitor_bounded")
            visitor_jid = f"visitor_bounded@{CLIENT_HOST}"
            try:
                sent = []
                for i in range(300):
                    text = f"bounded {i:04} | ^ % " + "z" * 60
                    visitor.send(AGENT_KEY, text)
                    sent.append((visitor_jid, AGENT_KEY, text))
                wait_for(lambda: (s := archive_status(server))["archive_committed_entries"] == "300"
                         and s["archive_outbox_entries"] == "0", 60,
                         "all 300 messages committed and pushed to Riak")
            finally:
                agent.disconnect()
                visitor.disconnect()
            keys = [AGENT_KEY] + [f"{AGENT_KEY}/{n}" for n in range(1, 100)]
            values = []
            for key in keys:
                siblings = stand_in.siblings(key)
                if not siblings:
                    break
                values += siblings
            assert len(values) >= 5, len(values)
            stored = []
            for value in values:
                assert len(value) <= 4096, len(value)
                for _, user, entries in seed_structure(value):
                    assert user == visitor_jid
                    stored += entries
            assert sorted(messages_of(stored)) == sorted(sent)
            # Read through the API: every value gathered, in order.
            records = conversations(Http(server), AGENT_KEY)
            assert len(records) == 1
            assert [entry[1:] for entry in records[0][2]] == sent
    finally:
        stand_in.stop()
