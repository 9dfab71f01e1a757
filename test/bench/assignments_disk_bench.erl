%%% The visitors' assignments on disk, two ways, in one VM (Mnesia and our
%%% NIF, no ejabberd): what the rest of the node feels while visitors come
%%% and go among N live ones.
%%%
%%%  - disc_copies: the table as it was, Mnesia's own disk copy. Mnesia logs
%%%    every change and, once a table's log reaches a quarter of its last
%%%    snapshot, writes the whole table anew (mnesia_log:ets2dcd, through
%%%    disk_log): O(N) every ~N/6 changes.
%%%  - kept rows: the table in memory (ram_copies) and its changes handed by
%%%    a subscriber to the NIF's writer thread (clicktochat_nif:kept_*), as
%%%    clicktochat_assignments_keeper does: redb, committed every 10 ms.
%%%
%%% Each phase: N live rows, then Steps steps at Rate a second, each a
%%% visitor arriving (a claim transaction, as clicktochat_assignments:claim/3)
%%% and the oldest leaving (a take transaction). Measured: the node's CPU a
%%% step (every thread of the VM: statistics(runtime)), each transaction's
%%% latency, and a probe process asking to wake every millisecond (how late
%%% it wakes: what any other process of the node waits), and how often the
%%% disc_copies snapshot was rewritten. Phases in the order A B B A per N.
%%%
%%%   erl -noshell -pa ebin -pa _build/bench -run assignments_disk_bench main Dir Json
-module(assignments_disk_bench).

-export([main/1]).

-record(visitor, {us, agent, registered_at, assigned_at, answer}).

-define(RATE, 4000).
%% {live rows, steps}: enough steps for two snapshots of the disc table.
-define(SIZES, [{10000, 6000}, {100000, 36000}]).
-define(HOST, <<"clients.localhost">>).

main([Dir, Json]) ->
    %% Loaded (with its NIF) from the code path before leaving the tree.
    {module, clicktochat_nif} = code:ensure_loaded(clicktochat_nif),
    ok = file:set_cwd(Dir),
    logger:set_primary_config(level, error),
    ok = mnesia:create_schema([node()]),
    ok = mnesia:start(),
    Phases = [phase(Way, N, Steps) || {N, Steps} <- ?SIZES,
                                      Way <- [disc_copies, kept_rows, kept_rows, disc_copies]],
    Result = #{rate_per_s => ?RATE, phases => Phases,
               taken_at => list_to_atom(calendar:system_time_to_rfc3339(
                                          erlang:system_time(second), [{offset, "Z"}])),
               command => 'make bench (test/bench/assignments_disk_bench.erl)',
               mnesia_dc_dump_limit => mnesia:system_info(dc_dump_limit),
               mnesia_dump_log_write_threshold => mnesia:system_info(dump_log_write_threshold)},
    ok = file:write_file(Json, json(Result)),
    [io:format("~-11s ~6B rows: ~5.1f us CPU a step, transaction p99 ~6B us max ~7B us, "
               "probe late p99 ~6B us max ~7B us, snapshots ~B~n",
               [W, N, Cpu, TP99, TMax, PP99, PMax, Snapshots])
     || #{way := W, rows := N, cpu_us_per_step := Cpu, snapshots := Snapshots,
          transaction_us := #{p99 := TP99, max := TMax},
          probe_late_us := #{p99 := PP99, max := PMax}} <- Phases],
    halt(0).

phase(Way, N, Steps) ->
    Tab = list_to_atom("bench_" ++ atom_to_list(Way)),
    {Kept, Keeper} = setup(Way, Tab, N),
    %% The setup's copies of the table (the file's rows) are garbage now: not
    %% collected in the middle of a timed transaction.
    true = erlang:garbage_collect(),
    Dcl = filename:join(mnesia:system_info(directory), atom_to_list(Tab) ++ ".DCL"),
    Probe = spawn_link(fun() -> probe([]) end),
    {Cpu0, _} = statistics(runtime),
    Start = erlang:monotonic_time(microsecond),
    {Latencies, Snapshots} = steps(Tab, N, {1, Steps}, Start, {Dcl, filelib:file_size(Dcl)},
                                   [], 0),
    {Cpu1, _} = statistics(runtime),
    Probe ! {stop, self()},
    Late = receive {probe, L} -> L end,
    teardown(Way, Tab, Kept, Keeper),
    #{way => Way, rows => N, steps => Steps,
      seconds => (erlang:monotonic_time(microsecond) - Start) / 1.0e6,
      cpu_us_per_step => (Cpu1 - Cpu0) * 1000 / Steps,
      transaction_us => percentiles(Latencies), probe_late_us => percentiles(Late),
      snapshots => Snapshots}.

%% N live rows, committed to disk before the phase starts.
setup(disc_copies, Tab, N) ->
    create(Tab, disc_copies),
    fill(Tab, N),
    dumped = mnesia:dump_log(),
    mnesia_controller:snapshot_dcd([Tab]),
    {none, none};
