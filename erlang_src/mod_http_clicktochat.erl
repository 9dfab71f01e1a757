%%% mod_http_clicktochat: the HTTP API of click to chat, mounted by an
%%% ejabberd_http listener (`request_handlers: /clicktochat: mod_http_clicktochat').
%%%
%%% Parsing the registration body and rendering every response is done by the
%%% NIF; this module only routes, talks to mod_clicktochat and maps errors to
%%% HTTP statuses. XML is the default; JSON is spoken to clients that send it
%%% (Content-Type: application/json) or ask for it (Accept: application/json).
-module(mod_http_clicktochat).

-export([process/2]).

-include("ejabberd_http.hrl").

-type format() :: xml | json.

-spec process([binary()], #request{}) ->
          {pos_integer(), list(), binary()} | {pos_integer(), binary(), list(), binary()}.
process(Path, #request{headers = Headers} = Request) ->
    route(Path, Request, response_format(Headers)).

route([<<"register">>], #request{method = 'POST', data = Body, host = Host, ip = {IP, _},
                                 headers = Headers}, Format) ->
    with_instance(Host, register, Format,
                  fun(Instance) ->
                          case mod_clicktochat:admit_registration(Instance, IP,
                                                                   forwarded_for(Headers)) of
                              ok -> register_visitor(Instance, Body, request_format(Headers),
                                                     Format);
                              {rate_limited, RetryAfter} ->
                                  with_header(error_reply(Format, 429, register, rate_limited),
                                              {<<"Retry-After">>,
                                               integer_to_binary(RetryAfter)})
                          end
                  end);
route([<<"register">>], _Request, Format) ->
    method_not_allowed(Format, register, <<"POST">>);
route([<<"list">>], #request{method = Method, host = Host, raw_path = RawPath}, Format)
  when Method == 'GET'; Method == 'HEAD' ->
    %% The raw query string: ejabberd_http's parsed one drops what it cannot
    %% decode (`?%zz') and empty parameters (`?&&').
    case binary:split(RawPath, <<"?">>) of
        [_Path | Query] when Query == []; Query == [<<>>] ->
            with_instance(Host, connected_users, Format,
                          fun(Instance) ->
                                  Agents = mod_clicktochat:connected_agents(Instance),
                                  {200, headers(Format),
                                   clicktochat_nif:render_list(Format, Agents)}
                          end);
        _ ->
            error_reply(Format, 400, connected_users, unexpected_parameters)
    end;
route([<<"list">>], _Request, Format) ->
    method_not_allowed(Format, connected_users, <<"GET, HEAD">>);
route([<<"conversations">>, AgentJid], #request{method = 'GET', ip = {IP, _}}, Format) ->
    conversations(AgentJid, IP, Format);
route([<<"conversations">>, _AgentJid], _Request, Format) ->
    method_not_allowed(Format, conversations, <<"GET">>);
route(_Path, _Request, Format) ->
    error_reply(Format, 404, error, not_found).

register_visitor(Instance, Body, RequestFormat, Format) ->
    Parsed = case RequestFormat of
                 xml -> clicktochat_nif:parse_registration(Body);
                 json -> clicktochat_nif:parse_registration_json(Body)
             end,
    case Parsed of
        {error, too_large} ->
            error_reply(Format, 413, register, too_large);
        {error, Reason} ->
            error_reply(Format, 400, register, Reason);
        {ok, User, Password} ->
            case mod_clicktochat:register_visitor(Instance, User, Password) of
                {ok, VisitorJid, AgentJid} ->
                    {201, headers(Format),
                     clicktochat_nif:render_register_ok(Format, VisitorJid, AgentJid)};
                {error, Reason} when Reason == no_agent_available;
                                     Reason == too_many_visitors ->
                    error_reply(Format, 503, register, Reason);
                {error, Reason} when Reason == internal_error; Reason == db_failure ->
                    error_reply(Format, 500, register, Reason);
                {error, Reason} ->
                    error_reply(Format, 400, register, Reason)
            end
    end.

%% The archive is XML (the original project's entry format inside) only;
%% its errors follow the client's format.
conversations(AgentJid, IP, Format) ->
    case mod_clicktochat:agent_instance(AgentJid) of
        {error, not_an_agent} ->
            error_reply(Format, 404, conversations, unknown_agent);
        {ok, Instance, Agent} ->
            case mod_clicktochat:may_read_conversations(Instance, IP) of
                false ->
                    error_reply(Format, 403, conversations, forbidden);
                true ->
                    case mod_clicktochat:conversations(Instance, Agent) of
                        {ok, Xml} -> {200, headers(xml), Xml};
                        {error, unknown_agent} ->
                            error_reply(Format, 404, conversations, unknown_agent);
                        {error, Why} ->
                            error_reply(Format, 503, conversations, Why)
                    end
            end
    end.

with_instance(Host, Root, Format, Fun) ->
    case mod_clicktochat:instance_for(Host) of
        {ok, Instance} -> Fun(Instance);
        error -> error_reply(Format, 503, Root, not_configured)
    end.

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

%% X-Forwarded-For's addresses, nearest proxy last.
forwarded_for(Headers) ->
    [string:trim(A) || A <- binary:split(header(<<"x-forwarded-for">>, Headers), <<",">>,
                                         [global, trim_all])].

to_binary(A) when is_atom(A) -> atom_to_binary(A);
to_binary(B) -> B.
