%%% clicktochat_assignments: which visitor belongs to which agent, since
%%% when. The one home of that link: the stanza guard, the archive capture
%%% and the visitor lifecycle all read it here, and the rotation's loads are
%%% rebuilt from it after a restart.
%%%
%%% A Mnesia disc table, so that it survives module reloads and ejabberd
%%% restarts (and becomes the cluster's record once replicated). It is also
%%% the marker telling a throw-away visitor account from any other account
%%% of the client host.
%%%
%%% Read path: a hook looks the sender or receiver up once per stanza with
%%% mnesia:dirty_read on the local replica (an ETS lookup behind Mnesia's
%%% where-to-read check, no transaction, no message to any process). Only
%%% ending a visitor takes a transaction, so that logout and visitor_ttl
%%% cannot both end it.
-module(clicktochat_assignments).

-export([create_table/0, assign/3, lookup/2, take/2, all/1, count/0]).

-record(clicktochat_visitor,
        {us :: {binary(), binary()},       % {VisitorUser, ClientHost}, nodeprepped
         agent :: binary(),                % the agent's bare JID
         registered_at :: integer()}).     % erlang:system_time(millisecond)

-type assignment() :: {Agent :: binary(), RegisteredAtMs :: integer()}.
-export_type([assignment/0]).

-spec create_table() -> ok.
create_table() ->
    %% ejabberd_mnesia:create/3 creates, upgrades or just reuses the table
    %% and answers differently in each case; waiting for it is what matters.
    ejabberd_mnesia:create(?MODULE, clicktochat_visitor,
                           [{disc_copies, [node()]},
                            {attributes, record_info(fields, clicktochat_visitor)}]),
    ok = mnesia:wait_for_tables([clicktochat_visitor], timer:seconds(30)).

-spec assign(binary(), binary(), binary()) -> {ok, integer()}.
assign(LUser, ClientHost, Agent) ->
    Now = erlang:system_time(millisecond),
    ok = mnesia:dirty_write(#clicktochat_visitor{us = {LUser, ClientHost}, agent = Agent,
                                                 registered_at = Now}),
    {ok, Now}.

%% The hot path: every stanza a visitor sends or receives, and every
%% message an agent sends to a client host.
-spec lookup(binary(), binary()) -> assignment() | none.
lookup(LUser, ClientHost) ->
    case mnesia:dirty_read(clicktochat_visitor, {LUser, ClientHost}) of
        [#clicktochat_visitor{agent = Agent, registered_at = At}] -> {Agent, At};
        [] -> none
    end.

%% Removes the assignment and returns its agent, to exactly one caller.
-spec take(binary(), binary()) -> {ok, binary()} | none | {error, term()}.
take(LUser, ClientHost) ->
    Take = fun() ->
                   case mnesia:read(clicktochat_visitor, {LUser, ClientHost}, write) of
                       [#clicktochat_visitor{agent = Agent}] ->
                           mnesia:delete({clicktochat_visitor, {LUser, ClientHost}}),
                           {ok, Agent};
                       [] -> none
                   end
           end,
    case mnesia:transaction(Take) of
        {atomic, Result} -> Result;
        {aborted, Reason} -> {error, Reason}
    end.

%% Every visitor of the client host: [{LUser, Agent, RegisteredAtMs}].
-spec all(binary()) -> [{binary(), binary(), integer()}].
all(ClientHost) ->
    [{LUser, Agent, At}
     || #clicktochat_visitor{us = {LUser, _}, agent = Agent, registered_at = At}
            <- mnesia:dirty_match_object(#clicktochat_visitor{us = {'_', ClientHost},
                                                              _ = '_'})].

%% Visitors alive, all client hosts together (the max_visitors cap).
-spec count() -> non_neg_integer().
count() ->
    mnesia:table_info(clicktochat_visitor, size).
