"""The seed era configured ejabberd with Erlang terms (ejabberd.cfg) and the
module with its own clicktochat.conf. ejabberd 23.01 still reads such an
ejabberd.cfg: with the seed's module and request handler entries, both modules
load and serve the API; the hosts come from clicktochat.conf (named by
config_file), and an option set in ejabberd.cfg wins over the file's. Own
server, own ports."""

import pytest

from conftest import AGENT_PASSWORD, CLIENT_HOST, HELPDESK_HOST, Http, agent_jid
from sandbox import Sandbox
from xmpp_client import Client

C2S_PORT = 15223
HTTP_PORT = 15281
CLICKTOCHAT_CONF = f"""\
%% The original project's clicktochat.conf.
{{riak_erlang_client, "/opt/riak-erlang-client/ebin"}}.
{{host_client, "{CLIENT_HOST}"}}.
{{host_helpdesk, "{HELPDESK_HOST}"}}.
{{max_sessions, 3}}.
{{riak_cluster, [{{"127.0.0.1", 8087}}]}}.
"""


@pytest.fixture(scope="module")
def legacy_server():
    sandbox = Sandbox("legacy", C2S_PORT, HTTP_PORT, legacy_cfg=True, module_options={
        "client_host": None, "helpdesk_host": None, "max_sessions": 1,
        "config_file": "/tmp/clicktochat-legacy/etc/clicktochat.conf",
    }, root="/tmp/clicktochat-legacy", files={"etc/clicktochat.conf": CLICKTOCHAT_CONF})
    with sandbox.serving([("agent1", HELPDESK_HOST, AGENT_PASSWORD)]):
        yield sandbox


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
        assert status == 503, "max_sessions 1 of ejabberd.cfg wins over the file's 3"
        status, _, body = http.request("GET", "/clicktochat/list")
        assert (status, body) == (200, (
            "<?xml version='1.0'?><connected_users>"
            f"<username>agent1@{HELPDESK_HOST}</username></connected_users>"))
    finally:
        agent.disconnect()
