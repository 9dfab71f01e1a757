%%% clicktochat_nif: the Erlang face of the Rust NIF (native/clicktochat_nif).
%%%
%%% Every function here is replaced by its native implementation when the
%%% module loads; the bodies only run if the library could not be loaded.
%%% The library is looked up in the `priv' directory beside this module's
%%% `ebin' (ejabberd's contrib layout and the build tree alike).
-module(clicktochat_nif).

%% Written once: exported, and declared as the functions the library may
%% replace (load_nif refuses one that replaces anything else).
-define(NIFS,
        [new/3, enter/2, release/3, leave/2, take_handed_over/1,
         resource_available/3, resource_unavailable/3, restore/2, restore_waiting/2,
         pass_on/3, status/1, line/1, queue/1, loads/1,
         parse_registration/1, parse_registration_json/1,
         render_register_ok/3, render_register_waiting/4, render_list/2,
         render_status/4, render_error/3,
         archive_open/2, archive_message/4, archive_sync/2, archive_read/2, render_archive/2,
         archive_status/1, archive_close/1,
         kept_open/1, kept_put/3, kept_delete/2, kept_replace_all/2, kept_sync/2, kept_all/1,
         kept_status/1, kept_close/1,
         ratelimit_new/1, ratelimit_allow/2, scram_keys/4]).

-export(?NIFS).
-nifs(?NIFS).

-on_load(load/0).

%% The desk of one helpdesk host: its agents, their visitors, the waiting
%% line and the wait estimate (native/clicktochat_core/src/desk.rs).
-type desk() :: reference().
-type routing() :: round_robin | least_busy.
%% The visitor's nodeprepped user part, and an agent's bare JID.
-type visitor() :: binary().
-type agent() :: binary().
%% Seconds; undefined when there is nothing yet to estimate from.
-type estimate() :: non_neg_integer() | undefined.
%% How many visitors left the line for an agent (the desk keeps who, for
%% take_handed_over/1); every visitor still waiting whose position
%% changed, in line order, with its new position and estimate.
-type changes() :: {HandedOver :: non_neg_integer(),
                    [{visitor(), Position :: pos_integer(), estimate()}]}.
-export_type([desk/0, routing/0, estimate/0, changes/0]).

load() ->
    Ebin = filename:dirname(code:which(?MODULE)),
    Library = filename:join([filename:dirname(Ebin), "priv", "clicktochat_nif"]),
    erlang:load_nif(Library, 0).

%% MaxWaiting 0: no line (a registration finding every agent busy is
%% refused, as without a line).
-spec new(pos_integer(), routing(), non_neg_integer()) -> desk().
new(_MaxSessions, _Routing, _MaxWaiting) -> not_loaded().

%% A new visitor: an agent if one is free and nobody waits, else a place in
%% line (a visitor already in line keeps its place); line_full past
%% MaxWaiting; no_agent_available when nobody takes visitors or there is no
%% line. The agent's name is a binary that points at the desk's own copy (and
%% keeps the desk alive while it lives): handed back to release/3 as it is,
%% it is found without hashing.
-spec enter(desk(), visitor()) ->
          {assigned, agent()} | {waiting, pos_integer(), estimate()}
              | line_full | no_agent_available.
enter(_Desk, _Visitor) -> not_loaded().

%% One of the agent's visitors has ended, after DurationMs (a sample for
%% the estimate) or none if unknown; the freed slot goes to the line's head.
%% Any binary with the agent's name will do; badarg for one that is no
%% agent's and not UTF-8.
-spec release(desk(), agent(), non_neg_integer() | none) -> {ok | not_assigned, changes()}.
release(_Desk, _Agent, _DurationMs) -> not_loaded().

%% A waiting visitor leaves the line (nothing happens if it is not in it).
-spec leave(desk(), visitor()) -> changes().
leave(_Desk, _Visitor) -> not_loaded().

%% The agent's resource is available: its free slots take from the line.
-spec resource_available(desk(), agent(), binary()) -> changes().
resource_available(_Desk, _Agent, _Resource) -> not_loaded().

