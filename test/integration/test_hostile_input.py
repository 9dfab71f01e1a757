"""Hostile requests against a real ejabberd 23.01 with clicktochat: XML
attacks, broken encodings, JID metacharacters, what nodeprep refuses, HTTP
framing tricks, wrong methods and paths, slow bodies. Every request is sent
over a real socket and gets its documented 4xx; none creates an account,
takes an agent's slot or stops the server from serving.

Its own server ("hostile", 127.0.0.1:15230 XMPP, :15289 HTTP), with
max_sessions 2, no rate limit, agent1 online and an ordinary account
bystander@clients.localhost. Requests that ejabberd_http refuses before our
handler sees them (no body, an unknown method, 20 MB or more, a body not
received in time) get ejabberd's own HTML error page: those cases expect
`EJABBERD`.
"""

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import pytest

from sandbox import CLIENT_HOST, HELPDESK_HOST, Sandbox, wait_for
from xmpp_client import Client

C2S_PORT, HTTP_PORT = 15230, 15289
MAX_SESSIONS = 2
AGENT = f"agent1@{HELPDESK_HOST}"
AGENT_PASSWORD = "agent-secret"
BYSTANDER = "bystander"
BYSTANDER_PASSWORD = "bystander-secret"
XML_PROLOG = "<?xml version='1.0'?>"
EJABBERD = "ejabberd"  # expected "reason" of ejabberd_http's own error pages
CLOSED = "closed"      # expected "reason" when ejabberd_http closes without answering
DEADLINE = 30           # seconds for any one HTTP exchange


# --- raw HTTP ------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: dict = field(default_factory=dict)
    body: bytes = b""


