"""No server: the test client's handling of the module's notices
(xmpp_client.parse_notice, route_message, Notices) and the pure helpers of
line_common.py that the waiting-line, routing and estimate tests rely on.
Stanzas are built as the module is specified to send them (line-spec:
headlines from the client host carrying one urn:xmpp:clicktochat:0 element)."""

import asyncio
import json
import xml.etree.ElementTree as ET

import pytest
import slixmpp

from line_common import (error_stats, estimate_bounds, fastpath_estimates, median,
                         non_increasing, parse_ctl_status, parse_line, parse_loads,
                         parse_register, parse_status, percentile)
from xmpp_client import NOTICE_NS, Notice, Notices, parse_notice, route_message

CLIENT_HOST = "clients.localhost"
PROLOG = "<?xml version='1.0'?>"


def stanza(payload, mtype="headline", body="text", sender=CLIENT_HOST):
    body_xml = f"<body>{body}</body>" if body is not None else ""
    return slixmpp.Message(xml=ET.fromstring(
        f"<message xmlns='jabber:client' type='{mtype}' from='{sender}' "
        f"to='v@{CLIENT_HOST}/r'>{body_xml}{payload}</message>"))


def route(message):
    messages = asyncio.Queue()
    notices = Notices()
    where = route_message(message, messages, notices)
    return where, messages, notices


def test_waiting_notice_with_and_without_an_estimate():
    notice = parse_notice(stanza(f"<waiting xmlns='{NOTICE_NS}' position='3' "
                                 "estimated_wait='42'/>", body="You are number 3 in line.").xml)
    assert (notice.kind, notice.position, notice.estimated_wait) == ("waiting", 3, 42)
    assert (notice.type, notice.sender, notice.body) == ("headline", CLIENT_HOST,
                                                         "You are number 3 in line.")
    unknown = parse_notice(stanza(f"<waiting xmlns='{NOTICE_NS}' position='1'/>").xml)
    assert (unknown.position, unknown.estimated_wait) == (1, None)


def test_assigned_visitor_and_passed_on_notices():
    assigned = parse_notice(stanza(f"<assigned xmlns='{NOTICE_NS}' agent='a@helpdesk'/>").xml)
    assert (assigned.kind, assigned.agent) == ("assigned", "a@helpdesk")
    visitor = parse_notice(stanza(f"<visitor xmlns='{NOTICE_NS}' jid='v@clients' "
                                  "reason='from_line'/>").xml)
    assert (visitor.kind, visitor.jid, visitor.reason) == ("visitor", "v@clients", "from_line")
    passed = parse_notice(stanza(f"<passed_on xmlns='{NOTICE_NS}' visitor='v@clients' "
                                 "to='b@helpdesk'/>").xml)
    assert (passed.kind, passed.visitor, passed.to) == ("passed_on", "v@clients", "b@helpdesk")


def test_a_malformed_number_fails_where_the_test_reads_it():
    notice = parse_notice(stanza(f"<waiting xmlns='{NOTICE_NS}' position='-1' "
                                 "estimated_wait='1.5'/>").xml)
    with pytest.raises(ValueError):
        notice.position
    with pytest.raises(ValueError):
        notice.estimated_wait


def test_messages_without_the_payload_are_not_notices():
    assert parse_notice(stanza("<x xmlns='jabber:x:oob'/>").xml) is None
    assert parse_notice(stanza("<waiting xmlns='urn:xmpp:clicktochat:1' position='1'/>").xml) is None
    where, messages, notices = route(stanza("", mtype="chat", body="hello"))
    assert where == "message" and messages.qsize() == 1 and notices.history() == []


def test_notices_go_to_their_own_queue_and_log():
    where, messages, notices = route(stanza(f"<waiting xmlns='{NOTICE_NS}' position='2'/>"))
    assert where == "notice" and messages.qsize() == 0
    [notice] = notices.history()
    assert notice.position == 2 and notice.at > 0
    assert notices.history("assigned") == []
    # Whatever the type: a notice is filed as a notice (the test then checks
    # that it is a headline).
    where, _, notices = route(stanza(f"<assigned xmlns='{NOTICE_NS}' agent='a@h'/>",
                                     mtype="chat"))
    assert where == "notice" and notices.history()[0].type == "chat"


