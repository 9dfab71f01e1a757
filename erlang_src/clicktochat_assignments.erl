%%% clicktochat_assignments: which visitor belongs to which agent (or waits
%%% in the line), since when, and whether its agent has answered it. The one
%%% home of that link: the stanza guard, the archive capture and the visitor
%%% lifecycle all read it here, and the rotation's loads and the line are
%%% rebuilt from it after a restart or an owner takeover.
%%%
%%% A Mnesia table in memory (ram_copies: every node of the cluster holds
%%% it), kept on each node's disk by clicktochat_assignments_keeper, so that
%%% it survives module reloads and ejabberd restarts. Not disc_copies: Mnesia
%%% rewrites such a table whole once its log reaches a quarter of it (every
%%% ~N/6 changes of N rows), which stalled this node's registrations for
%%% ~150 ms at 100 000 visitors (README, Architecture). It is also the
%%% marker telling a throw-away visitor account from any other account of
%%% the client host.
%%%
%%% Read path: a hook looks the sender or receiver up once per stanza with
%%% mnesia:dirty_read on the local replica (an ETS lookup behind Mnesia's
%%% where-to-read check, no transaction, no message to any process). Every
%%% change of an existing visitor's record is a transaction on that one
%%% key, so that logout, visitor_ttl, the line and answer_timeout can race
%%% and exactly one of them wins each step.
-module(clicktochat_assignments).

-export([create_table/0, transform/1]).
%% For clicktochat_assignments_keeper.
-export([subscribe/0, held_elsewhere/0, records/1, restore/1, change/2]).
-export([claim/3, assign/4, hand_over/5, note_answer/4, lookup/2, take/2, all/1, asked/1,
         count/0]).

-record(clicktochat_visitor,
        {us :: {binary(), binary()},       % {VisitorUser, ClientHost}, nodeprepped
         agent :: binary() | waiting,      % the agent's bare JID, or in the line
         registered_at :: integer(),       % erlang:system_time(millisecond)
         assigned_at :: integer(),         % when this agent got it (= its chat's start)
         answer :: answer()}).

%% answer_timeout's view of the chat: the visitor has not written yet
%% (unasked), has written and waits for its agent (asked), or the agent has
%% written to it (answered).
-type answer() :: unasked | asked | answered.
-type assignment() :: #{agent := binary() | waiting, registered_at := integer(),
                        assigned_at := integer(), answer := answer()}.
-export_type([assignment/0, answer/0]).

-spec create_table() -> ok.
create_table() ->
    %% ejabberd_mnesia:create/3 creates, upgrades (transform/1) or just
    %% reuses the table and answers differently in each case; waiting for
    %% it is what matters. A disc_copies table of an earlier version becomes
    %% ram_copies there, its records kept (the keeper then writes them to
    %% its file).
    ejabberd_mnesia:create(?MODULE, clicktochat_visitor,
                           [{ram_copies, [node()]},
                            {attributes, record_info(fields, clicktochat_visitor)}]),
    ok = mnesia:wait_for_tables([clicktochat_visitor], timer:seconds(30)).

%% Records written before the line existed: the chat started at
%% registration, and answer_timeout leaves it alone.
transform({clicktochat_visitor, US, Agent, RegisteredAt}) ->
    #clicktochat_visitor{us = US, agent = Agent, registered_at = RegisteredAt,
                         assigned_at = RegisteredAt, answer = answered};
