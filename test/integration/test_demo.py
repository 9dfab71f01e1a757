"""`make demo` as the README shows it: the demo starts, the seed's curl
command gets a visitor assigned to the demo's agent, the visitor chats with
the demo's bot over the WebSocket the banner names, and `make demo-stop` ends
it. Own node name and ports."""

import os
import subprocess
import threading
import urllib.request

from sandbox import REPO, port_open, wait_for
from xmpp_transports import WebSocketClient

HTTP_PORT = 15282
C2S_PORT = 15224


def test_make_demo_serves_the_seed_api_and_demo_stop_ends_it():
    env = {**os.environ, "DEMO_NAME": "demotest", "DEMO_HTTP_PORT": str(HTTP_PORT),
           "DEMO_C2S_PORT": str(C2S_PORT)}
    demo = subprocess.Popen(["make", "-s", "-C", str(REPO), "demo"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = []
    reader = threading.Thread(target=lambda: output.extend(demo.stdout), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("Stop with Ctrl-C" in line for line in output)
                 or demo.poll() is not None, 180, "the demo to print its banner")
        assert demo.poll() is None, "".join(output)
        text = "".join(output)
        assert f"http://127.0.0.1:{HTTP_PORT}/clicktochat/register" in text
        assert "agent1@helpdesk.localhost" in text and 'password "demo"' in text
        assert f"ws://127.0.0.1:{HTTP_PORT}/ws" in text
        assert f"http://127.0.0.1:{HTTP_PORT}/bosh" in text
        assert "STARTTLS required" in text

        result = subprocess.run(
            ["curl", "-s", "-H", "Accept: text/xml", "-X", "POST", "-d",
             "<?xml version='1.0'?><registration><username>my_client</username>"
             "<password>123</password></registration>",
             f"http://127.0.0.1:{HTTP_PORT}/clicktochat/register"],
            capture_output=True, text=True, timeout=30, check=True)
        assert result.stdout == (
            "<?xml version='1.0'?><register><status>ok</status>"
            "<from>my_client@clients.localhost</from><to>agent1@helpdesk.localhost</to>"
            "</register>")
        with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/clicktochat/list",
                                    timeout=30) as response:
            assert b"<username>agent1@helpdesk.localhost</username>" in response.read()
        visitor = WebSocketClient("my_client@clients.localhost", "123",
                                  f"ws://127.0.0.1:{HTTP_PORT}/ws")
        visitor.send("agent1@helpdesk.localhost", "hello demo")
        assert visitor.receive().body == ("Hello my_client@clients.localhost, this is the demo "
                                          "agent agent1. You said: hello demo")
        visitor.close()
    finally:
        subprocess.run(["make", "-s", "-C", str(REPO), "demo-stop"], env=env,
                       capture_output=True, timeout=120)
        try:
            demo.wait(120)
        finally:
            if demo.poll() is None:
                demo.kill()
    reader.join(10)
    assert demo.returncode == 0, "".join(output)
    assert "demo stopped" in "".join(output)
    assert not port_open(HTTP_PORT) and not port_open(C2S_PORT)