def test_an_error_bounce_is_a_message_not_a_notice():
    where, messages, notices = route(stanza(f"<waiting xmlns='{NOTICE_NS}' position='1'/>",
                                            mtype="error"))
    assert where == "message" and notices.history() == []


def test_two_payloads_are_filed_as_invalid():
    where, _, notices = route(stanza(f"<waiting xmlns='{NOTICE_NS}' position='1'/>"
                                     f"<assigned xmlns='{NOTICE_NS}' agent='a@h'/>"))
    assert where == "notice" and notices.history()[0].kind == "invalid"


def test_expect_skips_to_the_matching_notice_and_keeps_the_history():
    async def scenario():
        notices = Notices()
        for payload in (f"<waiting xmlns='{NOTICE_NS}' position='3'/>",
                        f"<waiting xmlns='{NOTICE_NS}' position='2'/>",
                        f"<assigned xmlns='{NOTICE_NS}' agent='a@h'/>",
                        f"<waiting xmlns='{NOTICE_NS}' position='9'/>"):
            notices.add(parse_notice(stanza(payload).xml))
        first = await notices.next()
        found = await notices.expect("assigned", {"agent": "a@h"})
        rest = notices.queue.qsize()
        try:
            await asyncio.wait_for(notices.expect("waiting", {"position": 1}), 0.05)
            missing = False
        except asyncio.TimeoutError:
            missing = True
        return first, found, rest, missing, notices.history("waiting")
    first, found, rest, missing, waiting = asyncio.run(scenario())
    assert first.position == 3 and found.agent == "a@h" and rest == 1 and missing
    assert [n.position for n in waiting] == [3, 2, 9]


def test_parse_register_xml_forms():
    assert parse_register(201, f"{PROLOG}<register><status>ok</status><from>v@c</from>"
                               "<to>a@h</to></register>") == {"status": "ok", "from": "v@c",
                                                              "to": "a@h"}
    assert parse_register(202, f"{PROLOG}<register><status>waiting</status><from>v@c</from>"
                               "<position>2</position><estimated_wait>17</estimated_wait>"
                               "</register>") == {"status": "waiting", "from": "v@c",
                                                  "position": 2, "estimated_wait": 17}
    assert parse_register(202, f"{PROLOG}<register><status>waiting</status><from>v@c</from>"
                               "<position>1</position></register>") == {
        "status": "waiting", "from": "v@c", "position": 1}
    assert parse_register(503, f"{PROLOG}<register><status>error</status>"
                               "<reason>line_full</reason></register>") == {
        "status": "error", "reason": "line_full"}
    for status, body in [
            (202, f"{PROLOG}<register><status>waiting</status><from>v@c</from>"
                  "<position>0</position></register>"),
            (202, f"{PROLOG}<register><status>waiting</status><from>v@c</from>"
                  "<estimated_wait>3</estimated_wait><position>1</position></register>"),
            (201, f"{PROLOG}<register><status>waiting</status><from>v@c</from>"
                  "<position>1</position></register>"),
            (202, f"{PROLOG}<register><status>ok</status><from>v@c</from><to>a@h</to></register>"),
            (200, f"{PROLOG}<register><status>error</status><reason>x</reason></register>")]:
        with pytest.raises(AssertionError):
            parse_register(status, body)


def test_parse_register_json_forms():
    waiting = {"status": "waiting", "from": "v@c", "position": 2}
    assert parse_register(202, json.dumps(waiting)) == waiting
    assert parse_register(202, json.dumps({**waiting, "estimated_wait": 0}))["estimated_wait"] == 0
    assert parse_register(503, json.dumps({"status": "error", "reason": "line_full"}))[
        "reason"] == "line_full"
    for status, doc in [(202, {**waiting, "position": "2"}),
                        (202, {**waiting, "estimated_wait": None}),
                        (202, {**waiting, "extra": 1}),
                        (201, waiting)]:
        with pytest.raises(AssertionError):
            parse_register(status, json.dumps(doc))