def read_response(sock):
    """Reads one response (head, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Response(status, headers, body[:length])


def exchange(raw, half_close=False):
    """Sends raw bytes on a new connection and reads the one response."""
    with socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=DEADLINE) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return read_response(sock)


def request_bytes(method, path, body=None, headers=(), content_length=True):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    if body is not None and content_length:
        head += f"Content-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return head.encode("latin-1") + b"\r\n" + (body or b"")


def send(method, path, body=None, headers=(), content_length=True):
    def sender():
        return exchange(request_bytes(method, path, body, headers, content_length))
    sender.method = method
    return sender


def post(body, path="/clicktochat/register", headers=()):
    return send("POST", path, as_bytes(body), headers)


def as_bytes(value):
    return value.encode() if isinstance(value, str) else value


def registration(username="hostile_visitor", password="pw"):
    return (b"<?xml version='1.0'?><registration><username>" + as_bytes(username)
            + b"</username><password>" + as_bytes(password) + b"</password></registration>")


def post_over_20_mb():
    """A body ejabberd_http refuses to buffer (>= 20 MiB): it answers as soon
    as it has the head, without reading the body; the client then keeps
    sending what it can, as a real client would."""
    length = 20 * 1024 * 1024 + 1
    with socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=DEADLINE) as sock:
        sock.sendall(request_bytes("POST", "/clicktochat/register", b"")
                     .replace(b"Content-Length: 0", f"Content-Length: {length}".encode()))
        response = read_response(sock)
        try:
            sent = 0
            while sent < length:
                sent += sock.send(b" " * 65536)
        except OSError:
            pass  # the server closed the connection: fine
        return response


def post_truncated_then_half_close():
    """Claims a longer body than it sends, then closes its side: ejabberd_http
    sees the connection closed and closes it too, without an answer."""
    body = registration()
    raw = request_bytes("POST", "/clicktochat/register", body).replace(
        f"Content-Length: {len(body)}".encode(), f"Content-Length: {len(body) + 100}".encode())
    try:
        return exchange(raw, half_close=True)
    except ConnectionError:
        return Response(None)


def chunked(body):
    return hex(len(body))[2:].encode() + b"\r\n" + body + b"\r\n0\r\n\r\n"


# --- the table -----------------------------------------------------------

REGISTER, LIST, CONVERSATIONS, ERROR = "register", "connected_users", "conversations", "error"
JSON = "json"  # expected "root": a JSON error document
JSON_BODY = [("Content-Type", "application/json")]
VALID = registration()
CUT_POINTS = [1, 5, 21, 22, 30, 35, 44, 46, 56, 70, 80, 90, len(VALID) - 1]

BILLION_LAUGHS = (
    "<?xml version='1.0'?><!DOCTYPE registration [<!ENTITY lol 'lol'>"
    + "".join(f"<!ENTITY lol{i} '{('&lol' + str(i - 1) + ';') * 10 if i > 1 else '&lol;' * 10}'>"
              for i in range(1, 10))
    + "]><registration><username>&lol9;</username><password>p</password></registration>")


def quadratic(entity_size, references):
    return ("<?xml version='1.0'?><!DOCTYPE registration [<!ENTITY a '" + "a" * entity_size
            + "'>]><registration><username>u</username><password>" + "&a;" * references
            + "</password></registration>")


CASES = [
    # XML entities and DTDs: no DTD at all, so nothing is fetched or expanded.
    ("xxe_system_file", post("<?xml version='1.0'?><!DOCTYPE registration [<!ENTITY xxe SYSTEM "
                             "'file:///etc/passwd'>]><registration><username>&xxe;</username>"
                             "<password>p</password></registration>"),
     400, REGISTER, "dtd_forbidden"),
    ("xxe_external_dtd", post("<?xml version='1.0'?><!DOCTYPE registration SYSTEM "
                              "'http://127.0.0.1:15230/evil.dtd'>" + VALID.decode()[21:]),
     400, REGISTER, "dtd_forbidden"),
    ("xxe_public_dtd", post("<!DOCTYPE registration PUBLIC '-//EVIL//DTD X//EN' "
                            "'http://127.0.0.1:15230/x.dtd'><registration/>"),
     400, REGISTER, "dtd_forbidden"),
    ("parameter_entities", post("<!DOCTYPE r [<!ENTITY % file SYSTEM 'file:///etc/hostname'>"
                                "<!ENTITY % eval \"<!ENTITY &#x25; exfil SYSTEM "
                                "'http://127.0.0.1:15230/?%file;'>\">%eval;%exfil;]>"
                                "<registration><username>u</username><password>p</password>"
                                "</registration>"),
     400, REGISTER, "dtd_forbidden"),
    ("billion_laughs", post(BILLION_LAUGHS), 400, REGISTER, "dtd_forbidden"),
    ("quadratic_blowup_small", post(quadratic(2000, 1500)), 400, REGISTER, "dtd_forbidden"),
    ("quadratic_blowup_large", post(quadratic(50000, 20000)), 413, REGISTER, "too_large"),
    ("doctype_after_root", post(VALID + b"<!DOCTYPE registration>"),
     400, REGISTER, "dtd_forbidden"),
    ("undeclared_entity", post(registration("&xxe;")), 400, REGISTER, "unknown_entity"),
    ("undeclared_entity_in_attribute",
     post("<registration a='&xxe;'><username>u</username><password>p</password></registration>"),
     400, REGISTER, "unknown_entity"),
    ("lt_in_attribute",
     post("<registration a='<'><username>u</username><password>p</password></registration>"),
     400, REGISTER, "bad_xml"),
    ("duplicate_attribute_after_1000",
     post("<registration " + " ".join(f"a{i}=''" for i in range(1000)) + " a0=''>"
          "<username>u</username><password>p</password></registration>"),
     400, REGISTER, "bad_xml"),

    # Deep nesting: refused at the first nested element (the parser is not
    # recursive), or, past 8 KB, before parsing.
    ("nesting_10000_in_username", post(registration(b"<a>" * 10000 + b"</a>" * 10000)),
     413, REGISTER, "too_large"),
    ("nesting_10000_at_root", post(b"<a>" * 10000 + b"</a>" * 10000), 413, REGISTER, "too_large"),
    ("nesting_1000_in_username", post(registration(b"<a>" * 1000 + b"</a>" * 1000)),
     400, REGISTER, "unexpected_element"),
    ("nesting_2000_at_root", post(b"<a>" * 2000), 400, REGISTER, "unexpected_element"),
    ("nesting_2000_in_registration", post(b"<registration>" + b"<x>" * 2000),
     400, REGISTER, "unexpected_element"),

    # Sizes. ejabberd_http buffers up to 20 MiB before the handler runs.
    ("body_8193_bytes", post(VALID + b" " * (8193 - len(VALID))), 413, REGISTER, "too_large"),
    ("body_10_mb", post(VALID + b" " * (10 * 1024 * 1024)), 413, REGISTER, "too_large"),
    ("body_over_20_mb", post_over_20_mb, 400, None, EJABBERD),

    # Truncated documents.
    *[(f"truncated_at_{cut}", post(VALID[:cut]), 400, REGISTER, "bad_xml") for cut in CUT_POINTS],

    # Not UTF-8.
    ("overlong_slash", post(registration(b"a\xc0\xafb")), 400, REGISTER, "invalid_utf8"),
    ("overlong_nul", post(registration(b"a\xc0\x80b")), 400, REGISTER, "invalid_utf8"),
    ("overlong_3_bytes", post(registration(b"a\xe0\x80\xafb")), 400, REGISTER, "invalid_utf8"),
    ("overlong_4_bytes", post(registration(b"a\xf0\x80\x80\xafb")), 400, REGISTER, "invalid_utf8"),
    ("lone_continuation", post(registration(b"a\x80b")), 400, REGISTER, "invalid_utf8"),
    ("lone_continuation_in_password", post(registration("u", b"\xbf")),
     400, REGISTER, "invalid_utf8"),
    ("high_surrogate_utf8", post(registration(b"a\xed\xa0\x80b")), 400, REGISTER, "invalid_utf8"),
    ("low_surrogate_utf8", post(registration(b"a\xed\xbf\xbfb")), 400, REGISTER, "invalid_utf8"),
    ("cesu8_surrogate_pair", post(registration(b"\xed\xa0\xbd\xed\xb8\x80")),
     400, REGISTER, "invalid_utf8"),
    ("truncated_sequence", post(registration(b"a\xe2\x82")), 400, REGISTER, "invalid_utf8"),
    ("byte_ff", post(registration(b"\xff")), 400, REGISTER, "invalid_utf8"),
    ("above_u10ffff", post(registration(b"\xf4\x90\x80\x80")), 400, REGISTER, "invalid_utf8"),
    ("latin1_declared", post(b"<?xml version='1.0' encoding='ISO-8859-1'?>"
                             + registration(b"caf\xe9")[21:]), 400, REGISTER, "invalid_utf8"),
    ("utf16le_with_bom", post(VALID.decode().encode("utf-16")), 400, REGISTER, "invalid_utf8"),
    ("utf16be_with_bom", post(b"\xfe\xff" + VALID.decode().encode("utf-16-be")),
     400, REGISTER, "invalid_utf8"),
    ("utf16be_without_bom", post(VALID.decode().encode("utf-16-be")), 400, REGISTER, "bad_xml"),

    # NUL and control characters.
    ("nul_raw_in_username", post(registration(b"a\x00b")), 400, REGISTER, "invalid_username"),
    ("nul_raw_in_password", post(registration("u", b"a\x00b")), 400, REGISTER, "invalid_password"),
    ("nul_raw_before_root", post(b"\x00" + VALID), 400, REGISTER, "bad_xml"),
    ("nul_reference", post(registration("a&#0;b")), 400, REGISTER, "bad_xml"),
    ("nul_hex_reference_in_password", post(registration("u", "&#x0;")), 400, REGISTER, "bad_xml"),
    ("control_reference_in_username", post(registration("a&#1;b")),
     400, REGISTER, "invalid_username"),
    ("control_reference_in_password", post(registration("u", "a&#27;b")),
     400, REGISTER, "invalid_password"),
    ("surrogate_reference", post(registration("a&#xD800;b")), 400, REGISTER, "bad_xml"),
    ("reference_above_u10ffff", post(registration("a&#x110000;b")), 400, REGISTER, "bad_xml"),
    ("noncharacter_in_password", post(registration("u", "&#xFFFE;")),
     400, REGISTER, "invalid_password"),

    # A BOM is fine (and nodeprep maps a BOM inside the name to nothing):
    # these reach ejabberd, which finds the bystander.
    ("bom_then_existing_user", post(b"\xef\xbb\xbf" + registration(BYSTANDER)),
     400, REGISTER, "exists"),
    ("bom_inside_username", post(registration("\ufeffbystander")), 400, REGISTER, "exists"),

    # JID metacharacters, raw and as references, and whitespace.
    *[(f"metachar_raw_{name}", post(registration(f"a{char}b")), 400, REGISTER, "invalid_username")
      for name, char in [("at", "@"), ("slash", "/"), ("backslash", "\\"), ("quote", '"'),
                         ("apostrophe", "'"), ("colon", ":"), ("gt", ">"), ("space", " "),
                         ("tab", "\t"), ("newline", "\n"), ("nbsp", "\u00a0"),
                         ("ideographic_space", "\u3000"), ("line_separator", "\u2028")]],
    ("metachar_raw_ampersand", post(registration("a&b")), 400, REGISTER, "bad_xml"),
    ("metachar_raw_lt", post(registration("a<b")), 400, REGISTER, "unexpected_element"),
    *[(f"metachar_escaped_{name}", post(registration(f"a{ref}b")), 400, REGISTER,
       "invalid_username")
      for name, ref in [("at", "&#64;"), ("slash", "&#x2F;"), ("backslash", "&#92;"),
                        ("quot", "&quot;"), ("amp", "&amp;"), ("apos", "&apos;"),
                        ("colon", "&#58;"), ("lt", "&lt;"), ("gt", "&gt;"), ("tab", "&#9;"),
                        ("lf", "&#10;"), ("cr", "&#13;")]],
    ("xep0106_escape", post(registration("a\\20b")), 400, REGISTER, "invalid_username"),
    ("jid_in_username", post(registration(f"{BYSTANDER}@{CLIENT_HOST}/res")),
     400, REGISTER, "invalid_username"),

    # What ejabberd's nodeprep (stringprep) refuses.
    ("private_use_e000", post(registration("\ue000")), 400, REGISTER, "invalid_username"),
    ("replacement_character", post(registration("\ufffd")), 400, REGISTER, "invalid_username"),
    ("noncharacter_fffe", post(registration("a\ufffe")), 400, REGISTER, "invalid_username"),
    ("bidi_mix_l_then_r", post(registration("a\u05d0")), 400, REGISTER, "invalid_username"),
    ("bidi_r_l_r", post(registration("\u05d0a\u05d0")), 400, REGISTER, "invalid_username"),
    ("right_to_left_mark", post(registration("\u200fa")), 400, REGISTER, "invalid_username"),
    ("tag_character", post(registration("a\U000e0001")), 400, REGISTER, "invalid_username"),
    ("unassigned_u0221", post(registration("a\u0221")), 400, REGISTER, "invalid_username"),
    ("nodeprep_expands_past_1023_bytes", post(registration("\u3316" * 85)),
     400, REGISTER, "invalid_username"),

    # An existing account, however it is spelt: refused, and left untouched.
    ("existing_user", post(registration(BYSTANDER)), 400, REGISTER, "exists"),
    ("existing_user_uppercase", post(registration("BYSTANDER")), 400, REGISTER, "exists"),
    ("existing_user_fullwidth", post(registration("ｂｙｓｔａｎｄｅｒ")), 400, REGISTER, "exists"),
    ("existing_user_soft_hyphen", post(registration("by&#xAD;stander")), 400, REGISTER, "exists"),
    ("existing_user_padded", post(registration(" \n\tbystander \n")), 400, REGISTER, "exists"),
    ("existing_user_split_by_comment", post(registration("bys<!-- x -->tander")),
     400, REGISTER, "exists"),
    ("existing_user_split_by_cdata", post(registration("<![CDATA[bysta]]>nder")),
     400, REGISTER, "exists"),
    ("existing_user_new_password", post(registration(BYSTANDER, "stolen")),
     400, REGISTER, "exists"),

    # Field limits, empty, missing and duplicate fields.
    ("username_256_bytes", post(registration("u" * 256)), 400, REGISTER, "username_too_long"),
    ("username_256_bytes_multibyte", post(registration("\u00e9" * 128)),
     400, REGISTER, "username_too_long"),
    ("password_1024_bytes", post(registration("u", "p" * 1024)), 400, REGISTER, "password_too_long"),
    ("empty_username_element", post(registration("")), 400, REGISTER, "empty_username"),
    ("self_closed_username", post("<registration><username/><password>p</password>"
                                  "</registration>"), 400, REGISTER, "empty_username"),
    ("whitespace_username", post(registration(" \t\n ")), 400, REGISTER, "empty_username"),
    ("empty_password", post(registration("u", "")), 400, REGISTER, "empty_password"),
    ("empty_registration", post("<registration/>"), 400, REGISTER, "missing_username"),
    ("missing_password", post("<registration><username>u</username></registration>"),
     400, REGISTER, "missing_password"),
    ("missing_username", post("<registration><password>p</password></registration>"),
     400, REGISTER, "missing_username"),
    ("duplicate_username", post("<registration><username>u</username><username>v</username>"
                                "<password>p</password></registration>"),
     400, REGISTER, "duplicate_field"),
    ("duplicate_password", post("<registration><username>u</username><password>p</password>"
                                "<password>q</password></registration>"),
     400, REGISTER, "duplicate_field"),
    ("duplicate_empty_then_full", post("<registration><username/><username>u</username>"
                                       "<password>p</password></registration>"),
     400, REGISTER, "duplicate_field"),

    # Unknown elements and structure.
    ("unknown_field", post("<registration><username>u</username><password>p</password>"
                           "<admin>true</admin></registration>"), 400, REGISTER,
     "unexpected_element"),
    ("wrong_root", post("<register><username>u</username><password>p</password></register>"),
     400, REGISTER, "unexpected_element"),
    ("element_inside_username", post(registration("<b>u</b>")), 400, REGISTER,
     "unexpected_element"),
    ("second_root", post(VALID + b"<registration/>"), 400, REGISTER, "unexpected_element"),
    ("namespace_prefixed", post("<x:registration xmlns:x='urn:x'><x:username>u</x:username>"
                                "<x:password>p</x:password></x:registration>"),
     400, REGISTER, "unexpected_element"),
    ("text_beside_fields", post("<registration>junk<username>u</username>"
                                "<password>p</password></registration>"), 400, REGISTER,
     "bad_xml"),
    ("text_after_root", post(VALID + b"junk"), 400, REGISTER, "bad_xml"),
    ("mismatched_end_tag", post("<registration><username>u</password></registration>"),
     400, REGISTER, "bad_xml"),

    # CDATA, comments and processing instructions.
    ("cdata_metachar", post(registration("<![CDATA[a@b]]>")), 400, REGISTER, "invalid_username"),
    ("cdata_hiding_markup", post(registration("<![CDATA[</username><username>x]]>")),
     400, REGISTER, "invalid_username"),
    ("cdata_unterminated", post(registration("<![CDATA[u")), 400, REGISTER, "bad_xml"),
    ("cdata_between_fields", post("<registration><![CDATA[x]]><username>u</username>"
                                  "<password>p</password></registration>"), 400, REGISTER,
     "bad_xml"),
    ("comment_with_double_hyphen", post(registration("a<!-- -- -->b")), 400, REGISTER, "bad_xml"),
    ("comment_unterminated", post(registration("a<!-- b")), 400, REGISTER, "bad_xml"),
    ("pi_in_username", post(registration("a<?pi x?>b")), 400, REGISTER, "bad_xml"),
    ("pi_in_password", post(registration("u", "a<?php system('id'); ?>b")),
     400, REGISTER, "bad_xml"),
    ("xml_declaration_in_username", post(registration("a<?xml version='1.0'?>b")),
     400, REGISTER, "bad_xml"),
    ("xml_declaration_twice", post(b"<?xml version='1.0'?>" + VALID), 400, REGISTER, "bad_xml"),
    ("xml_declaration_after_comment", post(b"<!-- c -->" + VALID), 400, REGISTER, "bad_xml"),

    # Wrong methods on every path (ejabberd_http itself refuses a POST or PUT
    # without a body, and methods it does not know, such as PATCH).
    ("get_register", send("GET", "/clicktochat/register"), 405, REGISTER, "method_not_allowed"),
    ("head_register", send("HEAD", "/clicktochat/register"), 405, REGISTER, "method_not_allowed"),
    ("put_register", send("PUT", "/clicktochat/register", VALID), 405, REGISTER,
     "method_not_allowed"),
    ("put_register_no_body", send("PUT", "/clicktochat/register", b""), 400, None, EJABBERD),
    ("delete_register", send("DELETE", "/clicktochat/register"), 405, REGISTER,
     "method_not_allowed"),
    ("options_register", send("OPTIONS", "/clicktochat/register"), 405, REGISTER,
     "method_not_allowed"),
    ("patch_register", send("PATCH", "/clicktochat/register", VALID), 400, None, EJABBERD),
    ("post_register_no_body", send("POST", "/clicktochat/register", b""), 400, None, EJABBERD),
    ("post_list", send("POST", "/clicktochat/list", VALID), 405, LIST, "method_not_allowed"),
    ("post_list_no_body", send("POST", "/clicktochat/list", b""), 400, None, EJABBERD),
    ("put_list", send("PUT", "/clicktochat/list", b"x"), 405, LIST, "method_not_allowed"),
    ("delete_list", send("DELETE", "/clicktochat/list"), 405, LIST, "method_not_allowed"),
    ("post_conversations", send("POST", "/clicktochat/conversations/x", b"x"),
     405, CONVERSATIONS, "method_not_allowed"),
    ("put_conversations", send("PUT", f"/clicktochat/conversations/{AGENT}", b"x"),
     405, CONVERSATIONS, "method_not_allowed"),
    ("delete_conversations", send("DELETE", f"/clicktochat/conversations/{AGENT}"),
     405, CONVERSATIONS, "method_not_allowed"),

    # Unknown paths and traversal attempts.
    ("path_prefix_only", send("GET", "/clicktochat"), 404, ERROR, "not_found"),
    ("path_prefix_slash", send("GET", "/clicktochat/"), 404, ERROR, "not_found"),
    ("path_register_extra", post(VALID, "/clicktochat/register/extra"), 404, ERROR, "not_found"),
    ("path_register_uppercase", post(VALID, "/clicktochat/REGISTER"), 404, ERROR, "not_found"),
    ("path_list_extra", send("GET", "/clicktochat/list/x"), 404, ERROR, "not_found"),
    ("traversal_dotdot", send("GET", "/clicktochat/../../etc/passwd"), 404, None, EJABBERD),
    ("traversal_encoded_dots", send("GET", "/clicktochat/%2e%2e/%2e%2e/etc/passwd"),
     404, None, EJABBERD),
    ("traversal_encoded_slashes", send("GET", "/clicktochat/..%2f..%2fetc%2fpasswd"),
     404, None, EJABBERD),
    ("traversal_in_conversations", send("GET", "/clicktochat/conversations/"
                                               "..%2F..%2Fetc%2Fpasswd"), 404, ERROR, "not_found"),
    ("conversations_not_an_agent", send("GET", f"/clicktochat/conversations/{BYSTANDER}@"
                                               f"{CLIENT_HOST}"), 404, CONVERSATIONS,
     "unknown_agent"),
    ("conversations_no_such_agent", send("GET", f"/clicktochat/conversations/nobody@"
                                                f"{HELPDESK_HOST}"), 404, CONVERSATIONS,
     "unknown_agent"),
    ("conversations_invalid_jid", send("GET", "/clicktochat/conversations/a@b@c"),
     404, CONVERSATIONS, "unknown_agent"),
    ("conversations_invalid_utf8", send("GET", "/clicktochat/conversations/%ff%fe"),
     404, CONVERSATIONS, "unknown_agent"),
    ("conversations_nul", send("GET", "/clicktochat/conversations/%00"), 400, None, EJABBERD),
    ("bad_percent_escape", send("GET", "/clicktochat/li%zzst"), 400, None, EJABBERD),

    # Content types: a body is JSON when its Content-Type says so, else XML;
    # the answer is JSON when the client sent JSON or accepts it.
    ("json_syntax", post(b'{"username": "u", "password": }', headers=JSON_BODY),
     400, JSON, "bad_json"),
    ("json_not_an_object", post(b'["u", "p"]', headers=JSON_BODY), 400, JSON, "bad_json"),
    ("json_number_field", post(b'{"username": 7, "password": "p"}', headers=JSON_BODY),
     400, JSON, "bad_json"),
    ("json_deep_nesting", post(b'{"username": ' + b"[" * 3000 + b"]" * 3000 + b"}",
                               headers=JSON_BODY), 400, JSON, "bad_json"),
    ("json_duplicate_field", post(b'{"username": "u", "username": "v", "password": "p"}',
                                  headers=JSON_BODY), 400, JSON, "duplicate_field"),
    ("json_unknown_field", post(b'{"username": "u", "password": "p", "admin": true}',
                                headers=JSON_BODY), 400, JSON, "unexpected_field"),
    ("json_metacharacter", post(b'{"username": "a@b", "password": "p"}', headers=JSON_BODY),
     400, JSON, "invalid_username"),
    ("json_escaped_nul", post(b'{"username": "a\\u0000b", "password": "p"}',
                              headers=JSON_BODY), 400, JSON, "invalid_username"),
    ("json_missing_password", post(b'{"username": "u"}', headers=JSON_BODY),
     400, JSON, "missing_password"),
    ("json_existing_user", post(b'{"username": "bystander", "password": "p"}',
                                headers=JSON_BODY), 400, JSON, "exists"),
    ("json_too_large", post(b'{"username": "u", "password": "' + b"p" * 9000 + b'"}',
                            headers=JSON_BODY), 413, JSON, "too_large"),
    ("json_body_accept_xml", post(b'{"username": ', headers=JSON_BODY + [("Accept", "text/xml")]),
     400, REGISTER, "bad_json"),
    ("xml_body_accept_json", post(registration(BYSTANDER),
                                  headers=[("Accept", "application/json")]),
     400, JSON, "exists"),
    ("json_body_without_content_type", post(b'{"username": "u", "password": "p"}'),
     400, REGISTER, "bad_xml"),
    ("form_urlencoded", post(b"username=u&password=p",
                             headers=[("Content-Type", "application/x-www-form-urlencoded")]),
     400, REGISTER, "bad_xml"),
    ("xml_content_type_existing_user", post(registration(BYSTANDER),
                                            headers=[("Content-Type", "application/xml")]),
     400, REGISTER, "exists"),

    # Query strings on /list.
    ("list_query", send("GET", "/clicktochat/list?agent=x"), 400, LIST, "unexpected_parameters"),
    ("list_query_encoded", send("GET", "/clicktochat/list?%00=%ff"), 400, LIST,
     "unexpected_parameters"),
    ("list_query_undecodable", send("GET", "/clicktochat/list?%zz"), 400, LIST,
     "unexpected_parameters"),
    ("list_query_separators_only", send("GET", "/clicktochat/list?&&"), 400, LIST,
     "unexpected_parameters"),
    ("head_list_query", send("HEAD", "/clicktochat/list?x=1"), 400, LIST,
     "unexpected_parameters"),

    # HTTP framing.
    ("chunked", send("POST", "/clicktochat/register", chunked(VALID),
                     [("Transfer-Encoding", "chunked")], content_length=False),
     400, None, EJABBERD),
    ("chunked_and_content_length", send("POST", "/clicktochat/register", chunked(VALID),
                                        [("Transfer-Encoding", "chunked")]),
     400, REGISTER, "bad_xml"),
    ("content_length_negative", send("POST", "/clicktochat/register", VALID,
                                     [("Content-Length", "-1")], content_length=False),
     400, None, EJABBERD),
    ("content_length_not_a_number", send("POST", "/clicktochat/register", VALID,
                                         [("Content-Length", "12abc")], content_length=False),
     400, None, EJABBERD),
    ("content_length_longer_than_body", post_truncated_then_half_close, None, None, CLOSED),
    ("forwarded_for_garbage", post(registration(BYSTANDER),
                                   headers=[("X-Forwarded-For", "../../<x>, ::zz, 300.1.1.1")]),
     400, REGISTER, "exists"),
]


# --- the server ----------------------------------------------------------

@pytest.fixture(scope="module")
def hostile():
    sandbox = Sandbox("hostile", C2S_PORT, HTTP_PORT,
                      {"max_sessions": MAX_SESSIONS, "max_registrations_per_minute": 0})
    sandbox.start()
    agent = control = None
    try:
        sandbox.register("agent1", HELPDESK_HOST, AGENT_PASSWORD)
        sandbox.register(BYSTANDER, CLIENT_HOST, BYSTANDER_PASSWORD)
        agent = Client(AGENT, AGENT_PASSWORD, C2S_PORT)
        # Checked after every case: ejabberdctl would take most of a second.
        control = sandbox.control()
        sandbox.accounts = control.registered_users
        sandbox.sessions = control.connected_users
        yield sandbox
    finally:
        if agent is not None:
            agent.disconnect()
        if control is not None:
            control.close()
        sandbox.stop()


def get_list():
    return exchange(request_bytes("GET", "/clicktochat/list"))


def assert_serving():
    response = get_list()
    assert (response.status, response.body.decode()) == (
        200, f"{XML_PROLOG}<connected_users><username>{AGENT}</username></connected_users>")


def assert_reply(response, status, root, reason, method=None):
    if reason == CLOSED:
        assert response.status is None, response
        return
    if reason == EJABBERD:
        # ejabberd_http's own page: the request never reached the handler.
        assert response.status == status, response
        assert response.headers["content-type"].startswith("text/html"), response
        return
    if root == JSON:
        assert (response.status, json.loads(response.body)) == (
            status, {"status": "error", "reason": reason})
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        return
    expected = f"{XML_PROLOG}<{root}><status>error</status><reason>{reason}</reason></{root}>"
    if method == "HEAD":
        # ejabberd_http sends a HEAD answer's head only (Content-Length: 0).
        assert (response.status, response.body) == (status, b"")
    else:
        assert (response.status, response.body.decode()) == (status, expected)
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    if status == 405:
        assert response.headers["allow"]


# --- slow bodies -----------------------------------------------------------

SLOW_CONNECTIONS = 8
SLOW_SECONDS = 5
# ejabberd_http waits 60 s for a whole body, then answers 400 (its own page).
SLOW_ANSWER_DEADLINE = 90


class SlowBodies:
    """Connections that send their head with a Content-Length, then one byte
    a second for SLOW_SECONDS, then nothing; each waits for the server's
    answer in its own thread."""

    def __init__(self):
        self.sockets = []
        self.answers = {}
        self.threads = []
        self.started = time.monotonic()

    def open(self):
        for i in range(SLOW_CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", HTTP_PORT),
                                            timeout=SLOW_ANSWER_DEADLINE)
            sock.sendall(b"POST /clicktochat/register HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Length: 1000\r\n\r\n")
            self.sockets.append(sock)

    def dribble(self):
        for sock in self.sockets:
            sock.sendall(b"<")

    def wait_answers(self):
        def wait(i, sock):
            try:
                self.answers[i] = (read_response(sock), time.monotonic() - self.started)
            except (OSError, ConnectionError) as error:
                self.answers[i] = (error, time.monotonic() - self.started)
            finally:
                sock.close()
        for i, sock in enumerate(self.sockets):
            thread = threading.Thread(target=wait, args=(i, sock), daemon=True)
            thread.start()
            self.threads.append(thread)


@pytest.fixture(scope="module")
def slow_bodies(hostile):
    slow = SlowBodies()
    yield slow
    for sock in slow.sockets:
        sock.close()


def test_slow_bodies_do_not_hold_up_other_requests(hostile, slow_bodies):
    before = hostile.accounts()
    slow_bodies.open()
    for second in range(SLOW_SECONDS):
        tick = time.monotonic()
        slow_bodies.dribble()
        # Meanwhile another connection is served at once.
        started = time.monotonic()
        assert_serving()
        assert_reply(post(registration(BYSTANDER))(), 400, REGISTER, "exists")
        assert time.monotonic() - started < 2, "a normal request waited behind slow bodies"
        # Pacing the slow clients: one byte a second is the point of the test.
        time.sleep(max(0.0, tick + 1 - time.monotonic()))
    slow_bodies.wait_answers()
    assert hostile.accounts() == before


@pytest.mark.parametrize("sender, status, root, reason",
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_hostile_request(hostile, sender, status, root, reason):
    assert hostile.accounts() == {BYSTANDER}
    assert_reply(sender(), status, root, reason, getattr(sender, "method", None))
    assert hostile.accounts() == {BYSTANDER}, "a refused request created an account"
    assert_serving()


def test_the_slow_bodies_were_answered_and_closed(hostile, slow_bodies):
    for thread in slow_bodies.threads:
        thread.join(max(0.0, slow_bodies.started + SLOW_ANSWER_DEADLINE - time.monotonic()))
    assert len(slow_bodies.answers) == SLOW_CONNECTIONS, "a slow body is still held open"
    for answer, _elapsed in slow_bodies.answers.values():
        # ejabberd_http's own 400 once its 60 s body timeout runs out.
        assert isinstance(answer, Response) and answer.status == 400, answer
    assert hostile.accounts() == {BYSTANDER}
    assert_serving()


def test_the_bystander_is_untouched(hostile):
    bystander = Client(f"{BYSTANDER}@{CLIENT_HOST}", BYSTANDER_PASSWORD, C2S_PORT)
    bystander.disconnect()
    wait_for(lambda: not [jid for jid in hostile.sessions()
                          if jid.startswith(f"{BYSTANDER}@{CLIENT_HOST}/")], 20,
             "the bystander's session to close")
    assert hostile.accounts() == {BYSTANDER}, "the bystander's account was removed"


def test_no_slot_was_consumed(hostile):
    """After the whole table agent1 still takes exactly max_sessions visitors."""
    for i in range(MAX_SESSIONS):
        response = post(registration(f"after_table_{i}"))()
        assert response.status == 201, response
        assert re.search(f"<to>{re.escape(AGENT)}</to>", response.body.decode())
    assert_reply(post(registration("one_too_many"))(), 503, REGISTER, "no_agent_available")
    assert hostile.accounts() == {BYSTANDER, "after_table_0", "after_table_1"}


def test_nothing_crashed(hostile):
    log = hostile.log_text()
    assert "CRASH REPORT" not in log and "[error]" not in log, hostile.log_tail()
