%%% The read path of a visitor's assignment, which the stanza guard and the
%%% archive capture take once per stanza: what clicktochat_assignments does
%%% (mnesia:dirty_read on the local replica of a ram_copies table) against
%%% the floor (ets:lookup on the same table's ETS) and a transaction (what a
%%% design reading inside mnesia:transaction would pay). Run with
%%% `make bench-scale`; prints ns per lookup and ratios, hits and misses mixed.
-module(assignment_bench).

-export([main/1]).

-record(clicktochat_visitor, {us, agent, registered_at, assigned_at, answer}).

main(Args) ->
    {Visitors, Lookups} = case Args of
                              [V, L] -> {list_to_integer(V), list_to_integer(L)};
                              [] -> {100000, 1000000}
                          end,
    logger:set_primary_config(level, error),
    Dir = "/tmp/clicktochat-assignment-bench-" ++ os:getpid(),
    ok = application:set_env(mnesia, dir, Dir),
    ok = mnesia:create_schema([node()]),
    ok = mnesia:start(),
    {atomic, ok} = mnesia:create_table(clicktochat_visitor,
                                       [{ram_copies, [node()]},
                                        {attributes, record_info(fields, clicktochat_visitor)}]),
    ok = mnesia:wait_for_tables([clicktochat_visitor], 30000),
    Host = <<"clients.example.com">>,
    [ok = mnesia:dirty_write(#clicktochat_visitor{us = {user(I), Host},
                                                  agent = <<"agent@helpdesk.example.com">>,
                                                  registered_at = I, assigned_at = I,
                                                  answer = answered})
     || I <- lists:seq(1, Visitors)],
    %% Half the keys exist (visitors), half do not (a bystander's stanzas).
    Keys = list_to_tuple([{user(rand:uniform(2 * Visitors)), Host} || _ <- lists:seq(1, 1000)]),
    Ways = [{dirty_read, fun(K) -> mnesia:dirty_read(clicktochat_visitor, K) end},
            {ets_lookup, fun(K) -> ets:lookup(clicktochat_visitor, K) end},
            {transaction, fun(K) -> mnesia:transaction(
                                      fun() -> mnesia:read(clicktochat_visitor, K) end) end}],
    io:format("~b visitors, ~b lookups a way, interleaved twice~n", [Visitors, Lookups]),
    Results = [{Name, time(Fun, Keys, Lookups)} || _ <- [1, 2], {Name, Fun} <- Ways],
    Best = fun(Name) -> lists:min([T || {N, T} <- Results, N == Name]) end,
    Floor = Best(ets_lookup),
    [io:format("~-12s ~7.1f ns/lookup  ~5.2fx the ets floor~n",
               [Name, Best(Name), Best(Name) / Floor]) || {Name, _} <- Ways],
    mnesia:stop(),
    os:cmd("rm -rf " ++ Dir),
    halt(0).

user(I) -> <<"visitor", (integer_to_binary(I))/binary>>.

time(Fun, Keys, Lookups) ->
    N = tuple_size(Keys),
    {Micros, ok} = timer:tc(fun() -> loop(Fun, Keys, N, Lookups) end),
    Micros * 1000 / Lookups.

loop(_Fun, _Keys, _N, 0) -> ok;
loop(Fun, Keys, N, I) ->
    Fun(element(1 + I rem N, Keys)),
    loop(Fun, Keys, N, I - 1).