%% The visitors the line handed a slot since the last call, each with its
%% agent, in the desk's order (line order), each once. The owner's server
%% takes them, whichever process's call handed them over: those processes'
%% messages to it may arrive in any order, the desk's order may not change.
-spec take_handed_over(desk()) -> [{visitor(), agent()}].
take_handed_over(_Desk) -> not_loaded().

-spec resource_unavailable(desk(), agent(), binary()) -> ok.
resource_unavailable(_Desk, _Agent, _Resource) -> not_loaded().

%% Counts a visitor already assigned to the agent (rebuild after a restart).
-spec restore(desk(), agent()) -> ok.
restore(_Desk, _Agent) -> not_loaded().

%% Puts a visitor that was waiting back in line, past MaxWaiting if need be
%% (rebuild after an owner takeover). It drains nothing: call it before the
%% agents' resource_available/3, whose changes say who was served.
-spec restore_waiting(desk(), visitor()) -> ok.
restore_waiting(_Desk, _Visitor) -> not_loaded().

%% answer_timeout: a slot of another agent than FromAgent (per the
%% routing) now counts the visitor; FromAgent's is released apart, with
%% release/3, once the visitor is handed over. none if no other agent is
%% free or the visitor is in line.
-spec pass_on(desk(), visitor(), agent()) -> {ok, agent()} | none.
pass_on(_Desk, _Visitor, _FromAgent) -> not_loaded().

%% Agents taking visitors (available presence), their free slots, the
%% line's length and a newcomer's estimate (0 when it would be served at
%% once). O(1).
-spec status(desk()) ->
          {non_neg_integer(), non_neg_integer(), non_neg_integer(), estimate()}.
status(_Desk) -> not_loaded().

%% The waiting visitors, head first, with their positions and estimates.
%% Dirty CPU.
-spec line(desk()) -> [{visitor(), pos_integer(), estimate()}].
line(_Desk) -> not_loaded().

%% The agents with a free slot, the next pick first. Dirty CPU.
-spec queue(desk()) -> [agent()].
queue(_Desk) -> not_loaded().

%% Every agent online or serving someone, with its load. Dirty CPU.
-spec loads(desk()) -> [{agent(), non_neg_integer()}].
loads(_Desk) -> not_loaded().

-spec parse_registration(binary()) -> {ok, binary(), binary()} | {error, atom()}.
parse_registration(_Body) -> not_loaded().

%% {"username": "...", "password": "..."}, with the limits and reasons of
%% parse_registration/1 (and bad_json, unexpected_field).
-spec parse_registration_json(binary()) -> {ok, binary(), binary()} | {error, atom()}.
parse_registration_json(_Body) -> not_loaded().

-type format() :: xml | json.

-spec render_register_ok(format(), binary(), binary()) -> binary().
render_register_ok(_Format, _From, _To) -> not_loaded().

-spec render_list(format(), [binary()]) -> binary().
render_list(_Format, _Usernames) -> not_loaded().

%% The 202 of a registration put in line (estimated_wait left out when
%% undefined).
-spec render_register_waiting(format(), binary(), pos_integer(), estimate()) -> binary().
render_register_waiting(_Format, _From, _Position, _Estimate) -> not_loaded().

%% GET /status: {AgentsAvailable, FreeSlots}, the waiting line's length and
%% a newcomer's estimate, as status/1 gives them (left out when undefined).
-spec render_status(format(), {non_neg_integer(), non_neg_integer()}, non_neg_integer(),
                    estimate()) -> binary().
render_status(_Format, _Availability, _Waiting, _Estimate) -> not_loaded().

-spec render_error(format(), atom() | binary(), atom() | binary()) -> binary().
render_error(_Format, _Root, _Reason) -> not_loaded().

-type archive() :: reference().
-type store() :: embedded | {riak, [binary()], binary()}.

%% Opens the redb file at Path (creating it) and starts the writer thread.
%% Dirty I/O.
-spec archive_open(binary(), store()) -> {ok, archive()} | {error, binary()}.
archive_open(_Path, _Store) -> not_loaded().

%% Bare JIDs of the conversation's visitor and agent, and when it started
%% (Unix µs): the caller owns the assignment and says which conversation a
%% message belongs to.
-type conversation() :: {Visitor :: binary(), Agent :: binary(), StartUs :: integer()}.
-type direction() :: from_visitor | from_agent.

