%%% mod_http_clicktochat: the HTTP API of click to chat, mounted by an
%%% ejabberd_http listener (`request_handlers: /clicktochat: mod_http_clicktochat').
%%%
%%% Parsing the registration body and rendering every response is done by the
%%% NIF; this module only routes, talks to mod_clicktochat and maps errors to
%%% HTTP statuses.
-module(mod_http_clicktochat).

-export([process/2]).

-include("ejabberd_http.hrl").

-define(XML_HEADERS, [{<<"Content-Type">>, <<"text/xml; charset=utf-8">>}]).

-spec process([binary()], #request{}) ->
          {pos_integer(), list(), binary()} | {pos_integer(), binary(), list(), binary()}.
process([<<"register">>], #request{method = 'POST', data = Body, host = Host, ip = {IP, _},
                                   headers = Headers}) ->
    with_instance(Host, register,
                  fun(Instance) ->
                          case mod_clicktochat:admit_registration(Instance, IP, Headers) of
                              ok -> register_visitor(Instance, Body);
                              {rate_limited, RetryAfter} ->
                                  with_header(error_reply(429, register, rate_limited),
                                              {<<"Retry-After">>,
                                               integer_to_binary(RetryAfter)})
                          end
                  end);
process([<<"register">>], _Request) ->
    method_not_allowed(register, <<"POST">>);
process([<<"list">>], #request{method = Method, host = Host, raw_path = RawPath})
  when Method == 'GET'; Method == 'HEAD' ->
    %% The raw query string: ejabberd_http's parsed one drops what it cannot
    %% decode (`?%zz') and empty parameters (`?&&').
    case binary:split(RawPath, <<"?">>) of
        [_Path | Query] when Query == []; Query == [<<>>] ->
            with_instance(Host, connected_users,
                          fun(Instance) ->
                                  Agents = mod_clicktochat:connected_agents(Instance),
                                  {200, ?XML_HEADERS, clicktochat_nif:render_list(Agents)}
                          end);
        _ ->
            error_reply(400, connected_users, unexpected_parameters)
    end;
process([<<"list">>], _Request) ->
    method_not_allowed(connected_users, <<"GET, HEAD">>);
process([<<"conversations">>, AgentJid], #request{method = 'GET', ip = {IP, _}}) ->
    conversations(AgentJid, IP);
process([<<"conversations">>, _AgentJid], _Request) ->
    method_not_allowed(conversations, <<"GET">>);
process(_Path, _Request) ->
    error_reply(404, error, not_found).

register_visitor(Instance, Body) ->
    case clicktochat_nif:parse_registration(Body) of
        {error, too_large} ->
            error_reply(413, register, too_large);
        {error, Reason} ->
            error_reply(400, register, Reason);
        {ok, User, Password} ->
            case mod_clicktochat:register_visitor(Instance, User, Password) of
                {ok, VisitorJid, AgentJid} ->
                    {201, ?XML_HEADERS, clicktochat_nif:render_register_ok(VisitorJid, AgentJid)};
                {error, Reason} when Reason == no_agent_available;
                                     Reason == too_many_visitors ->
                    error_reply(503, register, Reason);
                {error, Reason} when Reason == internal_error; Reason == db_failure ->
                    error_reply(500, register, Reason);
                {error, Reason} ->
                    error_reply(400, register, Reason)
            end
    end.

conversations(AgentJid, IP) ->
    case mod_clicktochat:agent_instance(AgentJid) of
        {error, not_an_agent} ->
            error_reply(404, conversations, unknown_agent);
        {ok, Instance, Agent} ->
            case mod_clicktochat:may_read_conversations(Instance, IP) of
                false ->
                    error_reply(403, conversations, forbidden);
                true ->
                    case mod_clicktochat:conversations(Instance, Agent) of
                        {ok, Xml} -> {200, ?XML_HEADERS, Xml};
                        {error, unknown_agent} ->
                            error_reply(404, conversations, unknown_agent);
                        {error, Why} ->
                            error_reply(503, conversations, Why)
                    end
            end
    end.

with_instance(Host, Root, Fun) ->
    case mod_clicktochat:instance_for(Host) of
        {ok, Instance} -> Fun(Instance);
        error -> error_reply(503, Root, not_configured)
    end.

method_not_allowed(Root, Allowed) ->
    with_header(error_reply(405, Root, method_not_allowed), {<<"Allow">>, Allowed}).

%% With the reason phrase: ejabberd_http 23.01 knows none for 429, and
%% crashes the connection on a status it cannot name.
error_reply(Status, Root, Reason) ->
    {Status, phrase(Status), ?XML_HEADERS, clicktochat_nif:render_error(Root, Reason)}.

with_header({Status, Phrase, Headers, Body}, Header) ->
    {Status, Phrase, [Header | Headers], Body}.

phrase(429) -> <<"Too Many Requests">>;
phrase(_) -> <<>>.    % ejabberd_http's own
