%%% clicktochat_presence: which agents are in the rotation. An agent of the
%%% helpdesk host is in it while one of its resources has available presence
%%% (no show, or chat); away, xa, dnd, unavailable presence and logout take
%%% that resource out. The rotation (a NIF resource) counts resources, so
%%% several resources of one agent are one agent.
-module(clicktochat_presence).

-export([rebuild/1]).
%% Hooks on the helpdesk host.
-export([presence_set/4, presence_unset/4]).

-include("xmpp.hrl").
-include("clicktochat.hrl").

%% set_presence_hook: initial presence and every change of show.
presence_set(User, Server, Resource, #presence{type = available, show = Show})
  when Show == undefined; Show == chat ->
    with_rotation(User, Server, fun(Rotation, Agent) ->
                                        clicktochat_nif:resource_available(Rotation, Agent,
                                                                           Resource)
                                end);
presence_set(User, Server, Resource, _AwayOrOther) ->
    presence_unset(User, Server, Resource, <<>>).

%% unset_presence_hook: unavailable presence or logout.
presence_unset(User, Server, Resource, _Status) ->
    with_rotation(User, Server, fun(Rotation, Agent) ->
                                        clicktochat_nif:resource_unavailable(Rotation, Agent,
                                                                             Resource)
                                end).

with_rotation(User, Server, Fun) ->
    LServer = jid:nameprep(Server),
    case clicktochat_instance:of_helpdesk_host(LServer) of
        undefined -> ok;
        #instance{rotation = Rotation} ->
            Fun(Rotation, jid:encode({jid:nodeprep(User), LServer, <<>>})),
            ok
    end.

%% After a (re)start: every live agent session whose last presence is
%% available puts its agent back in the rotation.
-spec rebuild(#instance{}) -> ok.
rebuild(#instance{helpdesk_host = HelpdeskHost}) ->
    lists:foreach(
      fun({U, S, R}) ->
              case ejabberd_sm:get_session_pid(U, S, R) of
                  Pid when is_pid(Pid) ->
                      try ejabberd_c2s:get_presence(Pid) of
                          Presence -> presence_set(U, S, R, Presence)
                      catch _:_ -> ok   % the session ended meanwhile
                      end;
                  _ -> ok
              end
      end, ejabberd_sm:get_vh_session_list(HelpdeskHost)).
