%%% clicktochat_visitors: a visitor's life. Registered through the HTTP API
%%% (an agent picked or a place in the line taken, a throw-away account
%%% created, the assignment written), ended when its last session closes or
%%% when it never logs in within visitor_ttl (the account removed, the
%%% agent's slot freed or the place in the line given up).
-module(clicktochat_visitors).

-export([register/3, ttl_expired/3]).
%% Hooks on the client host.
-export([session_closed/3, stream_ended/2]).

-include("logger.hrl").
-include("xmpp.hrl").
-include("clicktochat.hrl").

%% Claims the name and asks the desk for an agent or a place in the line,
%% then creates the account; on any failure the name, the slot or the place
%% is given back, so no account, slot or place is left behind.
-spec register(#instance{}, binary(), binary()) ->
          {ok, binary(), binary()} |
          {waiting, binary(), pos_integer(), non_neg_integer() | undefined} |
          {error, atom()}.
register(#instance{max_visitors = MaxVisitors,
                   max_waiting = MaxWaiting} = Instance, User, Password) ->
    case jid:nodeprep(User) of
        LUser when LUser == error; LUser == <<>> -> {error, invalid_username};
        LUser ->
            case clicktochat_assignments:count() >= MaxVisitors of
                true -> {error, too_many_visitors};
                false when MaxWaiting == 0 -> agent_first(Instance, LUser, Password);
                false -> claim_first(Instance, LUser, Password)
            end
    end.

%% Without a line the desk answers an agent or nothing, and nobody else
%% writes a visitor before it exists: the name is claimed with its agent in
%% one transaction once the desk has answered (one Mnesia write a
%% registration rather than a claim and then the agent; the registration's
%% tail latency follows Mnesia's log).
agent_first(#instance{client_host = ClientHost} = Instance, LUser, Password) ->
    case clicktochat_assignments:lookup(LUser, ClientHost) of
        none ->
            case clicktochat_rotation:enter(Instance, LUser) of
                {assigned, Agent} ->
                    case clicktochat_assignments:claim(LUser, ClientHost, Agent) of
                        {ok, RegisteredAt} ->
                            Visitor = jid:encode({LUser, ClientHost, <<>>}),
                            create_account(Instance, LUser, Password, RegisteredAt,
                                           {ok, Visitor, Agent});
                        Taken ->
                            clicktochat_rotation:release(Instance, Agent, none),
                            {error, not_claimed(Taken)}
                    end;
                {waiting, _Position, _Estimate} ->
                    %% The line was turned on since this instance was read:
                    %% the place goes back, and the name is claimed first.
                    clicktochat_rotation:leave(Instance, LUser),
                    claim_first(Instance, LUser, Password);
                Refused -> {error, refused(Refused)}
            end;
        _Live -> {error, exists}
    end.

%% With a line, the name is claimed (as waiting) before the desk is asked,
%% so that a slot the line hands it finds it whatever the order.
claim_first(#instance{client_host = ClientHost} = Instance, LUser, Password) ->
    case clicktochat_assignments:claim(LUser, ClientHost, waiting) of
        {ok, RegisteredAt} -> enter(Instance, LUser, Password, RegisteredAt);
        Taken -> {error, not_claimed(Taken)}
    end.

%% Why a claim failed, as the API says it.
not_claimed(exists) -> exists;
not_claimed({error, _}) -> db_failure.

enter(#instance{client_host = ClientHost} = Instance, LUser, Password, RegisteredAt) ->
    Visitor = jid:encode({LUser, ClientHost, <<>>}),
    case clicktochat_rotation:enter(Instance, LUser) of
        {assigned, Agent} ->
            clicktochat_assignments:assign(LUser, ClientHost, Agent, RegisteredAt),
            create_account(Instance, LUser, Password, RegisteredAt, {ok, Visitor, Agent});
        {waiting, Position, Estimate} ->
            create_account(Instance, LUser, Password, RegisteredAt,
                           {waiting, Visitor, Position, Estimate});
        Refused ->
            %% Not in the desk (or, if its owner did not answer in time, a
            %% place the line hands out to nobody: the slot comes back).
            clicktochat_assignments:take(LUser, ClientHost),
            {error, refused(Refused)}
    end.

refused(line_full) -> line_full;
refused(_NoAgentOrNoOwner) -> no_agent_available.

create_account(#instance{client_host = ClientHost} = Instance, LUser, Password, RegisteredAt,
               Registered) ->
    try clicktochat_accounts:create(LUser, ClientHost, Password) of
        ok ->
            clicktochat_server:arm_ttl(ClientHost, LUser, RegisteredAt),
            Registered;
        {error, Reason} ->
            give_back(Instance, LUser),
            {error, case Reason of
                        invalid_jid -> invalid_username;
                        _ when is_atom(Reason) -> Reason
                    end}
    catch Class:Reason:Stack ->
            ?ERROR_MSG("mod_clicktochat: registering ~ts@~ts failed: ~p",
                       [LUser, ClientHost, {Class, Reason, Stack}]),
            %% The account may exist without its assignment: do not leave it behind.
            catch ejabberd_auth:remove_user(LUser, ClientHost),
            give_back(Instance, LUser),
            {error, internal_error}
    end.

%% A registration that did not complete: the name, and the slot or the
%% place in the line, whichever it has by now (the line may have handed it
%% a slot meanwhile). An account of that name is not ours to remove.
give_back(#instance{client_host = ClientHost} = Instance, LUser) ->
    case clicktochat_assignments:take(LUser, ClientHost) of
        {ok, Assignment} -> leave_desk(Instance, LUser, Assignment, none);
        _NoneOrError -> ok
    end.

%% The visitor_ttl timer of a registration: a visitor that never logged in
%% is ended. The timer names the registration it was armed for: a visitor
%% that ended and was registered again under the same name has its own.
-spec ttl_expired(binary(), binary(), integer()) -> ok.
ttl_expired(LUser, ClientHost, RegisteredAt) ->
    case {clicktochat_assignments:lookup(LUser, ClientHost),
          clicktochat_rotation:logged_in(LUser, ClientHost)} of
        {#{registered_at := RegisteredAt}, false} -> end_visitor(LUser, ClientHost);
        _ -> ok      % logged in (its logout ends it), ended, or registered anew
    end.

%% sm_remove_connection_hook: the session is already gone from ejabberd_sm,
%% so no resource left means the visitor's last one ended. Not while the
%% host goes down (see stream_ended/2).
session_closed(_SID, #jid{luser = LUser, lserver = LServer}, _Info) ->
    case clicktochat_instance:going_down(LServer) orelse
        ejabberd_sm:get_user_resources(LUser, LServer) /= [] of
        true -> ok;
        false -> end_visitor(LUser, LServer)
    end.

%% c2s_terminated, before ejabberd_c2s closes the session. When ejabberd
%% stops (or the host goes down), ejabberd_sm closes every session with a
%% system-shutdown (reset, in a cluster) stream error before any module
%% stops: those visitors are not leaving, so they keep their account and get
%% visitor_ttl to come back after the restart.
stream_ended(#{lserver := LServer} = State, Reason) ->
    case is_shutdown(State, Reason) of
        true -> clicktochat_instance:mark_going_down(LServer);
        false -> ok
    end,
    State;
stream_ended(State, _Reason) ->
    State.

is_shutdown(#{stop_reason := {stream, {out, #stream_error{reason = R}}}}, _)
  when R == 'system-shutdown'; R == reset -> true;
is_shutdown(_State, shutdown) -> true;
is_shutdown(_State, {shutdown, _}) -> true;
is_shutdown(_State, _Reason) -> false.

%% Removes the visitor's account and frees its agent's slot (or its place
%% in the line), once, whoever (logout, TTL) gets here first; accounts we
%% did not create have no assignment and are left alone.
end_visitor(LUser, ClientHost) ->
    case clicktochat_assignments:take(LUser, ClientHost) of
        {ok, #{assigned_at := AssignedAt} = Assignment} ->
            ejabberd_auth:remove_user(LUser, ClientHost),
            case clicktochat_instance:of_client_host(ClientHost) of
                undefined -> ok;    % the module stopped: its next start recounts
                Instance ->
                    Chat = erlang:system_time(millisecond) - AssignedAt,
                    leave_desk(Instance, LUser, Assignment, max(Chat, 0))
            end,
            ?DEBUG("mod_clicktochat: visitor ~ts@~ts ended", [LUser, ClientHost]);
        none -> ok;
        {error, Reason} ->
            ?ERROR_MSG("mod_clicktochat: ending visitor ~ts@~ts failed: ~p",
                       [LUser, ClientHost, Reason])
    end.

%% A waiting visitor leaves the line; an assigned one frees its slot, after
%% a chat of ChatMs (none: nothing to measure).
leave_desk(Instance, LUser, #{agent := waiting}, _ChatMs) ->
    clicktochat_rotation:leave(Instance, LUser);
leave_desk(Instance, _LUser, #{agent := Agent}, ChatMs) ->
    clicktochat_rotation:release(Instance, Agent, ChatMs).
