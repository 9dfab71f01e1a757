%%% clicktochat_rotation: the helpdesk desk of a client host (the rotation
%%% of agents, the waiting line and its estimate), one for the whole cluster.
%%%
%%% Its state (a NIF resource, clicktochat_core's Desk) lives on one node,
%%% the owner: the node whose clicktochat_server holds the global name
%%% {clicktochat_rotation, ClientHost}. On the owner, an operation is a
%%% direct NIF call from the caller's process, as on a single node; from any
%%% other node it is one erpc call to the owner, which makes the same NIF
%%% call there. So capacity and the line are counted once, cluster-wide, and
%%% a node alone pays one global-name lookup (an ETS read) over the direct
%%% call. What a call changes in the line (visitors handed a freed slot,
%%% positions moved) goes from the owner to clicktochat_line.
%%%
%%% The owner also notes which node each available agent resource is on, so
%%% that when a node goes down (its sessions vanish without any hook) its
%%% agents leave the rotation. When the owner itself goes, another node's
%%% server takes the name and rebuilds: loads and the line from the
%%% assignments (Mnesia, replicated), agents from the cluster's live sessions.
-module(clicktochat_rotation).

-export([name/1, owner/1, enter/2, release/3, leave/2, pass_on/3, presence/4, status/1]).
-export([prepare/1, add_live_agents/1, logged_in/2, drop_node/2, view/1]).
%% Run on the owner (by erpc, or directly there).
-export([local_enter/2, local_release/3, local_leave/2, local_presence/5, local_view/1,
         local_status/1]).

-include("logger.hrl").
-include("clicktochat.hrl").

%% A call to the owner that takes longer than this gives up (no agent for
%% this registration; a lost release is recounted at the next rebuild).
-define(CALL_TIMEOUT, 5000).

-spec name(binary()) -> {clicktochat_rotation, binary()}.
name(ClientHost) -> {clicktochat_rotation, ClientHost}.

-spec owner(binary()) -> pid() | undefined.
owner(ClientHost) -> global:whereis_name(name(ClientHost)).

%% A new visitor: the head agent with a free slot (moved to the tail), or a
%% place in the line. The caller has the instance at hand (one
%% persistent_term read per request): on the owner this is the NIF call
%% alone, as on a single node.
-spec enter(#instance{}, binary()) ->
          {assigned, binary()} | {waiting, pos_integer(), non_neg_integer() | undefined} |
          line_full | no_agent_available | unavailable.
enter(#instance{owner = Owner, rotation = R}, LUser) when Owner == node() ->
    clicktochat_nif:enter(R, LUser);
enter(#instance{client_host = ClientHost} = Instance, LUser) ->
    remote(ClientHost, Instance, local_enter, [ClientHost, LUser]).

%% One of the agent's visitors ended after a chat of DurationMs (none: no
%% chat to measure, e.g. a slot given back unused). A freed slot goes to
%% the line's head first.
-spec release(#instance{}, binary(), non_neg_integer() | none) -> ok.
release(#instance{owner = Owner, rotation = R} = Instance, Agent, DurationMs)
  when Owner == node() ->
    {_Freed, Changes} = clicktochat_nif:release(R, Agent, DurationMs),
    clicktochat_line:changed(Instance, Changes);
release(#instance{client_host = ClientHost} = Instance, Agent, DurationMs) ->
    remote(ClientHost, Instance, local_release, [ClientHost, Agent, DurationMs]),
    ok.

%% A waiting visitor ended (logout, visitor_ttl): it leaves the line.
-spec leave(#instance{}, binary()) -> ok.
leave(#instance{owner = Owner, rotation = R} = Instance, LUser) when Owner == node() ->
    clicktochat_line:changed(Instance, clicktochat_nif:leave(R, LUser));
leave(#instance{client_host = ClientHost} = Instance, LUser) ->
    remote(ClientHost, Instance, local_leave, [ClientHost, LUser]),
    ok.

%% answer_timeout, run by the owner's server: a slot of another agent than
%% From, per the routing (From's slot is released separately, once the
%% visitor is handed over).
-spec pass_on(#instance{}, binary(), binary()) -> {ok, binary()} | none.
pass_on(#instance{rotation = R}, LUser, From) ->
    clicktochat_nif:pass_on(R, LUser, From).

%% Agents taking visitors, their free slots, the line's length and the
%% estimated wait of a newcomer, cluster-wide (O(1) on the owner), for GET
%% /status.
-spec status(#instance{}) -> {non_neg_integer(), non_neg_integer(), non_neg_integer(),
                              non_neg_integer() | undefined} | unavailable.
status(#instance{owner = Owner, rotation = R}) when Owner == node() ->
    clicktochat_nif:status(R);
status(#instance{client_host = ClientHost} = Instance) ->
    remote(ClientHost, Instance, local_status, [ClientHost]).

%% An agent resource's presence: available (in the rotation) or not.
-spec presence(binary(), binary(), binary(), available | unavailable) -> ok.
presence(ClientHost, Agent, Resource, Availability) ->
    case clicktochat_instance:of_client_host(ClientHost) of
        #instance{owner = Owner} = Instance when Owner == node() ->
            apply_presence(Instance, Agent, Resource, node(), Availability);
        Instance ->
            remote(ClientHost, Instance, local_presence,
                   [ClientHost, Agent, Resource, node(), Availability])
    end,
    ok.

%% For operators: the owner node, the queue, the loads, each node's
%% available agents, and the line (head first, with positions and
%% estimates).
-spec view(binary()) -> {ok, node(), [binary()], [{binary(), non_neg_integer()}],
                         [{node(), [binary()]}],
                         [{binary(), pos_integer(), non_neg_integer() | undefined}]} |
                        unavailable.
view(ClientHost) ->
    case clicktochat_instance:of_client_host(ClientHost) of
        #instance{owner = Owner} when Owner == node() -> local_view(ClientHost);
        Instance -> remote(ClientHost, Instance, local_view, [ClientHost])
    end.

%% One erpc call to the owner this node knows of (clicktochat_server keeps
%% it in the instance). If that owner is gone, or none is known yet (a
%% takeover under way), the global name says who owns the rotation now.
remote(ClientHost, #instance{owner = Known}, Function, Args) when Known /= undefined ->
    try erpc:call(Known, ?MODULE, Function, Args, ?CALL_TIMEOUT)
    catch error:{erpc, noconnection} -> remote(ClientHost, undefined, Function, Args);
          Class:Reason -> unanswered(Known, Function, {Class, Reason})
    end;
remote(ClientHost, _UnknownOwner, Function, Args) ->
    case owner(ClientHost) of
        Pid when is_pid(Pid) ->
            try erpc:call(node(Pid), ?MODULE, Function, Args, ?CALL_TIMEOUT)
            catch Class:Reason -> unanswered(node(Pid), Function, {Class, Reason})
            end;
        undefined -> unavailable
    end.

unanswered(Node, Function, Why) ->
    ?WARNING_MSG("mod_clicktochat: rotation owner ~p did not answer ~p: ~p",
                 [Node, Function, Why]),
    unavailable.

%%%===================================================================
%%% On the owner
%%%===================================================================
local_enter(ClientHost, LUser) ->
    with_rotation(ClientHost, fun(#instance{rotation = R}) -> clicktochat_nif:enter(R, LUser) end).

local_status(ClientHost) ->
    with_rotation(ClientHost, fun(#instance{rotation = R}) -> clicktochat_nif:status(R) end).

local_release(ClientHost, Agent, DurationMs) ->
    with_rotation(ClientHost, fun(Instance) -> release(Instance, Agent, DurationMs) end).

local_leave(ClientHost, LUser) ->
    with_rotation(ClientHost, fun(Instance) -> leave(Instance, LUser) end).

local_presence(ClientHost, Agent, Resource, Node, Availability) ->
    with_rotation(ClientHost, fun(Instance) -> apply_presence(Instance, Agent, Resource, Node,
                                                              Availability) end).

local_view(ClientHost) ->
    with_rotation(ClientHost,
                  fun(#instance{rotation = R, agent_nodes = Nodes}) ->
                          PerNode = lists:foldl(fun({{Agent, _Resource}, Node}, Acc) ->
                                                        orddict:append(Node, Agent, Acc)
                                                end, orddict:new(), ets:tab2list(Nodes)),
                          {ok, node(), clicktochat_nif:queue(R), clicktochat_nif:loads(R),
                           [{Node, lists:usort(Agents)} || {Node, Agents} <- PerNode],
                           clicktochat_nif:line(R)}
                  end).

with_rotation(ClientHost, Fun) ->
    case clicktochat_instance:of_client_host(ClientHost) of
        #instance{} = Instance -> Fun(Instance);
        undefined -> unavailable
    end.

apply_presence(#instance{rotation = R, agent_nodes = Nodes} = Instance, Agent, Resource, Node,
               available) ->
    ets:insert(Nodes, {{Agent, Resource}, Node}),
    clicktochat_line:changed(Instance, clicktochat_nif:resource_available(R, Agent, Resource));
apply_presence(#instance{rotation = R, agent_nodes = Nodes}, Agent, Resource, _Node, unavailable) ->
    ets:delete(Nodes, {Agent, Resource}),
    clicktochat_nif:resource_unavailable(R, Agent, Resource).

%% A node went down: its sessions are gone without a hook, so its agent
%% resources leave the rotation. Its visitors keep their slot (they may log
%% in again elsewhere; clicktochat_server arms their visitor_ttl).
-spec drop_node(#instance{}, node()) -> ok.
drop_node(#instance{agent_nodes = Nodes} = Instance, Node) ->
    Gone = ets:match_object(Nodes, {'_', Node}),
    lists:foreach(fun({{Agent, Resource}, _}) ->
                          apply_presence(Instance, Agent, Resource, Node, unavailable)
                  end, Gone).

%% Before trying to become the owner: a fresh desk holding every assigned
%% visitor's load and every waiting visitor in order of registration,
%% published, so that once this node owns the name a newcomer finds no
%% agent rather than an agent whose load is not counted yet, and a presence
%% arriving from another node lands in it.
-spec prepare(#instance{}) -> #instance{}.
prepare(#instance{client_host = C, max_sessions = Max, routing = Routing,
                  max_waiting = MaxWaiting, agent_nodes = Nodes} = Instance0) ->
    R = clicktochat_nif:new(Max, Routing, MaxWaiting),
    Instance = Instance0#instance{rotation = R},
    ets:delete_all_objects(Nodes),
    [case Agent of
         waiting -> clicktochat_nif:restore_waiting(R, LUser);
         _ -> clicktochat_nif:restore(R, Agent)
     end || {LUser, Agent, _RegisteredAt} <- clicktochat_assignments:all(C)],
    clicktochat_instance:publish(Instance),
    Instance.

%% Having become the owner: every agent resource with available presence on
%% a live node of the cluster joins the rotation.
-spec add_live_agents(#instance{}) -> ok.
add_live_agents(#instance{helpdesk_host = H} = Instance) ->
    lists:foreach(
      fun({U, S, R}) ->
              case live_session(U, S, R) of
                  {ok, Pid} -> rebuild_resource(Instance, U, S, R, Pid);
                  none -> ok
              end
      end, ejabberd_sm:get_vh_session_list(H)).

%% Whether a user has a session on a live node. A node that went down leaves
%% its sessions in the session table for a moment (until ejabberd_sm sees
%% Mnesia's mnesia_down), and its users are not logged in.
-spec logged_in(binary(), binary()) -> boolean().
logged_in(LUser, LServer) ->
    lists:any(fun(R) -> live_session(LUser, LServer, R) /= none end,
              ejabberd_sm:get_user_resources(LUser, LServer)).

live_session(U, S, R) ->
    case ejabberd_sm:get_session_pid(U, S, R) of
        Pid when is_pid(Pid) ->
            case node(Pid) == node() orelse lists:member(node(Pid), nodes()) of
                true -> {ok, Pid};
                false -> none
            end;
        _ -> none
    end.

rebuild_resource(Instance, U, S, R, Pid) ->
    try ejabberd_c2s:get_presence(Pid) of
        Presence ->
            Agent = jid:encode({U, S, <<>>}),
            apply_presence(Instance, Agent, R, node(Pid),
                           clicktochat_presence:availability(Presence))
    catch _:_ -> ok   % the session ended meanwhile
    end.