def test_parse_status_forms():
    xml = (f"{PROLOG}<status><agents_available>2</agents_available><free_slots>0</free_slots>"
           "<waiting>3</waiting><estimated_wait>12</estimated_wait></status>")
    assert parse_status(xml) == {"agents_available": 2, "free_slots": 0, "waiting": 3,
                                 "estimated_wait": 12}
    assert "estimated_wait" not in parse_status(xml.replace("<estimated_wait>12</estimated_wait>",
                                                            ""))
    assert parse_status('{"agents_available":1,"free_slots":1,"waiting":0,'
                        '"estimated_wait":0}')["estimated_wait"] == 0
    with pytest.raises(AssertionError):
        parse_status('{"agents_available":1,"free_slots":1}')


def test_parse_ctl_outputs():
    status = parse_ctl_status("owner: n@localhost\nqueue: a@h\nloads: a@h=2 b@h=0\n"
                              "waiting: 3\nestimated_wait: unknown\n")
    assert status["waiting"] == "3" and status["estimated_wait"] == "unknown"
    assert parse_loads(status) == {"a@h": 2, "b@h": 0}
    assert parse_loads({"loads": ""}) == {}
    assert parse_line("1 w1@c waited 4s estimated_wait=3\n2 w2@c waited 0s estimated_wait=unknown\n"
                      ) == [(1, "w1@c", 4), (2, "w2@c", 0)]
    assert parse_line("") == []
    for bad in ("2 w1@c waited 4s estimated_wait=3\n", "1 w1@c waited 4 estimated_wait=3\n",
                "1 w1@c waited 4s\n", "1 w1@c waited 4s estimated_wait=\n", "1 w1@c\n"):
        with pytest.raises(AssertionError):
            parse_line(bad)


def test_estimate_bounds_follow_the_spec_formula():
    # One chat of 8 s ended, 4 slots: position 1 waits ceil(1 * 8 / 4) = 2 s.
    assert estimate_bounds(1, [(8.0, 8.0)], 4) == (2, 2)
    assert estimate_bounds(3, [(3.0, 5.0)], 4) == (2, 4)
    assert estimate_bounds(1, [(0.1, 0.2)], 4) == (0, 1)


def test_fastpath_running_average():
    # Waits 4, 2, 6 observed at t = 10, 20, 30; avg: 2, 2, 4.
    observations = [(20, 2), (10, 4), (30, 6)]
    assert fastpath_estimates([5, 10, 15, 25, 35], observations) == [0, 2, 2, 2, 4]


def test_statistics():
    assert median([3, 1, 2]) == 2 and median([4, 1, 3, 2]) == 2.5
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile([7], 0.9) == 7
    assert error_stats([(1, 2), (5, 1), (3, 3)]) == {"count": 3, "median": 1, "p90": 4}
    assert non_increasing([3, 3, 2, 1]) and not non_increasing([2, 3])
    assert isinstance(Notice("waiting").attrs, dict)


def test_check_notice_holds_notices_to_the_contract():
    from line_common import check_assigned, check_notice, check_waiting
    good = parse_notice(stanza(f"<waiting xmlns='{NOTICE_NS}' position='2' estimated_wait='5'/>",
                               body="You are number 2 in line. Estimated wait: about 5 seconds."
                               ).xml)
    check_waiting(good, 2, (4, 6))
    for bad_bounds in ((6, 9), None):   # out of range; or an estimate where none is due
        with pytest.raises(AssertionError):
            check_waiting(good, 2, bad_bounds)
    with pytest.raises(AssertionError):   # a chat message is not a notice
        check_notice(parse_notice(stanza(f"<waiting xmlns='{NOTICE_NS}' position='2'/>",
                                         mtype="chat").xml), "waiting", position=2)
    with pytest.raises(AssertionError):   # from someone else than the client host
        check_notice(parse_notice(stanza(f"<waiting xmlns='{NOTICE_NS}' position='2'/>",
                                         sender="evil@clients.localhost").xml),
                     "waiting", position=2)
    with pytest.raises(AssertionError):   # no readable body
        check_notice(parse_notice(stanza(f"<waiting xmlns='{NOTICE_NS}' position='2'/>",
                                         body=None).xml), "waiting", position=2)
    assigned = parse_notice(stanza(f"<assigned xmlns='{NOTICE_NS}' agent='a@h'/>",
                                   body="a@h will chat with you now.").xml)
    check_assigned(assigned, "a@h")
    with pytest.raises(AssertionError):
        check_assigned(assigned, "b@h")
