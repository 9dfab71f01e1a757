%%% clicktochat_visitors: a visitor's life. Registered through the HTTP API
%%% (an agent picked, a throw-away account created, the assignment written),
%%% ended when its last session closes or when it never logs in within
%%% visitor_ttl (the account removed, the agent's slot freed).
-module(clicktochat_visitors).

-export([register/3, ttl_expired/3]).
%% Hooks on the client host.
-export([session_closed/3, stream_ended/2]).

-include("logger.hrl").
-include("xmpp.hrl").
-include("clicktochat.hrl").

%% Picks an agent and creates the account; on any failure the slot is given
%% back, so no account and no slot is left behind.
-spec register(#instance{}, binary(), binary()) -> {ok, binary(), binary()} | {error, atom()}.
register(#instance{client_host = ClientHost, max_visitors = MaxVisitors} = Instance,
         User, Password) ->
    case jid:nodeprep(User) of
        LUser when LUser == error; LUser == <<>> -> {error, invalid_username};
        LUser ->
            case clicktochat_assignments:count() >= MaxVisitors of
                true -> {error, too_many_visitors};
                false ->
                    case clicktochat_rotation:pick(Instance) of
                        none -> {error, no_agent_available};
                        {ok, Agent} ->
                            case create_account(LUser, ClientHost, Password, Agent) of
                                ok -> {ok, jid:encode({LUser, ClientHost, <<>>}), Agent};
                                {error, _} = Err ->
                                    clicktochat_rotation:release(Instance, Agent),
                                    Err
                            end
                    end
            end
    end.

create_account(LUser, ClientHost, Password, Agent) ->
    try ejabberd_auth:try_register(LUser, ClientHost, Password) of
        ok ->
            {ok, RegisteredAt} = clicktochat_assignments:assign(LUser, ClientHost, Agent),
            clicktochat_server:arm_ttl(ClientHost, LUser, RegisteredAt);
        {error, invalid_jid} -> {error, invalid_username};
        {error, invalid_password} -> {error, invalid_password};
        {error, Reason} when is_atom(Reason) -> {error, Reason}
    catch Class:Reason:Stack ->
            ?ERROR_MSG("mod_clicktochat: registering ~ts@~ts failed: ~p",
                       [LUser, ClientHost, {Class, Reason, Stack}]),
            %% The account may exist without its assignment: do not leave it behind.
            catch ejabberd_auth:remove_user(LUser, ClientHost),
            {error, internal_error}
    end.

%% The visitor_ttl timer of a registration: a visitor that never logged in
%% is ended. The timer names the registration it was armed for: a visitor
%% that ended and was registered again under the same name has its own.
-spec ttl_expired(binary(), binary(), integer()) -> ok.
ttl_expired(LUser, ClientHost, RegisteredAt) ->
    case {clicktochat_assignments:lookup(LUser, ClientHost),
          clicktochat_rotation:logged_in(LUser, ClientHost)} of
        {{_Agent, RegisteredAt}, false} -> end_visitor(LUser, ClientHost);
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

%% Removes the visitor's account and frees its agent's slot, once, whoever
%% (logout, TTL) gets here first; accounts we did not create have no
%% assignment and are left alone.
end_visitor(LUser, ClientHost) ->
    case clicktochat_assignments:take(LUser, ClientHost) of
        {ok, Agent} ->
            ejabberd_auth:remove_user(LUser, ClientHost),
            case clicktochat_instance:of_client_host(ClientHost) of
                undefined -> ok;    % the module stopped: its next start recounts
                Instance -> clicktochat_rotation:release(Instance, Agent)
            end,
            ?DEBUG("mod_clicktochat: visitor ~ts@~ts ended, ~ts has a free slot",
                   [LUser, ClientHost, Agent]);
        none -> ok;
        {error, Reason} ->
            ?ERROR_MSG("mod_clicktochat: ending visitor ~ts@~ts failed: ~p",
                       [LUser, ClientHost, Reason])
    end.
