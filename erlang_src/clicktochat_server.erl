%%% clicktochat_server: the process of one active instance (one client host),
%%% started by mod_clicktochat under ejabberd's gen_mod supervisor. It owns
%%% the instance's lifetime: it opens the archive and creates the rotation,
%%% publishes the instance, adds the hooks, rebuilds the rotation's loads
%%% after a (re)start, and keeps the visitor_ttl timers. Stopping it removes
%%% the hooks and commits and closes the archive.
-module(clicktochat_server).
-behaviour(gen_server).

-export([arm_ttl/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2,
         code_change/3]).

-include("logger.hrl").
-include("clicktochat.hrl").

%% Before anything else sees a visitor's stanza (lower runs first).
-define(GUARD_SEQ, 10).
-define(HOOK_SEQ, 50).

%% Every hook of an instance: {Hook, Host, Module, Function, Sequence}.
hooks(#instance{client_host = C, helpdesk_host = H}) ->
    [{c2s_terminated, C, clicktochat_visitors, stream_ended, ?HOOK_SEQ},
     {sm_remove_connection_hook, C, clicktochat_visitors, session_closed, ?HOOK_SEQ},
     {user_send_packet, C, clicktochat_guard, visitor_sends, ?GUARD_SEQ},
     {user_receive_packet, C, clicktochat_guard, visitor_receives, ?GUARD_SEQ},
     {set_presence_hook, H, clicktochat_presence, presence_set, ?HOOK_SEQ},
     {unset_presence_hook, H, clicktochat_presence, presence_unset, ?HOOK_SEQ},
     {user_send_packet, H, clicktochat_capture, agent_sends, ?HOOK_SEQ}].

%% A registered visitor that has not logged in within visitor_ttl is ended.
-spec arm_ttl(binary(), binary(), integer()) -> ok.
arm_ttl(ClientHost, LUser, RegisteredAt) ->
    gen_server:cast(gen_mod:get_module_proc(ClientHost, ?MODULE),
                    {arm_ttl, LUser, RegisteredAt}).

init([ClientHost, Opts]) ->
    process_flag(trap_exit, true),
    clicktochat_assignments:create_table(),
    PerMinute = gen_mod:get_opt(max_registrations_per_minute, Opts),
    Instance = #instance{client_host = ClientHost,
                         helpdesk_host = gen_mod:get_opt(helpdesk_host, Opts),
                         rotation = clicktochat_nif:new(gen_mod:get_opt(max_sessions, Opts)),
                         archive = open_archive(ClientHost, Opts),
                         conversations_access = gen_mod:get_opt(conversations_access, Opts),
                         registration_limiter = clicktochat_nif:ratelimit_new(PerMinute),
                         registrations_per_minute = PerMinute,
                         max_visitors = gen_mod:get_opt(max_visitors, Opts),
                         visitor_ttl = gen_mod:get_opt(visitor_ttl, Opts)},
    %% Hooks first, then the rebuild: an event racing the rebuild is applied
    %% twice at worst, and every rotation operation is idempotent.
    clicktochat_instance:publish(Instance),
    [ejabberd_hooks:add(Hook, Host, M, F, Seq) || {Hook, Host, M, F, Seq} <- hooks(Instance)],
    clicktochat_presence:rebuild(Instance),
    rebuild_visitors(Instance),
    ?INFO_MSG("mod_clicktochat: visitors on ~ts, agents on ~ts, queue ~p",
              [ClientHost, Instance#instance.helpdesk_host,
               clicktochat_nif:queue(Instance#instance.rotation)]),
    {ok, Instance}.

terminate(_Reason, #instance{archive = Archive} = Instance) ->
    [ejabberd_hooks:delete(Hook, Host, M, F, Seq) || {Hook, Host, M, F, Seq} <- hooks(Instance)],
    clicktochat_instance:unpublish(Instance),
    %% Commits what was captured and frees the file for the next start.
    clicktochat_nif:archive_close(Archive).

handle_call(_Request, _From, Instance) ->
    {reply, {error, badarg}, Instance}.

handle_cast({arm_ttl, LUser, RegisteredAt}, #instance{visitor_ttl = Ttl} = Instance) ->
    erlang:send_after(Ttl, self(), {visitor_ttl, LUser, RegisteredAt}),
    {noreply, Instance};
handle_cast(Msg, Instance) ->
    ?WARNING_MSG("mod_clicktochat: unexpected cast ~p", [Msg]),
    {noreply, Instance}.

handle_info({visitor_ttl, LUser, RegisteredAt}, #instance{client_host = Host} = Instance) ->
    clicktochat_visitors:ttl_expired(LUser, Host, RegisteredAt),
    {noreply, Instance};
handle_info(Info, Instance) ->
    ?WARNING_MSG("mod_clicktochat: unexpected info ~p", [Info]),
    {noreply, Instance}.

code_change(_OldVsn, Instance, _Extra) -> {ok, Instance}.

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

%% Every visitor still assigned holds its agent's slot; one that is not
%% logged in (a restart closed its sessions, or it never logged in) gets a
%% full visitor_ttl from now to come back, so a restart does not end a
%% conversation that was going on.
rebuild_visitors(#instance{client_host = C, rotation = Rotation, visitor_ttl = Ttl}) ->
    lists:foreach(
      fun({LUser, Agent, RegisteredAt}) ->
              clicktochat_nif:restore(Rotation, Agent),
              case ejabberd_sm:get_user_resources(LUser, C) of
                  [] -> erlang:send_after(Ttl, self(), {visitor_ttl, LUser, RegisteredAt});
                  _ -> ok
              end
      end, clicktochat_assignments:all(C)).