%% Never blocks: hands the entry to the writer thread. The direction decides
%% the entry's from and to.
-spec archive_message(archive(), conversation(), direction(), binary()) -> recorded | closed.
archive_message(_Archive, _Conversation, _Direction, _Text) -> not_loaded().

%% Waits (up to TimeoutMs) until every entry handed over is committed. Dirty I/O.
-spec archive_sync(archive(), non_neg_integer()) -> ok | {error, binary()}.
archive_sync(_Archive, _TimeoutMs) -> not_loaded().

%% The agent's records in this node's archive, in their stored form (the
%% seed's term_to_binary([{record, [...]}])), and how many. Dirty I/O.
-spec archive_read(archive(), binary()) ->
          {ok, binary(), non_neg_integer()} | {error, binary()}.
archive_read(_Archive, _Agent) -> not_loaded().

%% What archive_read gave on each node, merged (a union), as XML, and how
%% many records. Dirty CPU.
-spec render_archive(binary(), [binary()]) ->
          {ok, binary(), non_neg_integer()} | {error, binary()}.
render_archive(_Agent, _Parts) -> not_loaded().

-spec archive_status(archive()) -> #{atom() => term()}.
archive_status(_Archive) -> not_loaded().

%% Commits what is pending, stops the writer, releases the file. Dirty I/O.
-spec archive_close(archive()) -> ok.
archive_close(_Archive) -> not_loaded().

%% The durable copy of one client host's visitor assignments
%% (clicktochat_assignments_keeper): rows of binaries, committed in batches
%% by a writer thread (native/clicktochat_core/src/kept.rs).
-type kept() :: reference().

%% Opens the redb file at Path (creating it) and starts the writer thread.
%% Dirty I/O.
-spec kept_open(binary()) -> {ok, kept()} | {error, binary()}.
kept_open(_Path) -> not_loaded().

%% Never block: hand the change to the writer thread ({error, _} once closed).
-spec kept_put(kept(), binary(), binary()) -> ok | {error, binary()}.
kept_put(_Kept, _Key, _Value) -> not_loaded().

-spec kept_delete(kept(), binary()) -> ok | {error, binary()}.
kept_delete(_Kept, _Key) -> not_loaded().

%% Every row replaced by these, in its turn among the changes. Dirty CPU.
-spec kept_replace_all(kept(), [{binary(), binary()}]) -> ok | {error, binary()}.
kept_replace_all(_Kept, _Rows) -> not_loaded().

%% Waits (up to TimeoutMs) until every change handed over is committed. Dirty I/O.
-spec kept_sync(kept(), non_neg_integer()) -> ok | {error, binary()}.
kept_sync(_Kept, _TimeoutMs) -> not_loaded().

%% The committed rows, in key order. Dirty I/O.
-spec kept_all(kept()) -> {ok, [{binary(), binary()}]} | {error, binary()}.
kept_all(_Kept) -> not_loaded().

-spec kept_status(kept()) -> #{atom() => term()}.
kept_status(_Kept) -> not_loaded().

%% Commits what is pending, stops the writer, releases the file. Dirty I/O.
-spec kept_close(kept()) -> ok.
kept_close(_Kept) -> not_loaded().

-type ratelimit() :: reference().

%% At most PerMinute registrations per address per minute (0: no limit).
-spec ratelimit_new(non_neg_integer()) -> ratelimit().
ratelimit_new(_PerMinute) -> not_loaded().

-spec ratelimit_allow(ratelimit(), binary()) -> boolean().
ratelimit_allow(_Limiter, _Address) -> not_loaded().

%% SCRAM's {StoredKey, ServerKey} (raw) of a password already normalised
%% (resourceprep), with its salt and iteration count (1 .. 1 048 576).
%% Dirty CPU: thousands of HMAC rounds.
-spec scram_keys(sha | sha256 | sha512, binary(), binary(), pos_integer()) ->
          {binary(), binary()}.
scram_keys(_Hash, _Password, _Salt, _Iterations) -> not_loaded().

not_loaded() ->
    erlang:nif_error({not_loaded, ?MODULE}).
