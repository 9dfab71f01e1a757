%%% mod_http_clicktochat: the HTTP API of click to chat, mounted by an
%%% ejabberd_http listener (`request_handlers: /clicktochat: mod_http_clicktochat').
%%%
%%% What is HTTP lives here: routing, methods, the client's address as
%%% ejabberd_http gives it, content negotiation, statuses and headers. Each
%%% request makes one call to clicktochat_api; rendering the body is done by
%%% the NIF. XML is the default; JSON is spoken to clients that send it
%%% (Content-Type: application/json) or ask for it (Accept: application/json).
%%% Two static files are served too: the widget's bundle (widget.js) and a
%%% demo page using it (demo), from the `priv' directory beside this
%%% module's `ebin', as the NIF is found.
-module(mod_http_clicktochat).

-export([process/2, request_format/1, response_format/1]).

-include("ejabberd_http.hrl").

-type format() :: xml | json.

-spec process([binary()], #request{}) ->
          {pos_integer(), list(), binary()} | {pos_integer(), binary(), list(), binary()}.
process(Path, #request{headers = Headers} = Request) ->
    route(Path, Request, response_format(Headers)).

%% #request.ip is the client's address as ejabberd_http resolved it: the
%% peer, or the address X-Forwarded-For gives when every hop after it is in
%% the global trusted_proxies.
route([<<"register">>], #request{method = 'POST', data = Body, host = Host, ip = {IP, _},
                                 headers = Headers}, Format) ->
    case clicktochat_api:register(Host, IP, {request_format(Headers), Body}) of
        {ok, VisitorJid, AgentJid} ->
            {201, headers(Format), clicktochat_nif:render_register_ok(Format, VisitorJid, AgentJid)};
        %% In the line: the account exists, the agent comes later (over XMPP).
        {waiting, VisitorJid, Position, Estimate} ->
            {202, headers(Format),
             clicktochat_nif:render_register_waiting(Format, VisitorJid, Position, Estimate)};
        {rate_limited, RetryAfter} ->
            with_header(error_reply(Format, 429, register, rate_limited),
                        {<<"Retry-After">>, integer_to_binary(RetryAfter)});
        {error, Reason} ->
            error_reply(Format, register_status(Reason), register, Reason)
    end;
route([<<"register">>], _Request, Format) ->
    method_not_allowed(Format, register, <<"POST">>);
route([<<"list">>], #request{method = Method, host = Host, raw_path = RawPath}, Format)
  when Method == 'GET'; Method == 'HEAD' ->
    case no_query(RawPath) of
        true ->
            case clicktochat_api:connected_agents(Host) of
                {ok, Agents} -> {200, headers(Format), clicktochat_nif:render_list(Format, Agents)};
                {error, not_configured} ->
                    error_reply(Format, 503, connected_users, not_configured)
            end;
        false ->
            error_reply(Format, 400, connected_users, unexpected_parameters)
    end;
route([<<"list">>], _Request, Format) ->
    method_not_allowed(Format, connected_users, <<"GET, HEAD">>);
%% Safe for a public page (no names), so any origin may read it; never
%% cached, it changes with every chat.
route([<<"status">>], #request{method = Method, host = Host, raw_path = RawPath}, Format)
  when Method == 'GET'; Method == 'HEAD' ->
    case no_query(RawPath) of
        true ->
            case clicktochat_api:status(Host) of
                {ok, {Agents, FreeSlots, Waiting, Estimate}} ->
                    {200, [{<<"Access-Control-Allow-Origin">>, <<"*">>},
                           {<<"Cache-Control">>, <<"no-store">>} | headers(Format)],
                     clicktochat_nif:render_status(Format, {Agents, FreeSlots}, Waiting,
                                                   Estimate)};
                {error, Reason} -> error_reply(Format, 503, status, Reason)
            end;
        false -> error_reply(Format, 400, status, unexpected_parameters)
    end;
route([<<"status">>], _Request, Format) ->
    method_not_allowed(Format, status, <<"GET, HEAD">>);
%% The archive is XML (the original project's entry format inside) only;
%% its errors follow the client's format.
route([<<"conversations">>, AgentJid], #request{method = 'GET', ip = {IP, _}}, Format) ->
    case clicktochat_api:conversations(AgentJid, IP) of
        {ok, Xml} -> {200, headers(xml), Xml};
        {error, Reason} when Reason == not_an_agent; Reason == unknown_agent ->
            error_reply(Format, 404, conversations, unknown_agent);
        {error, forbidden} -> error_reply(Format, 403, conversations, forbidden);
        {error, StoreError} -> error_reply(Format, 503, conversations, StoreError)
    end;
route([<<"conversations">>, _AgentJid], _Request, Format) ->
    method_not_allowed(Format, conversations, <<"GET">>);
route([File], #request{method = Method, headers = Headers}, Format)
  when (File == <<"widget.js">> orelse File == <<"demo">>)
       andalso (Method == 'GET' orelse Method == 'HEAD') ->
    static(File, Headers, Format);
route([File], _Request, Format) when File == <<"widget.js">>; File == <<"demo">> ->
    method_not_allowed(Format, error, <<"GET, HEAD">>);
route(_Path, _Request, Format) ->
    error_reply(Format, 404, error, not_found).

%% The widget's bundle and its demo page. Read at each request (a few tens
%% of KB; a rebuilt bundle is served without a restart). The bundle may be
%% cached by browsers for an hour and revalidated by its ETag; the page is
%% always revalidated. Not built (an install without npm): 404 like any
%% unknown path.
static(File, Headers, Format) ->
    {Name, Type, MaxAge} = case File of
                               <<"widget.js">> -> {"widget.js", <<"text/javascript; charset=utf-8">>, 3600};
                               <<"demo">> -> {"demo.html", <<"text/html; charset=utf-8">>, 0}
                           end,
    Ebin = filename:dirname(code:which(?MODULE)),
    case file:read_file(filename:join([filename:dirname(Ebin), "priv", Name])) of
        {ok, Body} ->
            ETag = <<$", (binary:encode_hex(erlang:md5(Body)))/binary, $">>,
            Common = [{<<"Content-Type">>, Type},
                      {<<"Cache-Control">>, <<"public, max-age=", (integer_to_binary(MaxAge))/binary>>},
                      {<<"ETag">>, ETag},
                      {<<"X-Content-Type-Options">>, <<"nosniff">>}],
            case header(<<"if-none-match">>, Headers) == string:lowercase(ETag) of
                true -> {304, Common, <<>>};
                false -> {200, Common, Body}
            end;
        {error, _} ->
            error_reply(Format, 404, error, not_found)
    end.

%% Judged on the raw query string: ejabberd_http's parsed one drops what it
%% cannot decode (`?%zz') and empty parameters (`?&&').
no_query(RawPath) ->
    case binary:split(RawPath, <<"?">>) of
        [_Path] -> true;
        [_Path, <<>>] -> true;
        _ -> false
    end.

register_status(too_large) -> 413;
register_status(Reason) when Reason == no_agent_available; Reason == line_full;
                             Reason == too_many_visitors; Reason == not_configured -> 503;
register_status(Reason) when Reason == internal_error; Reason == db_failure -> 500;
register_status(_BadRequest) -> 400.

method_not_allowed(Format, Root, Allowed) ->
    with_header(error_reply(Format, 405, Root, method_not_allowed), {<<"Allow">>, Allowed}).

%% With the reason phrase: ejabberd_http 23.01 knows none for 429, and
%% crashes the connection on a status it cannot name.
error_reply(Format, Status, Root, Reason) ->
    {Status, phrase(Status), headers(Format), clicktochat_nif:render_error(Format, Root, Reason)}.

with_header({Status, Phrase, Headers, Body}, Header) ->
    {Status, Phrase, [Header | Headers], Body}.

phrase(429) -> <<"Too Many Requests">>;
phrase(_) -> <<>>.    % ejabberd_http's own

headers(xml) -> [{<<"Content-Type">>, <<"text/xml; charset=utf-8">>}];
headers(json) -> [{<<"Content-Type">>, <<"application/json; charset=utf-8">>}].

%% What the body is: JSON if its Content-Type says so, else XML (the
%% original project's clients send XML with any or no Content-Type).
-spec request_format([{atom() | binary(), binary()}]) -> format().
request_format(Headers) ->
    case header(<<"content-type">>, Headers) of
        <<"application/json", _/binary>> -> json;
        _ -> xml
    end.

%% What to answer in: JSON if the client accepts it, or sent JSON without
%% asking for XML; else XML.
-spec response_format([{atom() | binary(), binary()}]) -> format().
response_format(Headers) ->
    Accept = header(<<"accept">>, Headers),
    AsksJson = binary:match(Accept, <<"application/json">>) /= nomatch,
    AsksXml = binary:match(Accept, <<"xml">>) /= nomatch,
    case {AsksJson, AsksXml, request_format(Headers)} of
        {true, false, _} -> json;
        {true, true, Sent} -> Sent;
        {false, false, json} -> json;
        _ -> xml
    end.

%% A header's value, lowercased ("" if absent); ejabberd_http gives the
%% standard names as atoms and others as binaries.
header(Name, Headers) ->
    Values = [V || {K, V} <- Headers, string:lowercase(to_binary(K)) == Name],
    string:lowercase(iolist_to_binary(lists:join(<<",">>, Values))).

to_binary(A) when is_atom(A) -> atom_to_binary(A);
to_binary(B) -> B.
