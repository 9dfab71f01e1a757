"""The visitors' assignments on disk (clicktochat_assignments_keeper): the
Mnesia table is in memory, and each node keeps a copy of its client host's
rows in a redb file of its spool, committed within 10 ms of a change. What a
kill -9 leaves committed comes back, and a table of an earlier version
(disc_copies) becomes the in-memory one with its records kept.

Ports 15243 (c2s) and 15244 (HTTP)."""

import pytest

from conftest import AGENT_PASSWORD, CLIENT_HOST, HELPDESK_HOST, Http, agent_jid
from sandbox import Sandbox, wait_for
from test_archive_riak import archive_status
from xmpp_client import Client

KEPT_FILE = f"clicktochat_{CLIENT_HOST}_visitors.redb"


@pytest.fixture
def kept_server():
    sandbox = Sandbox("kept", 15243, 15244, {"max_sessions": 2, "visitor_ttl": 600})
    with sandbox.serving([("agent1", HELPDESK_HOST, AGENT_PASSWORD)]):
        yield sandbox


def wait_kept(server, at_least):
    """Until every change of the assignments that reached the keeper (at
    least `at_least` since the node started) is committed to its file."""
    def committed():
        status = archive_status(server)
        changes = int(status["kept_changes"])
        return changes >= at_least and int(status["kept_committed_changes"]) == changes
    wait_for(committed, 10, "the assignments' changes to be committed",
             seen=lambda: archive_status(server))


def assert_still_assigned(server, visitor_name):
    """After a restart: `visitor_name`'s account and agent1's slot are back
    (one slot of two left), it chats with agent1, and logging out ends it."""
    http = Http(server)
    assert visitor_name in server.registered_users()
    agent = Client(agent_jid("agent1"), AGENT_PASSWORD, server.c2s_port)
    try:
        visitor = Client(f"{visitor_name}@{CLIENT_HOST}", "pw", server.c2s_port)
        visitor.send(agent_jid("agent1"), "still assigned")
        assert agent.receive()["body"] == "still assigned"
        assert http.register("second_visitor", "pw")[0] == 201
        assert http.register("third_visitor", "pw")[0] == 503
        visitor.disconnect()
        wait_for(lambda: visitor_name not in server.registered_users(), 30,
                 "the restored visitor's account to be removed after it leaves")
        assert http.register("fourth_visitor", "pw")[0] == 201
    finally:
        agent.disconnect()


def test_kill_9_keeps_the_committed_assignments(kept_server):
    agent = Client(agent_jid("agent1"), AGENT_PASSWORD, kept_server.c2s_port)
    assert Http(kept_server).register("kept_visitor", "pw")[0] == 201
    wait_kept(kept_server, 1)
    agent.disconnect()
    # The account is ejabberd's (its passwd table), written to disk through
    # Mnesia's log, which a kill -9 may cut short: synced, as ours is.
    assert kept_server.rpc("mnesia", "sync_log") == "ok"

    kept_server.kill()
    kept_server.start(fresh=False)
    assert kept_server.count_in_log(f"1 visitors of {CLIENT_HOST} restored") == 1
    assert kept_server.rpc("mnesia", "table_info", "clicktochat_visitor", "storage_type") \
        == "ram_copies"
    assert_still_assigned(kept_server, "kept_visitor")


def test_an_earlier_versions_disc_table_is_kept_in_the_file(kept_server):
    # The table as versions before the keeper had it: disc_copies, and no file.
    assert kept_server.rpc("mnesia", "change_table_copy_type", "clicktochat_visitor", "node()",
                           "disc_copies") == "{atomic,ok}"
    agent = Client(agent_jid("agent1"), AGENT_PASSWORD, kept_server.c2s_port)
    assert Http(kept_server).register("old_visitor", "pw")[0] == 201
    agent.disconnect()
    kept_server.stop()
    (kept_server.spool / KEPT_FILE).unlink()

    # Started on it: the table is in memory again, its records kept, and
    # they reach the file (the disc copy is gone: a kill -9 leaves the file
    # alone to bring them back).
    kept_server.start(fresh=False)
    assert kept_server.rpc("mnesia", "table_info", "clicktochat_visitor", "storage_type") \
        == "ram_copies"
    assert kept_server.count_in_log("visitors of") == 0     # the table had them: no restore
    wait_kept(kept_server, 1)
    assert kept_server.rpc("mnesia", "sync_log") == "ok"
    kept_server.kill()
    kept_server.start(fresh=False)
    assert kept_server.count_in_log(f"1 visitors of {CLIENT_HOST} restored") == 1
    assert_still_assigned(kept_server, "old_visitor")
