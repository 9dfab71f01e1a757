%%% The NIF floor (floor_nif.c): two NIFs that do nothing, with the names
%%% and arities of the desk's enter/2 and release/3, for rotation_bench.
%%% The library is looked up beside this module's beam (_build/bench).
-module(floor_nif).

-export([enter/2, release/3]).
-nifs([enter/2, release/3]).

-on_load(load/0).

load() ->
    Dir = filename:dirname(code:which(?MODULE)),
    erlang:load_nif(filename:join(Dir, "floor_nif"), 0).

enter(_Desk, _Visitor) -> erlang:nif_error(not_loaded).

release(_Desk, _Agent, _DurationMs) -> erlang:nif_error(not_loaded).
