%%% clicktochat_server: the process of one active instance (one client host
%%% on one node), started by mod_clicktochat under ejabberd's gen_mod
%%% supervisor. It owns the instance's lifetime: it opens the archive,
%%% starts the keeper of the host's assignments on disk
%%% (clicktochat_assignments_keeper), publishes the instance and adds the
%%% hooks; stopping it removes the hooks, stops the keeper, and commits and
%%% closes the archive.
%%%
%%% In a cluster, one of these servers per client host owns the rotation
%%% (clicktochat_rotation): the first to take the global name. The owner
%%% rebuilds the rotation when it takes it, drops the agents of a node that
%%% goes down, keeps every visitor_ttl and answer_timeout timer, and is the
%%% one process that hands out slots from the waiting line and tells the
%%% line's visitors where they stand (clicktochat_line); the others watch it
%%% and take over when it goes.
-module(clicktochat_server).
-behaviour(gen_server).

-export([arm_ttl/3, arm_answer_timeout/3]).
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
     {sm_register_connection_hook, C, clicktochat_line, session_opened, ?HOOK_SEQ},
     {user_send_packet, C, clicktochat_guard, visitor_sends, ?GUARD_SEQ},
     {user_receive_packet, C, clicktochat_guard, visitor_receives, ?GUARD_SEQ},
     {set_presence_hook, H, clicktochat_presence, presence_set, ?HOOK_SEQ},
     {unset_presence_hook, H, clicktochat_presence, presence_unset, ?HOOK_SEQ},
     {user_send_packet, H, clicktochat_capture, agent_sends, ?HOOK_SEQ}].

%% A registered visitor that has not logged in within visitor_ttl is ended
%% by the rotation's owner, which keeps every visitor_ttl timer of the
%% cluster (a new owner arms them anew, see become_owner/1). With no owner
%% at this instant, the next owner's scan arms it.
-spec arm_ttl(binary(), binary(), integer()) -> ok.
arm_ttl(ClientHost, LUser, RegisteredAt) ->
    gen_server:cast({global, clicktochat_rotation:name(ClientHost)},
                    {arm_ttl, LUser, RegisteredAt}).

%% The visitor wrote first to its agent at the start of the chat Start.
-spec arm_answer_timeout(binary(), binary(), integer()) -> ok.
arm_answer_timeout(ClientHost, LUser, Start) ->
    gen_server:cast({global, clicktochat_rotation:name(ClientHost)},
                    {arm_answer_timeout, LUser, Start}).

init([ClientHost, Opts]) ->
    process_flag(trap_exit, true),
    clicktochat_assignments:create_table(),
    %% Before the rotation is rebuilt from the assignments: after a restart,
    %% the keeper puts them back.
    {ok, Keeper} = clicktochat_assignments_keeper:start_link(ClientHost),
    PerMinute = gen_mod:get_opt(max_registrations_per_minute, Opts),
    MaxSessions = gen_mod:get_opt(max_sessions, Opts),
    Routing = gen_mod:get_opt(routing, Opts),
    MaxWaiting = gen_mod:get_opt(max_waiting, Opts),
    Instance = #instance{client_host = ClientHost,
                         helpdesk_host = gen_mod:get_opt(helpdesk_host, Opts),
                         rotation = clicktochat_nif:new(MaxSessions, Routing, MaxWaiting),
                         max_sessions = MaxSessions,
                         routing = Routing,
                         max_waiting = MaxWaiting,
                         answer_timeout = gen_mod:get_opt(answer_timeout, Opts),
                         agent_nodes = ets:new(clicktochat_agent_nodes, [public, set]),
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
    State = try_to_own(#{instance => Instance, role => follower, told => #{},
                         keeper => Keeper}),
    ?INFO_MSG("mod_clicktochat: visitors on ~ts, agents on ~ts, rotation owned by ~p, queue ~p",
              [ClientHost, Instance#instance.helpdesk_host, owner_node(State),
               case clicktochat_rotation:view(ClientHost) of
                   {ok, _Owner, Queue, _Loads, _PerNode, _Line} -> Queue;
                   unavailable -> unavailable
               end]),
    {ok, State}.

