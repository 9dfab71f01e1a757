%%% mod_clicktochat: the ejabberd side of "click to chat".
%%%
%%% One instance is active per client host: the instance started on the vhost
%%% named by `client_host'. It owns the rotation of `helpdesk_host''s agents (a
%%% NIF resource, see clicktochat_nif), keeps it true from presence hooks, and
%%% removes a visitor's throw-away account when its last session ends or when it
%%% never logs in within `visitor_ttl'. Instances started on any other vhost
%%% stay inert, so the module can be listed in the global `modules' section.
%%%
%%% The visitor -> agent links live in a Mnesia table, not in the NIF, so that a
%%% module restart (or a config reload, which restarts it) and an ejabberd restart
%%% can rebuild every agent's load: the table is also the marker telling a
%%% throw-away visitor account from any other account of the client host.
-module(mod_clicktochat).
-behaviour(gen_mod).
-behaviour(gen_server).

-export([start/2, stop/1, depends/2, mod_opt_type/1, mod_options/1, mod_doc/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2,
         code_change/3]).
%% Hooks.
-export([agent_presence_set/4, agent_presence_unset/4, visitor_session_closed/3,
         message_sent/1, visitor_sends/1, visitor_receives/1, visitor_stream_ended/2]).
%% Used by mod_http_clicktochat.
-export([instance_for/1, register_visitor/3, connected_agents/1, conversations/2,
         agent_instance/1, may_read_conversations/2, admit_registration/3]).
%% ejabberdctl commands.
-export([get_commands_spec/0, clicktochat_conversations/1, clicktochat_status/1]).

-include("logger.hrl").
-include("xmpp.hrl").
-include("ejabberd_commands.hrl").

-record(clicktochat_visitor,
        {us :: {binary(), binary()},       % {VisitorUser, ClientHost}
         agent :: binary(),                % the agent's bare JID
         registered_at :: integer()}).     % erlang:system_time(millisecond)

%% What hooks and the HTTP handler need, kept in persistent_term so that the
%% hot path reads it without asking any process.
-record(instance,
        {client_host :: binary(),
         helpdesk_host :: binary(),
         rotation :: reference(),
         archive :: reference(),
         conversations_access :: atom() | list() | undefined,
         registration_limiter :: reference(),
         registrations_per_minute :: non_neg_integer(),
         trusted_proxies :: [{inet:ip_address(), non_neg_integer()}],
         max_visitors :: pos_integer()}).

-define(HOOK_SEQ, 50).
%% Before anything else sees a visitor's stanza (lower runs first).
-define(GUARD_SEQ, 10).
-define(SYNC_TIMEOUT, 10000).

%%%===================================================================
%%% gen_mod
%%%===================================================================
start(Host, ModuleOpts) ->
    case with_config_file(ModuleOpts) of
        {ok, Opts} -> start_on(Host, Opts);
        {error, Why} ->
            ?CRITICAL_MSG("mod_clicktochat: ~ts", [Why]),
            {error, {config_file, Why}}
    end.

start_on(Host, Opts) ->
    case gen_mod:get_opt(client_host, Opts) of
        Host -> start_instance(Host, Opts);
        undefined ->
            ?CRITICAL_MSG("mod_clicktochat: option client_host is required", []),
            {error, {missing_option, client_host}};
        _OtherHost ->
            %% Listed globally: only the instance of the client host works.
            ok
    end.

start_instance(ClientHost, Opts) ->
    HelpdeskHost = gen_mod:get_opt(helpdesk_host, Opts),
    case check_hosts(ClientHost, HelpdeskHost) of
        ok ->
            ejabberd_commands:register_commands(?MODULE, get_commands_spec()),
            gen_mod:start_child(?MODULE, ClientHost, Opts);
        {error, Why} = Err ->
            ?CRITICAL_MSG("mod_clicktochat: ~ts", [Why]),
            Err
    end.

check_hosts(_ClientHost, undefined) ->
    {error, "option helpdesk_host is required"};
check_hosts(Host, Host) ->
    {error, "client_host and helpdesk_host must be different vhosts"};
check_hosts(_ClientHost, HelpdeskHost) ->
    case ejabberd_router:is_my_host(HelpdeskHost) of
        true -> ok;
        false ->
            {error, io_lib:format("helpdesk_host ~ts is not a vhost of this server",
                                  [HelpdeskHost])}
    end.

stop(Host) ->
    case persistent_term:get({?MODULE, client, Host}, undefined) of
        undefined -> ok;
        _ ->
            case persistent_term:get({?MODULE, instances}, []) of
                [Host] -> ejabberd_commands:unregister_commands(get_commands_spec());
                _ -> ok
            end,
            gen_mod:stop_child(?MODULE, Host)
    end.

depends(_Host, _Opts) -> [].

