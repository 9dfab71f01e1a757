"""The seed era configured ejabberd with Erlang terms (ejabberd.cfg). ejabberd
23.01 still reads such a file: with the seed's module and request handler
entries, both modules load and serve the API. Own server, own ports."""

import pytest

from conftest import AGENT_PASSWORD, CLIENT_HOST, HELPDESK_HOST, Http, agent_jid
from sandbox import Sandbox
from xmpp_client import Client

C2S_PORT = 15223
HTTP_PORT = 15281


@pytest.fixture(scope="module")
def legacy_server():
    sandbox = Sandbox("legacy", C2S_PORT, HTTP_PORT, {"max_sessions": 1}, legacy_cfg=True)
    sandbox.start()
    try:
        sandbox.register("agent1", HELPDESK_HOST, AGENT_PASSWORD)
        yield sandbox
    finally:
        sandbox.stop()


def test_legacy_cfg_loads_both_modules_and_serves_register(legacy_server):
    assert legacy_server.config_file.name == "ejabberd.cfg"
    assert "{request_handlers, [{[\"clicktochat\"], mod_http_clicktochat}]}" in \
        legacy_server.config_file.read_text()
    http = Http(legacy_server)
    agent = Client(agent_jid("agent1"), AGENT_PASSWORD, C2S_PORT)
    try:
        status, _, body = http.register("legacy_visitor", "123")
        assert (status, body) == (201, (
            "<?xml version='1.0'?><register><status>ok</status>"
            f"<from>legacy_visitor@{CLIENT_HOST}</from>"
            f"<to>agent1@{HELPDESK_HOST}</to></register>"))
        status, _, body = http.register("second_visitor", "123")
        assert status == 503, "max_sessions 1 from the legacy options holds"
        status, _, body = http.request("GET", "/clicktochat/list")
        assert (status, body) == (200, (
            "<?xml version='1.0'?><connected_users>"
            f"<username>agent1@{HELPDESK_HOST}</username></connected_users>"))
    finally:
        agent.disconnect()