setup(kept_rows, Tab, N) ->
    create(Tab, ram_copies),
    {ok, Kept} = clicktochat_nif:kept_open(
                   list_to_binary(filename:absname("bench_kept_rows.redb"))),
    fill(Tab, N),
    ok = clicktochat_nif:kept_replace_all(
           Kept, [{element(1, R#visitor.us), term_to_binary(R)}
                  || R <- ets:tab2list(Tab)]),
    ok = clicktochat_nif:kept_sync(Kept, 60000),
    Parent = self(),
    Keeper = spawn_link(fun() ->
                                {ok, _} = mnesia:subscribe({table, Tab, simple}),
                                Parent ! subscribed,
                                keep(Kept)
                        end),
    receive subscribed -> ok end,
    {Kept, Keeper}.

create(Tab, Type) ->
    {atomic, ok} = mnesia:create_table(Tab, [{Type, [node()]}, {record_name, visitor},
                                             {attributes, record_info(fields, visitor)}]).

fill(Tab, N) ->
    [mnesia:dirty_write(Tab, visitor(I)) || I <- lists:seq(1, N)],
    ok.

key(I) ->
    {<<"visitor", (integer_to_binary(I))/binary>>, ?HOST}.

visitor(I) ->
    Now = erlang:system_time(millisecond),
    #visitor{us = key(I),
             agent = <<"agent1@helpdesk.localhost">>, registered_at = Now,
             assigned_at = Now, answer = unasked}.

%% clicktochat_assignments_keeper's work: each change to the writer thread.
%% (A table's events carry its name where its records have their own.)
keep(Kept) ->
    receive
        {mnesia_table_event, {write, R, _}} ->
            {LUser, _} = element(#visitor.us, R),
            ok = clicktochat_nif:kept_put(Kept, LUser, term_to_binary(R)),
            keep(Kept);
        {mnesia_table_event, {delete, {_Tab, {LUser, _}}, _}} ->
            ok = clicktochat_nif:kept_delete(Kept, LUser),
            keep(Kept);
        {sync, From} ->
            From ! {synced, clicktochat_nif:kept_sync(Kept, 60000)},
            keep(Kept);
        stop -> ok
    end.

teardown(disc_copies, Tab, none, none) ->
    {atomic, ok} = mnesia:delete_table(Tab);
teardown(kept_rows, Tab, Kept, Keeper) ->
    Keeper ! {sync, self()},
    receive {synced, ok} -> ok end,
    Keeper ! stop,
    clicktochat_nif:kept_close(Kept),
    {atomic, ok} = mnesia:delete_table(Tab),
    ok = file:delete("bench_kept_rows.redb").

%% Step I (from 1): visitor N + I arrives, visitor I leaves, on schedule.
steps(_Tab, _N, {I, Steps}, _Start, _Dcl, Latencies, Snapshots) when I > Steps ->
    {Latencies, Snapshots};
steps(Tab, N, {I, Steps}, Start, {Dcl, DclSize}, Latencies, Snapshots) ->
    wait_until(Start + I * 1000000 div ?RATE),
    {Claim, {atomic, ok}} = timer:tc(fun() -> claim(Tab, visitor(N + I)) end),
    {Take, {atomic, ok}} = timer:tc(fun() -> take(Tab, key(I)) end),
    %% The snapshot was rewritten when the table's log file starts again.
    Size = case I rem 100 of 0 -> filelib:file_size(Dcl); _ -> DclSize end,
    steps(Tab, N, {I + 1, Steps}, Start, {Dcl, Size}, [Claim, Take | Latencies],
          Snapshots + case Size < DclSize of true -> 1; false -> 0 end).

claim(Tab, #visitor{us = Key} = R) ->
    mnesia:transaction(fun() -> [] = mnesia:read(Tab, Key, write), mnesia:write(Tab, R, write) end).

take(Tab, Key) ->
    mnesia:transaction(fun() -> [_] = mnesia:read(Tab, Key, write), mnesia:delete(Tab, Key, write) end).

wait_until(T) ->
    case T - erlang:monotonic_time(microsecond) of
        Wait when Wait > 1000 -> timer:sleep(Wait div 1000), wait_until(T);
        _ -> ok
    end.

%% Asks to wake every millisecond; keeps how late each wake-up was.
probe(Late) ->
    T0 = erlang:monotonic_time(microsecond),
    receive
        {stop, From} -> From ! {probe, Late}
    after 1 ->
            probe([max(0, erlang:monotonic_time(microsecond) - T0 - 1000) | Late])
    end.

percentiles(Values) ->
    Sorted = list_to_tuple(lists:sort(Values)),
    Size = tuple_size(Sorted),
    At = fun(Share) -> element(max(1, min(Size, round(Share * Size))), Sorted) end,
    #{p50 => At(0.5), p99 => At(0.99), p999 => At(0.999), max => At(1.0), count => Size}.

json(Map) when is_map(Map) ->
    ["{", lists:join(",", [["\"", atom_to_list(K), "\":", json(V)]
                           || {K, V} <- lists:sort(maps:to_list(Map))]), "}"];
json(List) when is_list(List) -> ["[", lists:join(",", [json(V) || V <- List]), "]"];
json(A) when is_atom(A) -> ["\"", atom_to_list(A), "\""];
json(N) when is_integer(N) -> integer_to_list(N);
json(F) when is_float(F) -> float_to_list(F, [{decimals, 3}]).