transform(#clicktochat_visitor{} = Current) ->
    Current.

%% Every change of the table on this node (the cluster's included) comes as
%% a message to the caller (see change/2).
-spec subscribe() -> ok.
subscribe() ->
    {ok, _Node} = mnesia:subscribe({table, clicktochat_visitor, simple}),
    ok.

%% Whether another node of the cluster holds the table now (this node then
%% loaded it from there).
-spec held_elsewhere() -> boolean().
held_elsewhere() ->
    mnesia:table_info(clicktochat_visitor, active_replicas) -- [node()] /= [].

%% A subscription's message as a change of ClientHost's visitors: the
%% visitor's record written (the record is opaque to the caller), or the
%% visitor removed; `other' for any other message.
-spec change(term(), binary()) -> {put, binary(), tuple()} | {delete, binary()} | other.
change({mnesia_table_event, {write, #clicktochat_visitor{us = {LUser, ClientHost}} = R, _}},
       ClientHost) ->
    {put, LUser, R};
change({mnesia_table_event, {delete, {clicktochat_visitor, {LUser, ClientHost}}, _}},
       ClientHost) ->
    {delete, LUser};
change({mnesia_table_event, {delete_object, #clicktochat_visitor{us = {LUser, ClientHost}}, _}},
       ClientHost) ->
    {delete, LUser};
change(_Other, _ClientHost) ->
    other.

%% ClientHost's records as change/2 gives them: {LUser, Record}.
-spec records(binary()) -> [{binary(), tuple()}].
records(ClientHost) ->
    [{LUser, R} || #clicktochat_visitor{us = {LUser, _}} = R
                       <- mnesia:dirty_match_object(
                            #clicktochat_visitor{us = {'_', ClientHost}, _ = '_'})].

%% Records kept on disk written back, in one transaction (of an earlier
%% version's layout: upgraded as ejabberd_mnesia would).
-spec restore([tuple()]) -> ok | {error, term()}.
restore(Records) ->
    Restore = fun() ->
                      mnesia:write_lock_table(clicktochat_visitor),
                      lists:foreach(fun(R) -> mnesia:write(transform(R)) end, Records)
              end,
    case mnesia:transaction(Restore) of
        {atomic, ok} -> ok;
        {aborted, Reason} -> {error, Reason}
    end.

%% Reserves the name for a registration under way: with its agent, once
%% the desk has answered (no line), or before the desk is asked (a line):
%% the record says `waiting' until assign/4 or hand_over/5 names the agent,
%% so a slot handed to it from the line finds it whatever the order.
%% `exists' when a live visitor already has the name.
-spec claim(binary(), binary(), binary() | waiting) -> {ok, integer()} | exists | {error, term()}.
claim(LUser, ClientHost, Agent) ->
    Now = erlang:system_time(millisecond),
    Claim = fun() ->
                    case mnesia:read(clicktochat_visitor, {LUser, ClientHost}, write) of
                        [] -> mnesia:write(#clicktochat_visitor{
                                              us = {LUser, ClientHost}, agent = Agent,
                                              registered_at = Now, assigned_at = Now,
                                              answer = unasked});
                        [_] -> exists
                    end
            end,
    case mnesia:transaction(Claim) of
        {atomic, ok} -> {ok, Now};
        {atomic, exists} -> exists;
        {aborted, Reason} -> {error, Reason}
    end.

%% A claimed name got an agent straight away (no line): the chat starts at
%% registration. Nobody else touches a claim that is not in the line.
-spec assign(binary(), binary(), binary(), integer()) -> ok.
assign(LUser, ClientHost, Agent, RegisteredAt) ->
    mnesia:dirty_write(#clicktochat_visitor{us = {LUser, ClientHost}, agent = Agent,
                                            registered_at = RegisteredAt,
                                            assigned_at = RegisteredAt, answer = unasked}).

%% The visitor goes from From (`waiting', or an agent that did not answer)
%% to the agent To, whose chat starts now; `gone' if the visitor ended or
%% is no longer From's meanwhile (the caller gives To's slot back).
%% A chat handed over always starts after the registration (by 1 ms if
%% need be), so assigned_at == registered_at says "assigned on registering".
-spec hand_over(binary(), binary(), binary() | waiting, binary(), answer()) ->
          {ok, integer()} | gone.
hand_over(LUser, ClientHost, From, To, Answer) ->
    Now = erlang:system_time(millisecond),
    update(LUser, ClientHost,
           fun(#clicktochat_visitor{agent = Agent, registered_at = Registered} = R)
                 when Agent == From ->
                   Start = max(Now, Registered + 1),
                   {R#clicktochat_visitor{agent = To, assigned_at = Start, answer = Answer},
                    {ok, Start}};
              (_) -> gone
           end).

%% answer_timeout's steps, each taken once: From -> To for the chat that
%% started at AssignedAt (a chat with another agent is left alone).
-spec note_answer(binary(), binary(), integer(), {answer(), answer()}) -> ok | gone.
note_answer(LUser, ClientHost, AssignedAt, {From, To}) ->
    update(LUser, ClientHost,
           fun(#clicktochat_visitor{assigned_at = At, answer = A} = R)
                 when At == AssignedAt, A == From ->
                   {R#clicktochat_visitor{answer = To}, ok};
              (_) -> gone
           end).

update(LUser, ClientHost, Change) ->
    Update = fun() ->
                     case mnesia:read(clicktochat_visitor, {LUser, ClientHost}, write) of
                         [Record] ->
                             case Change(Record) of
                                 {New, Result} -> mnesia:write(New), Result;
                                 gone -> gone
                             end;
                         [] -> gone
                     end
             end,
    case mnesia:transaction(Update) of
        {atomic, Result} -> Result;
        {aborted, _Reason} -> gone
    end.

%% The hot path: every stanza a visitor sends or receives, and every
%% message an agent sends to a client host.
-spec lookup(binary(), binary()) -> assignment() | none.
lookup(LUser, ClientHost) ->
    case mnesia:dirty_read(clicktochat_visitor, {LUser, ClientHost}) of
        [Record] -> to_map(Record);
        [] -> none
    end.

%% Removes the assignment and returns it, to exactly one caller.
-spec take(binary(), binary()) -> {ok, assignment()} | none | {error, term()}.
take(LUser, ClientHost) ->
    Take = fun() ->
                   case mnesia:read(clicktochat_visitor, {LUser, ClientHost}, write) of
                       [Record] ->
                           mnesia:delete({clicktochat_visitor, {LUser, ClientHost}}),
                           {ok, to_map(Record)};
                       [] -> none
                   end
           end,
    case mnesia:transaction(Take) of
        {atomic, Result} -> Result;
        {aborted, Reason} -> {error, Reason}
    end.

%% Every visitor of the client host, in order of registration:
%% [{LUser, Agent | waiting, RegisteredAtMs}].
-spec all(binary()) -> [{binary(), binary() | waiting, integer()}].
all(ClientHost) ->
    lists:keysort(3, [{LUser, Agent, At}
                      || #clicktochat_visitor{us = {LUser, _}, agent = Agent, registered_at = At}
                             <- mnesia:dirty_match_object(
                                  #clicktochat_visitor{us = {'_', ClientHost}, _ = '_'})]).

%% The chats whose visitor waits for its agent's first answer:
%% [{LUser, AssignedAtMs}] (answer_timeout's timers, after a takeover).
-spec asked(binary()) -> [{binary(), integer()}].
asked(ClientHost) ->
    [{LUser, At} || #clicktochat_visitor{us = {LUser, _}, assigned_at = At}
                        <- mnesia:dirty_match_object(
                             #clicktochat_visitor{us = {'_', ClientHost}, answer = asked,
                                                  _ = '_'})].

%% Visitors alive, all client hosts together (the max_visitors cap).
-spec count() -> non_neg_integer().
count() ->
    mnesia:table_info(clicktochat_visitor, size).

to_map(#clicktochat_visitor{agent = Agent, registered_at = R, assigned_at = A, answer = Answer}) ->
    #{agent => Agent, registered_at => R, assigned_at => A, answer => Answer}.
