%%% clicktochat_presence: which agents are in the rotation. An agent of the
%%% helpdesk host is in it while one of its resources has available presence
%%% (no show, or chat); away, xa, dnd, unavailable presence and logout take
%%% that resource out. The rotation counts resources, so several resources of
%%% one agent, on one node or several, are one agent. The hooks run on the
%%% node of the agent's session and tell the rotation's owner
%%% (clicktochat_rotation), synchronously: a presence is applied before the
%%% session's next stanza is handled.
-module(clicktochat_presence).

-export([availability/1]).
%% Hooks on the helpdesk host.
-export([presence_set/4, presence_unset/4]).

-include("xmpp.hrl").
-include("clicktochat.hrl").

%% set_presence_hook: initial presence and every change of show.
presence_set(User, Server, Resource, Presence) ->
    update(User, Server, Resource, availability(Presence)).

%% unset_presence_hook: unavailable presence or logout.
presence_unset(User, Server, Resource, _Status) ->
    update(User, Server, Resource, unavailable).

-spec availability(presence()) -> available | unavailable.
availability(#presence{type = available, show = Show}) when Show == undefined; Show == chat ->
    available;
availability(_AwayOrOther) ->
    unavailable.

update(User, Server, Resource, Availability) ->
    LServer = jid:nameprep(Server),
    case clicktochat_instance:of_helpdesk_host(LServer) of
        undefined -> ok;
        #instance{client_host = ClientHost} ->
            clicktochat_rotation:presence(ClientHost, jid:encode({jid:nodeprep(User), LServer, <<>>}),
                                          Resource, Availability)
    end.
