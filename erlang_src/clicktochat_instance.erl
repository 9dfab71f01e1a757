%%% clicktochat_instance: the registry of active instances, one per client
%%% host. Kept in persistent_term: every hook and HTTP request reads it, and
%%% it changes only when an instance starts or stops.
-module(clicktochat_instance).

-export([publish/1, unpublish/1, of_client_host/1, of_helpdesk_host/1,
         client_hosts/0, for_request/1, mark_going_down/1, going_down/1]).

-include("clicktochat.hrl").

-define(KEY(Kind, Host), {clicktochat, Kind, Host}).
-define(CLIENT_HOSTS, {clicktochat, client_hosts}).

-spec publish(#instance{}) -> ok.
publish(#instance{client_host = C, helpdesk_host = H} = Instance) ->
    persistent_term:put(?KEY(client, C), Instance),
    persistent_term:put(?KEY(helpdesk, H), C),
    persistent_term:put(?CLIENT_HOSTS, lists:usort([C | client_hosts()])).

-spec unpublish(#instance{}) -> ok.
unpublish(#instance{client_host = C, helpdesk_host = H}) ->
    persistent_term:erase(?KEY(going_down, C)),
    persistent_term:erase(?KEY(client, C)),
    persistent_term:erase(?KEY(helpdesk, H)),
    persistent_term:put(?CLIENT_HOSTS, lists:delete(C, client_hosts())),
    ok.

%% The instance whose visitors live on Host.
-spec of_client_host(binary()) -> #instance{} | undefined.
of_client_host(Host) ->
    persistent_term:get(?KEY(client, Host), undefined).

%% The instance whose agents live on Host.
-spec of_helpdesk_host(binary()) -> #instance{} | undefined.
of_helpdesk_host(Host) ->
    case persistent_term:get(?KEY(helpdesk, Host), undefined) of
        undefined -> undefined;
        ClientHost -> of_client_host(ClientHost)
    end.

-spec client_hosts() -> [binary()].
client_hosts() ->
    persistent_term:get(?CLIENT_HOSTS, []).

%% The instance serving an HTTP request: the one whose client or helpdesk
%% host is the request's Host, else the first one.
-spec for_request(binary()) -> #instance{} | undefined.
for_request(RequestHost) ->
    case {of_client_host(RequestHost), of_helpdesk_host(RequestHost), client_hosts()} of
        {#instance{} = Instance, _, _} -> Instance;
        {undefined, #instance{} = Instance, _} -> Instance;
        {undefined, undefined, [First | _]} -> of_client_host(First);
        {undefined, undefined, []} -> undefined
    end.

%% ejabberd is stopping (or the host going down): sessions closing now are
%% not visitors leaving. Cleared when the instance stops (its hooks are gone
%% by then); not by publish/1, which also runs when the rotation's owner
%% changes, possibly while this node is stopping.
-spec mark_going_down(binary()) -> ok.
mark_going_down(ClientHost) ->
    case going_down(ClientHost) of
        true -> ok;
        false -> persistent_term:put(?KEY(going_down, ClientHost), true)
    end.

-spec going_down(binary()) -> boolean().
going_down(ClientHost) ->
    persistent_term:get(?KEY(going_down, ClientHost), false).