mod_opt_type(client_host) -> econf:domain();
mod_opt_type(helpdesk_host) -> econf:domain();
mod_opt_type(max_sessions) -> econf:int(1, 100000);
mod_opt_type(visitor_ttl) -> econf:timeout(second);
mod_opt_type(store) -> econf:enum([embedded, riak]);
mod_opt_type(riak_cluster) -> econf:non_empty(econf:list(econf:binary("^[^:]+:[0-9]+$")));
mod_opt_type(riak_bucket) -> econf:binary("^.+$");
mod_opt_type(conversations_access) -> econf:acl();
mod_opt_type(config_file) -> econf:file();
mod_opt_type(max_registrations_per_minute) -> econf:non_neg_int();
mod_opt_type(trusted_proxies) -> econf:list(econf:ip_mask());
mod_opt_type(max_visitors) -> econf:pos_int().

mod_options(_Host) ->
    [{client_host, undefined},
     {helpdesk_host, undefined},
     %% undefined: from config_file, else the default (see resolve/2).
     {max_sessions, undefined},
     {visitor_ttl, timer:seconds(300)},
     {store, embedded},
     {riak_cluster, undefined},
     {riak_bucket, <<"clicktochat">>},
     {conversations_access, undefined},
     {config_file, undefined},
     {max_registrations_per_minute, 60},
     {trusted_proxies, []},
     {max_visitors, 10000}].

mod_doc() ->
    #{desc =>
          [<<"Click to chat: a website visitor registers a throw-away "
             "account on client_host through mod_http_clicktochat and is "
             "handed a helpdesk agent of helpdesk_host, chosen round robin "
             "among the agents online with a free slot.">>,
           <<"Only the instance started on client_host is active, so the "
             "module may be listed in the global modules section.">>],
      opts =>
          [{client_host,
            #{value => "Domain",
              desc => <<"Vhost of the visitors' throw-away accounts (required).">>}},
           {helpdesk_host,
            #{value => "Domain",
              desc => <<"Vhost of the helpdesk agents (required).">>}},
           {max_sessions,
            #{value => "pos_integer()",
              desc => <<"Most visitors one agent serves at once. "
                        "The default value is 5.">>}},
           {visitor_ttl,
            #{value => "timeout()",
              desc => <<"A registered visitor that has not logged in within this "
                        "time is removed and its slot freed. "
                        "The default value is 300 seconds.">>}},
           {store,
            #{value => "embedded | riak",
              desc => <<"Where conversations are archived: a file under the spool "
                        "directory, or the Riak KV cluster of riak_cluster. "
                        "The default value is embedded.">>}},
           {riak_cluster,
            #{value => "[\"Host:Port\", ...]",
              desc => <<"Riak nodes (Protocol Buffers port), tried in turn. "
                        "The default value is [\"127.0.0.1:8087\"].">>}},
           {riak_bucket,
            #{value => "Bucket",
              desc => <<"Riak bucket of the archive. "
                        "The default value is clicktochat.">>}},
           {conversations_access,
            #{value => "AccessName",
              desc => <<"Access rule (matched against the client's IP address) "
                        "for /clicktochat/conversations/. By default only "
                        "loopback addresses may read the archive.">>}},
           {config_file,
            #{value => "Path",
              desc => <<"The original project's clicktochat.conf (Erlang terms "
                        "host_client, host_helpdesk, max_sessions, riak_cluster), "
                        "read at start; options set here take precedence.">>}},
           {max_registrations_per_minute,
            #{value => "non_neg_integer()",
              desc => <<"Registrations one client address may attempt per minute "
                        "(429 beyond; 0: no limit). The default value is 60.">>}},
           {trusted_proxies,
            #{value => "[IP | IP/Bits]",
              desc => <<"Reverse proxies whose X-Forwarded-For header names the "
                        "client address; from anyone else the header is ignored. "
                        "The default value is [].">>}},
           {max_visitors,
            #{value => "pos_integer()",
              desc => <<"Most visitor accounts alive at once (503 beyond). "
                        "The default value is 10000.">>}}]}.

%%%===================================================================
%%% API for mod_http_clicktochat
%%%===================================================================