terminate(_Reason, #{instance := #instance{archive = Archive} = Instance, keeper := Keeper}) ->
    [ejabberd_hooks:delete(Hook, Host, M, F, Seq) || {Hook, Host, M, F, Seq} <- hooks(Instance)],
    clicktochat_instance:unpublish(Instance),
    %% Commits the assignments' last changes (unless it is what failed).
    catch clicktochat_assignments_keeper:stop(Keeper),
    %% Commits what was captured and frees the file for the next start.
    clicktochat_nif:archive_close(Archive).

handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

handle_cast({arm_ttl, LUser, RegisteredAt}, #{instance := #instance{visitor_ttl = Ttl}} = State) ->
    erlang:send_after(Ttl, self(), {visitor_ttl, LUser, RegisteredAt}),
    {noreply, State};
handle_cast({arm_answer_timeout, LUser, Start},
            #{instance := #instance{answer_timeout = Timeout}} = State) when Timeout /= infinity ->
    erlang:send_after(Timeout, self(), {answer_timeout, LUser, Start}),
    {noreply, State};
handle_cast({line_changed, Moved}, #{instance := Instance, told := Told} = State) ->
    AllMoved = more_line_changes(Moved),
    {noreply, State#{told => clicktochat_line:apply_changes(Instance, AllMoved, Told)}};
handle_cast({visitor_logged_in, LUser}, #{instance := Instance, told := Told} = State) ->
    case clicktochat_line:visitor_logged_in(Instance, LUser) of
        {told, Position} -> {noreply, State#{told => Told#{LUser => Position}}};
        unchanged -> {noreply, State}
    end;
handle_cast(Msg, State) ->
    ?WARNING_MSG("mod_clicktochat: unexpected cast ~p", [Msg]),
    {noreply, State}.

handle_info({visitor_ttl, LUser, RegisteredAt},
            #{instance := #instance{client_host = Host}} = State) ->
    clicktochat_visitors:ttl_expired(LUser, Host, RegisteredAt),
    {noreply, State};
handle_info({answer_timeout, LUser, Start}, #{instance := Instance} = State) ->
    case clicktochat_answers:expired(Instance, LUser, Start) of
        {again, Next} -> handle_cast({arm_answer_timeout, LUser, Next}, State);
        ok -> {noreply, State}
    end;
%% The owner went (its node died or stopped, or the module stopped there).
handle_info({'DOWN', Ref, process, _Pid, _Reason}, #{owner_monitor := Ref} = State) ->
    {noreply, try_to_own(forget_owner(maps:remove(owner_monitor, State)))};
handle_info(try_to_own, #{role := follower} = State) ->
    {noreply, try_to_own(State)};
%% A node left the cluster: the owner drops its agents and gives its
%% visitors (their sessions vanished with it) visitor_ttl to come back.
handle_info({nodedown, Node}, #{role := owner, instance := Instance} = State) ->
    clicktochat_rotation:drop_node(Instance, Node),
    arm_absent_visitors(Instance),
    ?INFO_MSG("mod_clicktochat: node ~p left; its agents left the rotation of ~ts",
              [Node, Instance#instance.client_host]),
    {noreply, State};
%% Two owners after a network partition healed: global unregistered the
%% name and told both; both try again, one wins.
handle_info({global_name_conflict, _Name, _Other}, State) ->
    {noreply, try_to_own(forget_owner(State#{role => follower}))};
%% The assignments are no longer kept on disk: the server starts again.
handle_info({'EXIT', Keeper, Reason}, #{keeper := Keeper} = State) ->
    {stop, {keeper_exited, Reason}, State};
handle_info({NodeEvent, _Node}, State) when NodeEvent == nodeup; NodeEvent == nodedown ->
    {noreply, State};
handle_info(Info, State) ->
    ?WARNING_MSG("mod_clicktochat: unexpected info ~p", [Info]),
    {noreply, State}.

code_change(_OldVsn, State, _Extra) -> {ok, State}.

%% Every line change already in the mailbox: one take of the hand-overs and
%% one read of the line tell everyone.
more_line_changes(Moved) ->
    receive
        {'$gen_cast', {line_changed, MoreMoved}} -> more_line_changes(MoreMoved ++ Moved)
    after 0 -> Moved
    end.

%%%===================================================================
%%% Owning the rotation
%%%===================================================================

%% The first server to register the global name owns the rotation; the
%% others watch the owner and try again when it goes.
try_to_own(#{instance := Instance0} = State0) ->
    #instance{client_host = C} = Instance = clicktochat_rotation:prepare(Instance0),
    State = State0#{instance => Instance},
    case global:register_name(clicktochat_rotation:name(C), self(),
                              fun global:notify_all_name/3) of
        yes -> become_owner(State);
        no ->
            case clicktochat_rotation:owner(C) of
                Owner when is_pid(Owner) ->
                    case lists:member(node(Owner), [node() | nodes()]) of
                        true ->
                            Following = Instance#instance{owner = node(Owner)},
                            clicktochat_instance:publish(Following),
                            State#{instance => Following, role => follower,
                                   owner_monitor => erlang:monitor(process, Owner)};
                        false -> retry_to_own(State)   % global has not seen it go yet
                    end;
                undefined -> retry_to_own(State)  % released between the try and the lookup
            end
    end.

retry_to_own(State) ->
    erlang:send_after(100, self(), try_to_own),
    State#{role => follower}.

become_owner(#{instance := Instance0} = State) ->
    Instance = Instance0#instance{owner = node()},
    clicktochat_instance:publish(Instance),
    clicktochat_rotation:add_live_agents(Instance),
    ok = net_kernel:monitor_nodes(true),
    arm_absent_visitors(Instance),
    %% The previous owner's answer_timeout timers went with it: every chat
    %% still waiting for its agent's answer gets a full timeout from now.
    [handle_cast({arm_answer_timeout, LUser, Start}, State)
     || Instance#instance.answer_timeout /= infinity,
        {LUser, Start} <- clicktochat_assignments:asked(Instance#instance.client_host)],
    ?INFO_MSG("mod_clicktochat: ~p owns the rotation of ~ts",
              [node(), Instance#instance.client_host]),
    State#{instance => Instance, role => owner}.

%% The owner went: until the next is known, calls ask the global name.
forget_owner(#{instance := Instance} = State) ->
    Forgotten = Instance#instance{owner = undefined},
    clicktochat_instance:publish(Forgotten),
    State#{instance => Forgotten}.

owner_node(#{instance := #instance{client_host = C}}) ->
    case clicktochat_rotation:owner(C) of
        Pid when is_pid(Pid) -> node(Pid);
        undefined -> none
    end.

%% The embedded store (or Riak's outbox) lives in ejabberd's spool directory,
%% beside Mnesia's files. A store that cannot be opened stops the module.
open_archive(ClientHost, Opts) ->
    Path = filename:join(mnesia:system_info(directory),
                         <<"clicktochat_", ClientHost/binary, ".redb">>),
    Store = case gen_mod:get_opt(store, Opts) of
                embedded -> embedded;
                riak -> {riak, gen_mod:get_opt(riak_cluster, Opts),
                         gen_mod:get_opt(riak_bucket, Opts),
                         gen_mod:get_opt(riak_max_value_size, Opts),
                         %% At most an hour (the option is a timeout).
                         min(gen_mod:get_opt(riak_push_interval, Opts),
                             timer:hours(1))}
            end,
    case clicktochat_nif:archive_open(unicode:characters_to_binary(Path), Store) of
        {ok, Archive} -> Archive;
        {error, Why} ->
            ?CRITICAL_MSG("mod_clicktochat: cannot open the archive ~ts: ~ts", [Path, Why]),
            erlang:error({archive_open_failed, Why})
    end.

%% Every assigned visitor that is logged in nowhere in the cluster (a
%% restart closed its sessions, its node went down, or it never logged in)
%% gets a full visitor_ttl from now to come back, so a restart does not end
%% a conversation that was going on. A visitor already timed is timed
%% twice: harmless, the first expiry ends it and the second finds nothing.
arm_absent_visitors(#instance{client_host = C, visitor_ttl = Ttl}) ->
    lists:foreach(
      fun({LUser, _Agent, RegisteredAt}) ->
              case clicktochat_rotation:logged_in(LUser, C) of
                  false -> erlang:send_after(Ttl, self(), {visitor_ttl, LUser, RegisteredAt});
                  true -> ok
              end
      end, clicktochat_assignments:all(C)).
