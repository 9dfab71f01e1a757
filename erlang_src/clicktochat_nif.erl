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
        [new/1, resource_available/3, resource_unavailable/3,
         pick/1, release/2, restore/2, availability/1, queue/1, loads/1,
         parse_registration/1, parse_registration_json/1,
         render_register_ok/3, render_list/2, render_status/3, render_error/3,
         archive_open/2, archive_message/4, archive_sync/2, archive_read/2, render_archive/2,
         archive_status/1, archive_close/1,
         ratelimit_new/1, ratelimit_allow/2]).

-export(?NIFS).
-nifs(?NIFS).

-on_load(load/0).

-type rotation() :: reference().
-export_type([rotation/0]).

load() ->
    Ebin = filename:dirname(code:which(?MODULE)),
    Library = filename:join([filename:dirname(Ebin), "priv", "clicktochat_nif"]),
    erlang:load_nif(Library, 0).

-spec new(pos_integer()) -> rotation().
new(_MaxSessions) -> not_loaded().

-spec resource_available(rotation(), binary(), binary()) -> ok.
resource_available(_Rotation, _Agent, _Resource) -> not_loaded().

-spec resource_unavailable(rotation(), binary(), binary()) -> ok.
resource_unavailable(_Rotation, _Agent, _Resource) -> not_loaded().

%% The head agent with a free slot, moved to the tail.
-spec pick(rotation()) -> {ok, binary()} | none.
pick(_Rotation) -> not_loaded().

%% One of the agent's visitors has ended.
-spec release(rotation(), binary()) -> ok | not_assigned.
release(_Rotation, _Agent) -> not_loaded().

%% Counts a visitor already assigned to the agent (rebuild after a restart).
-spec restore(rotation(), binary()) -> ok.
restore(_Rotation, _Agent) -> not_loaded().

%% Agents taking visitors (available presence) and their free slots. O(1).
-spec availability(rotation()) -> {non_neg_integer(), non_neg_integer()}.
availability(_Rotation) -> not_loaded().

-spec queue(rotation()) -> [binary()].
queue(_Rotation) -> not_loaded().

-spec loads(rotation()) -> [{binary(), non_neg_integer()}].
loads(_Rotation) -> not_loaded().

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

%% GET /status: availability/1's answer and the waiting line's length.
-spec render_status(format(), {non_neg_integer(), non_neg_integer()}, non_neg_integer()) ->
          binary().
render_status(_Format, _Availability, _Waiting) -> not_loaded().

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

-type ratelimit() :: reference().

%% At most PerMinute registrations per address per minute (0: no limit).
-spec ratelimit_new(non_neg_integer()) -> ratelimit().
ratelimit_new(_PerMinute) -> not_loaded().

-spec ratelimit_allow(ratelimit(), binary()) -> boolean().
ratelimit_allow(_Limiter, _Address) -> not_loaded().

not_loaded() ->
    erlang:nif_error({not_loaded, ?MODULE}).