%% The active instance serving an HTTP request: the one whose client or
%% helpdesk host is the request's Host, else the only (or first) one.
-spec instance_for(binary()) -> {ok, #instance{}} | error.
instance_for(RequestHost) ->
    case persistent_term:get({?MODULE, instances}, []) of
        [] -> error;
        ClientHosts ->
            Named = [H || H <- ClientHosts, H == RequestHost]
                ++ [H || H <- ClientHosts,
                         (instance(H))#instance.helpdesk_host == RequestHost],
            {ok, instance(hd(Named ++ ClientHosts))}
    end.

%% Picks an agent and creates the account; on any failure the slot is given
%% back, so no account and no slot is left behind.
-spec register_visitor(#instance{}, binary(), binary()) ->
          {ok, binary(), binary()} | {error, atom()}.
register_visitor(#instance{client_host = ClientHost, rotation = Rotation,
                           archive = Archive} = Instance,
                 User, Password) ->
    Live = mnesia:table_info(clicktochat_visitor, size),
    case jid:nodeprep(User) of
        LUser when LUser == error; LUser == <<>> -> {error, invalid_username};
        _ when Live >= Instance#instance.max_visitors -> {error, too_many_visitors};
        LUser ->
            case clicktochat_nif:pick(Rotation) of
                none -> {error, no_agent_available};
                {ok, Agent} ->
                    case create_account(LUser, ClientHost, Password, Agent) of
                        {ok, RegisteredAt} ->
                            Visitor = jid:encode({LUser, ClientHost, <<>>}),
                            clicktochat_nif:archive_link(Archive, Visitor, Agent,
                                                         RegisteredAt * 1000),
                            {ok, Visitor, Agent};
                        {error, _} = Err ->
                            clicktochat_nif:release(Rotation, Agent),
                            Err
                    end
            end
    end.

create_account(LUser, ClientHost, Password, Agent) ->
    try ejabberd_auth:try_register(LUser, ClientHost, Password) of
        ok ->
            Now = erlang:system_time(millisecond),
            mnesia:dirty_write(#clicktochat_visitor{us = {LUser, ClientHost}, agent = Agent,
                                                    registered_at = Now}),
            gen_server:cast(gen_mod:get_module_proc(ClientHost, ?MODULE),
                            {arm_ttl, LUser, Now}),
            {ok, Now};
        {error, invalid_jid} -> {error, invalid_username};
        {error, invalid_password} -> {error, invalid_password};
        {error, Reason} when is_atom(Reason) -> {error, Reason}
    catch Class:Reason:Stack ->
            ?ERROR_MSG("mod_clicktochat: registering ~ts@~ts failed: ~p",
                       [LUser, ClientHost, {Class, Reason, Stack}]),
            %% The account may exist without its link: do not leave it behind.
            catch ejabberd_auth:remove_user(LUser, ClientHost),
            {error, internal_error}
    end.

%% Bare JIDs of the agents with at least one session, sorted.
-spec connected_agents(#instance{}) -> [binary()].
connected_agents(#instance{helpdesk_host = HelpdeskHost}) ->
    lists:usort([jid:encode({U, S, <<>>})
                 || {U, S, _R} <- ejabberd_sm:get_vh_session_list(HelpdeskHost)]).

%% The agent's archived conversations as an XML document, once everything
%% captured so far is committed. Blocking I/O: runs on dirty I/O schedulers.
%% Counts a registration attempt against the client's address: the peer,
%% or, when the peer is a trusted proxy, the address X-Forwarded-For gives
%% (the nearest one that is not itself a trusted proxy).
-spec admit_registration(#instance{}, inet:ip_address(), [binary()]) ->
          ok | {rate_limited, pos_integer()}.
admit_registration(#instance{registrations_per_minute = 0}, _Peer, _ForwardedFor) ->
    ok;
admit_registration(#instance{registration_limiter = Limiter, registrations_per_minute = PerMinute,
                             trusted_proxies = Trusted}, Peer, ForwardedFor) ->
    Client = client_address(Peer, ForwardedFor, Trusted),
    case clicktochat_nif:ratelimit_allow(Limiter, list_to_binary(inet:ntoa(Client))) of
        true -> ok;
        false -> {rate_limited, max(1, 60 div PerMinute)}
    end.

client_address(Peer, Forwarded, Trusted) ->
    case is_trusted(Peer, Trusted) of
        false -> Peer;
        true ->
            %% Right to left: each trusted hop vouches for the one before it.
            Parsed = [A || {ok, A} <- [inet:parse_strict_address(binary_to_list(F))
                                       || F <- lists:reverse(Forwarded)]],
            case lists:dropwhile(fun(A) -> is_trusted(A, Trusted) end, Parsed) of
                [Client | _] -> Client;
                [] -> Peer
            end
    end.

is_trusted(IP, Trusted) ->
    lists:any(fun({Net, Bits}) -> misc:match_ip_mask(IP, Net, Bits) end, Trusted).

%% An agent with neither an account nor an archive is unknown.
-spec conversations(#instance{}, binary()) -> {ok, binary()} | {error, binary() | unknown_agent}.
conversations(#instance{archive = Archive}, AgentJid) ->
    case clicktochat_nif:archive_sync(Archive, ?SYNC_TIMEOUT) of
        ok ->
            case clicktochat_nif:archive_read_xml(Archive, AgentJid) of
                {ok, Xml, 0} ->
                    {User, Server, _} = jid:tolower(jid:decode(AgentJid)),
                    case ejabberd_auth:user_exists(User, Server) of
                        true -> {ok, Xml};
                        false -> {error, unknown_agent}
                    end;
                {ok, Xml, _Records} -> {ok, Xml};
                {error, _} = Err -> Err
            end;
        {error, _} = Err -> Err
    end.

%% conversations_access, matched against the client's address; by default
%% loopback only.
-spec may_read_conversations(#instance{}, inet:ip_address()) -> boolean().
may_read_conversations(#instance{conversations_access = undefined}, IP) ->
    is_loopback(IP);
may_read_conversations(#instance{client_host = Host, conversations_access = Rule}, IP) ->
    acl:match_rule(Host, Rule, IP) == allow.

is_loopback({127, _, _, _}) -> true;
is_loopback({0, 0, 0, 0, 0, 0, 0, 1}) -> true;
is_loopback({0, 0, 0, 0, 0, 16#ffff, A, _}) -> A bsr 8 == 127;
is_loopback(_) -> false.

%%%===================================================================
%%% ejabberdctl
%%%===================================================================
get_commands_spec() ->
    [#ejabberd_commands{
        name = clicktochat_conversations, tags = [clicktochat],
        desc = "Print an agent's archived conversations (XML)",
        module = ?MODULE, function = clicktochat_conversations,
        args = [{agent, binary}],
        args_desc = ["Bare JID of the helpdesk agent"],
        args_example = [<<"agent1@helpdesk.example.com">>],
        result = {res, restuple},
        result_desc = "The archive, as GET /clicktochat/conversations/<agent> returns it"},
     #ejabberd_commands{
        name = clicktochat_status, tags = [clicktochat],
        desc = "Print the rotation and the archive writer's state of a client host",
        module = ?MODULE, function = clicktochat_status,
        args = [{host, binary}],
        args_desc = ["The client_host of a mod_clicktochat instance"],
        args_example = [<<"clients.example.com">>],
        result = {res, restuple},
        result_desc = "queue (agents in rotation order), loads, archive counters"}].

clicktochat_status(ClientHost) ->
    case persistent_term:get({?MODULE, client, jid:nameprep(ClientHost)}, undefined) of
        undefined -> {error, <<"no mod_clicktochat instance on that host">>};
        #instance{rotation = Rotation, archive = Archive} ->
            Archived = clicktochat_nif:archive_status(Archive),
            {ok, iolist_to_binary(
                   [io_lib:format("queue: ~ts~n", [lists:join(" ", clicktochat_nif:queue(Rotation))]),
                    io_lib:format("loads: ~ts~n",
                                  [lists:join(" ", [[A, "=", integer_to_list(N)]
                                                    || {A, N} <- clicktochat_nif:loads(Rotation)])]),
                    [io_lib:format("archive_~ts: ~ts~n", [K, status_value(maps:get(K, Archived))])
                     || K <- lists:sort(maps:keys(Archived))]])}
    end.

status_value(nil) -> "none";
status_value(N) when is_integer(N) -> integer_to_list(N);
status_value(Text) -> Text.

clicktochat_conversations(AgentJid) ->
    case agent_instance(AgentJid) of
        {ok, Instance, Agent} ->
            case conversations(Instance, Agent) of
                {ok, Xml} -> {ok, ascii_xml(Xml)};
                {error, Why} when is_atom(Why) -> {error, atom_to_binary(Why)};
                {error, Why} -> {error, Why}
            end;
        {error, Why} -> {error, atom_to_binary(Why)}
    end.

%% ejabberdctl prints results in the node's I/O encoding (latin1 here): with
%% every non-ASCII character as an XML character reference, the document
%% reaches any terminal intact.
ascii_xml(Xml) ->
    << <<(if C < 128 -> <<C>>;
             true -> iolist_to_binary(["&#", integer_to_list(C), ";"])
          end)/binary>> || <<C/utf8>> <= Xml >>.

%% The instance whose helpdesk host the agent's JID belongs to.
-spec agent_instance(binary()) -> {ok, #instance{}, binary()} | {error, atom()}.
agent_instance(AgentJid) ->
    try jid:decode(AgentJid) of
        #jid{luser = <<>>} -> {error, not_an_agent};
        #jid{luser = LUser, lserver = LServer} ->
            case persistent_term:get({?MODULE, helpdesk, LServer}, undefined) of
                undefined -> {error, not_an_agent};
                ClientHost ->
                    {ok, instance(ClientHost), jid:encode({LUser, LServer, <<>>})}
            end
    catch _:{bad_jid, _} -> {error, not_an_agent}
    end.

%%%===================================================================
%%% Hooks
%%%===================================================================

%% set_presence_hook: initial presence and every change of show.
agent_presence_set(User, Server, Resource, #presence{type = available, show = Show})
  when Show == undefined; Show == chat ->
    with_helpdesk(Server,
                  fun(Rotation, Agent) ->
                          clicktochat_nif:resource_available(Rotation, Agent, Resource)
                  end, User);
agent_presence_set(User, Server, Resource, _AwayOrOther) ->
    agent_presence_unset(User, Server, Resource, <<>>).

%% unset_presence_hook: unavailable presence or logout.
agent_presence_unset(User, Server, Resource, _Status) ->
    with_helpdesk(Server,
                  fun(Rotation, Agent) ->
                          clicktochat_nif:resource_unavailable(Rotation, Agent, Resource)
                  end, User).

with_helpdesk(Server, Fun, User) ->
    case persistent_term:get({?MODULE, helpdesk, jid:nameprep(Server)}, undefined) of
        undefined -> ok;
        ClientHost ->
            #instance{rotation = Rotation} = instance(ClientHost),
            Fun(Rotation, jid:encode({jid:nodeprep(User), jid:nameprep(Server), <<>>})),
            ok
    end.

%% user_send_packet on both hosts: a message with a body goes to the NIF,
%% which records it if it is between a visitor and its own agent. Each
%% message is sent by exactly one c2s process, so it is recorded once.
message_sent({#message{type = Type, body = [_ | _] = Body,
                       from = #jid{luser = FU, lserver = FS},
                       to = #jid{luser = TU, lserver = TS}}, _C2SState} = Acc)
  when Type == chat; Type == normal ->
    case archive_of(FS) of
        undefined -> ok;
        Archive ->
            case xmpp:get_text(Body) of
                <<>> -> ok;
                Text -> clicktochat_nif:archive_message(Archive, jid:encode({FU, FS, <<>>}),
                                                        jid:encode({TU, TS, <<>>}), Text)
            end
    end,
    Acc;
message_sent(Acc) ->
    Acc.

%% user_send_packet on the client host: a visitor talks to its agent, to
%% itself and to its server (pings, roster, disco), and to nobody else; it
%% cannot change its password, remove or register accounts (jabber:iq:register),
%% subscribe to anyone or join rooms. Throw-away accounts are no spam relay.
visitor_sends({Pkt, #{jid := #jid{luser = U, lserver = S}} = State} = Acc)
  when is_tuple(Pkt) ->
    case visitor_agent(U, S) of
        none -> Acc;
        {ok, Agent} ->
            case may_send(Pkt, U, S, Agent) of
                true -> Acc;
                false ->
                    refuse(Pkt, <<"A visitor may only talk to its agent">>),
                    {drop, State}
            end
    end;
visitor_sends(Acc) ->
    Acc.

%% user_receive_packet on the client host: only its agent and its server
%% reach a visitor.
visitor_receives({Pkt, #{jid := #jid{luser = U, lserver = S}} = State} = Acc)
  when is_tuple(Pkt) ->
    case visitor_agent(U, S) of
        none -> Acc;
        {ok, Agent} ->
            %% Our own bounces (refuse/2) come from whoever the visitor wrote to.
            Refusal = xmpp:get_meta(Pkt, clicktochat_refusal, false),
            case xmpp:get_from(Pkt) of
                _ when Refusal -> Acc;
                #jid{luser = <<>>, lserver = S} -> Acc;
                #jid{luser = U, lserver = S} -> Acc;
                #jid{} = From ->
                    case jid:encode(jid:remove_resource(From)) of
                        Agent -> Acc;
                        _ ->
                            refuse(Pkt, <<"This visitor only talks to its agent">>),
                            {drop, State}
                    end;
                _ -> Acc
            end
    end;
visitor_receives(Acc) ->
    Acc.

visitor_agent(U, S) ->
    case persistent_term:get({?MODULE, client, S}, undefined) of
        #instance{archive = Archive} ->
            clicktochat_nif:archive_agent_of(Archive, jid:encode({U, S, <<>>}));
        undefined -> none
    end.

may_send(Pkt, U, S, Agent) ->
    case xmpp:get_to(Pkt) of
        #jid{luser = U, lserver = S} -> true;
        #jid{luser = <<>>, lserver = S} -> not is_account_management(Pkt);
        #jid{} = To -> jid:encode(jid:remove_resource(To)) == Agent;
        undefined -> true
    end.

is_account_management(#iq{type = set} = IQ) ->
    lists:any(fun(El) -> xmpp:get_ns(El) == <<"jabber:iq:register">> end, xmpp:get_els(IQ));
is_account_management(_) -> false.

%% Bounces a not-allowed error to the sender, except for stanzas that must
%% never be answered (errors, IQ results, unavailable presence).
refuse(#iq{type = T}, _Text) when T == result; T == error -> ok;
refuse(#message{type = error}, _Text) -> ok;
refuse(#presence{type = T}, _Text) when T == error; T == unavailable -> ok;
refuse(Pkt, Text) ->
    Bounce = xmpp:make_error(Pkt, xmpp:err_not_allowed(Text, xmpp:get_lang(Pkt))),
    ejabberd_router:route(xmpp:put_meta(Bounce, clicktochat_refusal, true)).

archive_of(Server) ->
    case persistent_term:get({?MODULE, client, Server}, undefined) of
        #instance{archive = Archive} -> Archive;
        undefined ->
            case persistent_term:get({?MODULE, helpdesk, Server}, undefined) of
                undefined -> undefined;
                ClientHost -> (instance(ClientHost))#instance.archive
            end
    end.

%% sm_remove_connection_hook on the client host: the session is already gone
%% from ejabberd_sm, so no resource left means the visitor's last one ended.
%% Not while the host goes down (see visitor_stream_ended/2).
visitor_session_closed(_SID, #jid{luser = LUser, lserver = LServer}, _Info) ->
    case {persistent_term:get({?MODULE, going_down, LServer}, false),
          ejabberd_sm:get_user_resources(LUser, LServer)} of
        {false, []} -> end_visitor(LUser, LServer);
        _ -> ok
    end.

%% c2s_terminated on the client host, before ejabberd_c2s closes the session.
%% When ejabberd stops (or the host goes down), ejabberd_sm closes every
%% session with a system-shutdown (reset, in a cluster) stream error before
%% any module stops: those visitors are not leaving, so they keep their
%% account and get visitor_ttl to come back after the restart.
visitor_stream_ended(#{lserver := LServer} = State, Reason) ->
    GoingDown = case {State, Reason} of
                    {#{stop_reason := {stream, {out, #stream_error{reason = R}}}}, _}
                      when R == 'system-shutdown'; R == reset -> true;
                    {_, shutdown} -> true;
                    {_, {shutdown, _}} -> true;
                    _ -> false
                end,
    Key = {?MODULE, going_down, LServer},
    case GoingDown andalso not persistent_term:get(Key, false) of
        true -> persistent_term:put(Key, true);
        false -> ok
    end,
    State;
visitor_stream_ended(State, _Reason) ->
    State.

%% Removes the visitor's account and frees its agent's slot, once, whoever
%% (logout, TTL) gets here first; accounts we did not create are left alone.
end_visitor(LUser, ClientHost) ->
    Take = fun() ->
                   case mnesia:read(clicktochat_visitor, {LUser, ClientHost}, write) of
                       [Link] -> mnesia:delete({clicktochat_visitor, {LUser, ClientHost}}),
                                 {ok, Link};
                       [] -> none
                   end
           end,
    case mnesia:transaction(Take) of
        {atomic, {ok, #clicktochat_visitor{agent = Agent}}} ->
            ejabberd_auth:remove_user(LUser, ClientHost),
            case persistent_term:get({?MODULE, client, ClientHost}, undefined) of
                undefined -> ok;
                #instance{rotation = Rotation, archive = Archive} ->
                    clicktochat_nif:archive_unlink(Archive, jid:encode({LUser, ClientHost, <<>>})),
                    clicktochat_nif:release(Rotation, Agent)
            end,
            ?DEBUG("mod_clicktochat: visitor ~ts@~ts ended, ~ts has a free slot",
                   [LUser, ClientHost, Agent]);
        {atomic, none} -> ok;
        {aborted, Reason} ->
            ?ERROR_MSG("mod_clicktochat: ending visitor ~ts@~ts failed: ~p",
                       [LUser, ClientHost, Reason])
    end.

%%%===================================================================
%%% gen_server: owns the instance's lifetime and the visitor_ttl timers.
%%%===================================================================
init([ClientHost, Opts]) ->
    process_flag(trap_exit, true),
    HelpdeskHost = gen_mod:get_opt(helpdesk_host, Opts),
    %% ejabberd_mnesia:create/3 creates, upgrades or just reuses the table and
    %% answers differently in each case; waiting for it is what matters.
    ejabberd_mnesia:create(?MODULE, clicktochat_visitor,
                           [{disc_copies, [node()]},
                            {attributes, record_info(fields, clicktochat_visitor)}]),
    ok = mnesia:wait_for_tables([clicktochat_visitor], timer:seconds(30)),
    Archive = open_archive(ClientHost, Opts),
    PerMinute = gen_mod:get_opt(max_registrations_per_minute, Opts),
    Instance = #instance{client_host = ClientHost, helpdesk_host = HelpdeskHost,
                         rotation = clicktochat_nif:new(gen_mod:get_opt(max_sessions, Opts)),
                         archive = Archive,
                         conversations_access = gen_mod:get_opt(conversations_access, Opts),
                         registration_limiter = clicktochat_nif:ratelimit_new(PerMinute),
                         registrations_per_minute = PerMinute,
                         trusted_proxies = gen_mod:get_opt(trusted_proxies, Opts),
                         max_visitors = gen_mod:get_opt(max_visitors, Opts)},
    %% Hooks first, then the rebuild: an event racing the rebuild is applied
    %% twice at worst, and every rotation operation is idempotent.
    persistent_term:erase({?MODULE, going_down, ClientHost}),
    publish(Instance),
    add_hooks(Instance),
    Ttl = gen_mod:get_opt(visitor_ttl, Opts),
    rebuild_agents(Instance),
    rebuild_visitors(Instance, Ttl),
    ?INFO_MSG("mod_clicktochat: visitors on ~ts, agents on ~ts, queue ~p",
              [ClientHost, HelpdeskHost, clicktochat_nif:queue(Instance#instance.rotation)]),
    {ok, #{instance => Instance, ttl => Ttl}}.

terminate(_Reason, #{instance := #instance{archive = Archive} = Instance}) ->
    remove_hooks(Instance),
    unpublish(Instance),
    %% Commits what was captured and frees the file for the next start.
    clicktochat_nif:archive_close(Archive).

handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

handle_cast({arm_ttl, LUser, RegisteredAt}, #{ttl := Ttl} = State) ->
    erlang:send_after(Ttl, self(), {visitor_ttl, LUser, RegisteredAt}),
    {noreply, State};
handle_cast(Msg, State) ->
    ?WARNING_MSG("mod_clicktochat: unexpected cast ~p", [Msg]),
    {noreply, State}.

%% The timer names the registration it was armed for: a visitor that ended
%% and was registered again under the same name gets its own full TTL.
handle_info({visitor_ttl, LUser, RegisteredAt},
            #{instance := #instance{client_host = Host}} = State) ->
    case {mnesia:dirty_read(clicktochat_visitor, {LUser, Host}),
          ejabberd_sm:get_user_resources(LUser, Host)} of
        {[#clicktochat_visitor{registered_at = RegisteredAt}], []} ->
            end_visitor(LUser, Host);
        _ ->
            ok      % logged in (its logout ends it), ended, or registered anew
    end,
    {noreply, State};
handle_info(Info, State) ->
    ?WARNING_MSG("mod_clicktochat: unexpected info ~p", [Info]),
    {noreply, State}.

code_change(_OldVsn, State, _Extra) -> {ok, State}.

%%%===================================================================
%%% Internal
%%%===================================================================

-define(DEFAULTS, #{max_sessions => 5, riak_cluster => [<<"127.0.0.1:8087">>]}).

%% The seed's clicktochat.conf, when config_file names it, fills the options
%% the module configuration leaves unset; then the defaults do.
with_config_file(Opts) ->
    case maps:get(config_file, Opts, undefined) of
        undefined -> {ok, resolve(Opts, #{})};
        Path ->
            case file:consult(Path) of
                {ok, Terms} ->
                    try {ok, resolve(Opts, maps:from_list(lists:filtermap(fun legacy_option/1,
                                                                          Terms)))}
                    catch throw:{bad_value, Term} ->
                            {error, io_lib:format("~ts: bad value ~p", [Path, Term])}
                    end;
                {error, Reason} ->
                    {error, io_lib:format("cannot read ~ts: ~ts",
                                          [Path, file:format_error(Reason)])}
            end
    end.

resolve(Opts, FromFile) ->
    maps:map(fun(Key, undefined) ->
                     maps:get(Key, FromFile, maps:get(Key, ?DEFAULTS, undefined));
                (_Key, Value) -> Value
             end, Opts).

%% The seed's keys; others (riak_erlang_client...) mean nothing here.
legacy_option({host_client, Host}) -> {true, {client_host, legacy_host(Host)}};
legacy_option({host_helpdesk, Host}) -> {true, {helpdesk_host, legacy_host(Host)}};
legacy_option({max_sessions, N}) when is_integer(N), N >= 1, N =< 100000 ->
    {true, {max_sessions, N}};
legacy_option({riak_cluster, Nodes}) -> {true, {riak_cluster, legacy_nodes(Nodes)}};
legacy_option({Key, _} = Term) when Key == max_sessions -> throw({bad_value, Term});
legacy_option(_) -> false.

legacy_host(Host) when is_list(Host); is_binary(Host); is_atom(Host) ->
    case jid:nameprep(iolist_to_binary(io_lib:format("~ts", [Host]))) of
        error -> throw({bad_value, Host});
        Name -> Name
    end;
legacy_host(Host) -> throw({bad_value, Host}).

%% [{"10.0.0.1", 8087}, ...], ["10.0.0.1:8087", ...] or one such node.
legacy_nodes({_Host, _Port} = Node) -> [legacy_node(Node)];
legacy_nodes([C | _] = Node) when is_integer(C) -> [legacy_node(Node)];
legacy_nodes([_ | _] = Nodes) -> [legacy_node(N) || N <- Nodes];
legacy_nodes(Other) -> throw({bad_value, Other}).

legacy_node({Host, Port}) when is_integer(Port), Port > 0, Port < 65536 ->
    Name = case Host of
               {_, _, _, _} -> inet:ntoa(Host);
               _ when is_list(Host); is_atom(Host); is_binary(Host) -> io_lib:format("~ts", [Host]);
               _ -> throw({bad_value, Host})
           end,
    iolist_to_binary([Name, ":", integer_to_list(Port)]);
legacy_node(Node) when is_list(Node); is_binary(Node) ->
    Bin = iolist_to_binary(Node),
    case re:run(Bin, "^[^:]+:[0-9]+$") of
        {match, _} -> Bin;
        nomatch -> throw({bad_value, Node})
    end;
legacy_node(Node) -> throw({bad_value, Node}).

%% The embedded store (or Riak's outbox) lives in ejabberd's spool directory,
%% beside Mnesia's files. A store that cannot be opened stops the module.
open_archive(ClientHost, Opts) ->
    Path = filename:join(mnesia:system_info(directory),
                         <<"clicktochat_", ClientHost/binary, ".redb">>),
    Store = case gen_mod:get_opt(store, Opts) of
                embedded -> embedded;
                riak -> {riak, gen_mod:get_opt(riak_cluster, Opts),
                         gen_mod:get_opt(riak_bucket, Opts)}
            end,
    case clicktochat_nif:archive_open(unicode:characters_to_binary(Path), Store) of
        {ok, Archive} -> Archive;
        {error, Why} ->
            ?CRITICAL_MSG("mod_clicktochat: cannot open the archive ~ts: ~ts", [Path, Why]),
            erlang:error({archive_open_failed, Why})
    end.
instance(ClientHost) ->
    persistent_term:get({?MODULE, client, ClientHost}).

publish(#instance{client_host = C, helpdesk_host = H} = Instance) ->
    persistent_term:put({?MODULE, client, C}, Instance),
    persistent_term:put({?MODULE, helpdesk, H}, C),
    Others = persistent_term:get({?MODULE, instances}, []),
    persistent_term:put({?MODULE, instances}, lists:usort([C | Others])).

unpublish(#instance{client_host = C, helpdesk_host = H}) ->
    persistent_term:erase({?MODULE, client, C}),
    persistent_term:erase({?MODULE, helpdesk, H}),
    Others = persistent_term:get({?MODULE, instances}, []),
    persistent_term:put({?MODULE, instances}, lists:delete(C, Others)).

add_hooks(#instance{client_host = C, helpdesk_host = H}) ->
    ejabberd_hooks:add(c2s_terminated, C, ?MODULE, visitor_stream_ended, ?HOOK_SEQ),
    ejabberd_hooks:add(set_presence_hook, H, ?MODULE, agent_presence_set, ?HOOK_SEQ),
    ejabberd_hooks:add(unset_presence_hook, H, ?MODULE, agent_presence_unset, ?HOOK_SEQ),
    ejabberd_hooks:add(sm_remove_connection_hook, C, ?MODULE, visitor_session_closed,
                       ?HOOK_SEQ),
    ejabberd_hooks:add(user_send_packet, C, ?MODULE, visitor_sends, ?GUARD_SEQ),
    ejabberd_hooks:add(user_receive_packet, C, ?MODULE, visitor_receives, ?GUARD_SEQ),
    ejabberd_hooks:add(user_send_packet, C, ?MODULE, message_sent, ?HOOK_SEQ),
    ejabberd_hooks:add(user_send_packet, H, ?MODULE, message_sent, ?HOOK_SEQ).

remove_hooks(#instance{client_host = C, helpdesk_host = H}) ->
    ejabberd_hooks:delete(c2s_terminated, C, ?MODULE, visitor_stream_ended, ?HOOK_SEQ),
    ejabberd_hooks:delete(set_presence_hook, H, ?MODULE, agent_presence_set, ?HOOK_SEQ),
    ejabberd_hooks:delete(unset_presence_hook, H, ?MODULE, agent_presence_unset, ?HOOK_SEQ),
    ejabberd_hooks:delete(sm_remove_connection_hook, C, ?MODULE, visitor_session_closed,
                          ?HOOK_SEQ),
    ejabberd_hooks:delete(user_send_packet, C, ?MODULE, visitor_sends, ?GUARD_SEQ),
    ejabberd_hooks:delete(user_receive_packet, C, ?MODULE, visitor_receives, ?GUARD_SEQ),
    ejabberd_hooks:delete(user_send_packet, C, ?MODULE, message_sent, ?HOOK_SEQ),
    ejabberd_hooks:delete(user_send_packet, H, ?MODULE, message_sent, ?HOOK_SEQ).

%% Every live agent session whose last presence is available puts its agent
%% back in the rotation.
rebuild_agents(#instance{helpdesk_host = H}) ->
    lists:foreach(
      fun({U, S, R}) ->
              case ejabberd_sm:get_session_pid(U, S, R) of
                  Pid when is_pid(Pid) ->
                      try ejabberd_c2s:get_presence(Pid) of
                          Presence -> agent_presence_set(U, S, R, Presence)
                      catch _:_ -> ok   % the session ended meanwhile
                      end;
                  _ -> ok
              end
      end, ejabberd_sm:get_vh_session_list(H)).

%% Every visitor still linked gives its agent's slot back; one that is not
%% logged in (a restart closed its sessions, or it never logged in) gets a
%% full visitor_ttl from now to come back, so a restart does not end a
%% conversation that was going on.
rebuild_visitors(#instance{client_host = C, rotation = Rotation, archive = Archive}, Ttl) ->
    Links = mnesia:dirty_match_object(#clicktochat_visitor{us = {'_', C}, _ = '_'}),
    lists:foreach(
      fun(#clicktochat_visitor{us = {LUser, _}, agent = Agent, registered_at = At}) ->
              clicktochat_nif:restore(Rotation, Agent),
              clicktochat_nif:archive_link(Archive, jid:encode({LUser, C, <<>>}), Agent,
                                           At * 1000),
              case ejabberd_sm:get_user_resources(LUser, C) of
                  [] ->
                      erlang:send_after(Ttl, self(), {visitor_ttl, LUser, At});
                  _ -> ok
              end
      end, Links).
