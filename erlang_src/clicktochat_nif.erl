%%% clicktochat_nif: the Erlang face of the Rust NIF (native/clicktochat_nif).
%%%
%%% Every function here is replaced by its native implementation when the
%%% module loads; the bodies only run if the library could not be loaded.
%%% The library is looked up in the `priv' directory beside this module's
%%% `ebin' (ejabberd's contrib layout and the build tree alike).
-module(clicktochat_nif).

-export([new/1, set_max_sessions/2, resource_available/3, resource_unavailable/3,
         pick/1, release/2, restore/2, queue/1, loads/1,
         parse_registration/1, render_register_ok/2, render_list/1, render_error/2]).

-on_load(load/0).

-type rotation() :: reference().
-export_type([rotation/0]).

-nifs([new/1, set_max_sessions/2, resource_available/3, resource_unavailable/3,
       pick/1, release/2, restore/2, queue/1, loads/1,
       parse_registration/1, render_register_ok/2, render_list/1, render_error/2]).

load() ->
    Ebin = filename:dirname(code:which(?MODULE)),
    Library = filename:join([filename:dirname(Ebin), "priv", "clicktochat_nif"]),
    erlang:load_nif(Library, 0).

-spec new(pos_integer()) -> rotation().
new(_MaxSessions) -> not_loaded().

-spec set_max_sessions(rotation(), pos_integer()) -> ok.
set_max_sessions(_Rotation, _MaxSessions) -> not_loaded().

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

-spec queue(rotation()) -> [binary()].
queue(_Rotation) -> not_loaded().

-spec loads(rotation()) -> [{binary(), non_neg_integer()}].
loads(_Rotation) -> not_loaded().

-spec parse_registration(binary()) -> {ok, binary(), binary()} | {error, atom()}.
parse_registration(_Body) -> not_loaded().

-spec render_register_ok(binary(), binary()) -> binary().
render_register_ok(_From, _To) -> not_loaded().

-spec render_list([binary()]) -> binary().
render_list(_Usernames) -> not_loaded().

-spec render_error(atom() | binary(), atom() | binary()) -> binary().
render_error(_Root, _Reason) -> not_loaded().

not_loaded() ->
    erlang:nif_error({not_loaded, ?MODULE}).
