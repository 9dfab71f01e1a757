%%% clicktochat_api: what mod_http_clicktochat (and ejabberdctl) ask of
%%% click to chat, one call per request. Knows nothing of HTTP: answers are
%%% terms, and mod_http_clicktochat turns them into statuses and bodies.
-module(clicktochat_api).

-export([register/3, connected_agents/1, status/1, conversations/2,
         read_conversations/1, is_loopback/1]).
%% By erpc from another node of the cluster.
-export([local_records/2]).

-include("xmpp.hrl").
-include("clicktochat.hrl").

-define(SYNC_TIMEOUT, 10000).

-type body() :: {xml | json, binary()}.

%% A registration from ClientIP (the address ejabberd_http gives, that is
%% after X-Forwarded-For from the global trusted_proxies). Every attempt
%% counts against the address's limit, before the body is even read.
-spec register(binary(), inet:ip_address(), body()) ->
          {ok, binary(), binary()} |
          {waiting, binary(), pos_integer(), non_neg_integer() | undefined} |
          {rate_limited, pos_integer()} | {error, atom()}.
register(RequestHost, ClientIP, {Format, Body}) ->
    with_instance(
      RequestHost,
      fun(Instance) ->
              case admit(Instance, ClientIP) of
                  ok ->
                      case parse(Format, Body) of
                          {ok, User, Password} ->
                              clicktochat_visitors:register(Instance, User, Password);
                          {error, _} = Err -> Err
                      end;
                  {rate_limited, _} = Limited -> Limited
              end
      end).

%% Bare JIDs of the agents with at least one session, sorted.
-spec connected_agents(binary()) -> {ok, [binary()]} | {error, not_configured}.
connected_agents(RequestHost) ->
    with_instance(
      RequestHost,
      fun(#instance{helpdesk_host = HelpdeskHost}) ->
              {ok, lists:usort([jid:encode({U, S, <<>>})
                                || {U, S, _R} <- ejabberd_sm:get_vh_session_list(HelpdeskHost)])}
      end).

%% What a public page may show before the click: agents taking visitors,
%% their free slots, the waiting line's length and a newcomer's estimated
%% wait (undefined: unknown). No names; O(1) on the rotation's owner.
-spec status(binary()) ->
          {ok, {non_neg_integer(), non_neg_integer(), non_neg_integer(),
                non_neg_integer() | undefined}} |
          {error, not_configured | unavailable}.
status(RequestHost) ->
    with_instance(RequestHost,
                  fun(Instance) ->
                          case clicktochat_rotation:status(Instance) of
                              {_Agents, _FreeSlots, _Waiting, _Estimate} = Status -> {ok, Status};
                              unavailable -> {error, unavailable}
                          end
                  end).

%% The agent's archive as XML, for a client at ClientIP (conversations_access;
%% by default loopback only).
-spec conversations(binary(), inet:ip_address()) ->
          {ok, binary()} | {error, not_an_agent | forbidden | unknown_agent | binary()}.
conversations(AgentJid, ClientIP) ->
    case agent_instance(AgentJid) of
        {ok, Instance, Agent} ->
            case may_read_conversations(Instance, ClientIP) of
                true -> read(Instance, Agent);
                false -> {error, forbidden}
            end;
        {error, _} = Err -> Err
    end.

%% The same for an operator (ejabberdctl): no access rule.
-spec read_conversations(binary()) -> {ok, binary()} | {error, atom() | binary()}.
read_conversations(AgentJid) ->
    case agent_instance(AgentJid) of
        {ok, Instance, Agent} -> read(Instance, Agent);
        {error, _} = Err -> Err
    end.

with_instance(RequestHost, Fun) ->
    case clicktochat_instance:for_request(RequestHost) of
        undefined -> {error, not_configured};
        Instance -> Fun(Instance)
    end.

admit(#instance{registrations_per_minute = 0}, _ClientIP) ->
    ok;
admit(#instance{registration_limiter = Limiter, registrations_per_minute = PerMinute},
      ClientIP) ->
    case clicktochat_nif:ratelimit_allow(Limiter, list_to_binary(inet:ntoa(ClientIP))) of
        true -> ok;
        false -> {rate_limited, max(1, 60 div PerMinute)}
    end.

parse(xml, Body) -> clicktochat_nif:parse_registration(Body);
parse(json, Body) -> clicktochat_nif:parse_registration_json(Body).

%% The instance whose helpdesk host the agent's JID belongs to.
agent_instance(AgentJid) ->
    try jid:decode(AgentJid) of
        #jid{luser = <<>>} -> {error, not_an_agent};
        #jid{luser = LUser, lserver = LServer} ->
            case clicktochat_instance:of_helpdesk_host(LServer) of
                undefined -> {error, not_an_agent};
                Instance -> {ok, Instance, jid:encode({LUser, LServer, <<>>})}
            end
    catch _:{bad_jid, _} -> {error, not_an_agent}
    end.

may_read_conversations(#instance{conversations_access = undefined}, IP) ->
    is_loopback(IP);
may_read_conversations(#instance{client_host = Host, conversations_access = Rule}, IP) ->
    acl:match_rule(Host, Rule, IP) == allow.

%% The default rule of conversations_access.
-spec is_loopback(inet:ip_address()) -> boolean().
is_loopback({127, _, _, _}) -> true;
is_loopback({0, 0, 0, 0, 0, 0, 0, 1}) -> true;
is_loopback({0, 0, 0, 0, 0, 16#ffff, A, _}) -> A bsr 8 == 127;
is_loopback(_) -> false.

%% What every node of the cluster has captured so far for the agent (each
%% node archives the messages its own sessions send), merged. A node that
%% does not answer within the timeout is left out of the read: its records
%% are not lost, they are read again once it is back. An agent with
%% neither an account nor an archive is unknown.
read(#instance{client_host = C, archive = Archive}, Agent) ->
    Others = erpc:multicall(nodes(), ?MODULE, local_records, [C, Agent], ?SYNC_TIMEOUT),
    case local_records(Archive, Agent) of
        {ok, Mine} ->
            Theirs = [Records || {ok, {ok, Records}} <- Others],
            case clicktochat_nif:render_archive(Agent, [Mine | Theirs]) of
                {ok, Xml, 0} ->
                    {User, Server, _} = jid:tolower(jid:decode(Agent)),
                    case ejabberd_auth:user_exists(User, Server) of
                        true -> {ok, Xml};
                        false -> {error, unknown_agent}
                    end;
                {ok, Xml, _Records} -> {ok, Xml};
                {error, _} = Err -> Err
            end;
        {error, _} = Err -> Err
    end.

%% This node's records of the agent, once everything captured so far here
%% is committed (by erpc from the node that reads, or for itself).
-spec local_records(binary() | reference(), binary()) -> {ok, binary()} | {error, term()}.
local_records(ClientHost, Agent) when is_binary(ClientHost) ->
    case clicktochat_instance:of_client_host(ClientHost) of
        #instance{archive = Archive} -> local_records(Archive, Agent);
        undefined -> {error, not_configured}
    end;
local_records(Archive, Agent) ->
    case clicktochat_nif:archive_sync(Archive, ?SYNC_TIMEOUT) of
        ok ->
            case clicktochat_nif:archive_read(Archive, Agent) of
                {ok, Records, _Count} -> {ok, Records};
                {error, _} = Err -> Err
            end;
        {error, _} = Err -> Err
    end.
