%%% The desk's hot path (a visitor gets an agent, its chat ends: enter +
%%% release) measured in one run, in two parts.
%%%
%%% 1. One client process, ns per enter + release pair, at several numbers of
%%%    agents (each with more capacity than the run can use), every variant
%%%    run once per round and the rounds interleaved (A B C ... A B C ...), so
%%%    that a slower spell of this shared machine hits every variant alike;
%%%    the median of the rounds counts:
%%%      floor       - a C NIF that does nothing (floor_nif.c), called the
%%%                    same way (enter/2, then release/3): what any NIF pair
%%%                    costs from this loop, the loop included;
%%%      nif         - clicktochat_nif:enter + release, called directly (what
%%%                    mod_http_clicktochat does on the rotation's owner), for
%%%                    both routings, at 10, 1 000 and 100 000 agents;
%%%      gen_server  - the obvious Erlang design, and the original project's:
%%%                    one gen_server owning a queue of agents and their
%%%                    loads (100 agents; its cost does not depend on them).
%%% 2. The existing comparison from 8 concurrent client processes (100
%%%    agents), pairs per second, the better of two runs:
%%%      nif, gen_server as above;
%%%      owner       - clicktochat_rotation:enter/release on the node that owns
%%%                    the rotation (one instance lookup per request, then the
%%%                    same NIF calls): what running in a cluster costs a lone
%%%                    node;
%%%      nif_server  - the same NIF behind a gen_server: the process hop alone.
%%%
%%% Prints a table and ratios, and writes every figure as JSON (per variant:
%%% the median, min, max and each round's ns a pair; per routing the figures
%%% by agent count, for a scaling plot) to the path given as the first
%%% argument, else $ROTATION_BENCH_JSON, else _build/bench/rotation.json.
%%% $ROTATION_BENCH_LABEL, if set, is copied into the JSON (e.g. "before").
%%% Run with `make bench` (about half a minute).
-module(rotation_bench).
-behaviour(gen_server).

-export([main/1]).
-export([init/1, handle_call/3, handle_cast/2]).

-include("clicktochat.hrl").

-define(MAX_SESSIONS, 1000000).
%% The visitor's name only matters to the waiting line, which is off here.
-define(VISITOR, <<"visitor">>).
-define(AGENT_COUNTS, [10, 1000, 100000]).
-define(ROUTINGS, [round_robin, least_busy]).
-define(GEN_SERVER_AGENTS, 100).
-define(ROUNDS, 15).
%% Each sample runs about this long.
-define(SAMPLE_MS, 150).
%% Part 2.
-define(CLIENTS, 8).
-define(CONCURRENT_PAIRS, 50000).
-define(CONCURRENT_AGENTS, 100).

main(Args) ->
    Json = case Args of
               [Path | _] -> Path;
               [] -> os:getenv("ROTATION_BENCH_JSON", "_build/bench/rotation.json")
           end,
    {module, floor_nif} = code:ensure_loaded(floor_nif),
    Single = single_client(),
    Concurrent = concurrent(),
    ok = filelib:ensure_dir(Json),
    ok = file:write_file(Json, [json(report(Single, Concurrent)), $\n]),
    io:format("figures written to ~s~n", [Json]),
    halt(0).

%%%===================================================================
%%% Part 1: one client, interleaved rounds
%%%===================================================================
single_client() ->
    Desks = [{{nif, Routing, N}, desk(Routing, N)} || Routing <- ?ROUTINGS, N <- ?AGENT_COUNTS],
    {ok, Queue} = gen_server:start(?MODULE, {queue, agents(?GEN_SERVER_AGENTS)}, []),
    Variants = [{floor, fun(Pairs) -> floor_loop(none, Pairs) end}]
        ++ [{Key, fun(Pairs) -> nif_loop(Desk, Pairs) end} || {Key, Desk} <- Desks]
        ++ [{gen_server, fun(Pairs) -> server_loop(Queue, Pairs) end}],
    io:format("enter + release from 1 client process, ~b interleaved rounds of ~b ms, "
              "~b schedulers~n", [?ROUNDS, ?SAMPLE_MS, erlang:system_info(schedulers_online)]),
    %% A first short run warms each variant up and sizes its samples.
    Sized = [{Key, Fun, pairs_for(sample(Fun, 20000))} || {Key, Fun} <- Variants],
    Rounds = [[{Key, sample(Fun, Pairs)} || {Key, Fun, Pairs} <- Sized]
              || _ <- lists:seq(1, ?ROUNDS)],
    Samples = [{Key, [proplists:get_value(Key, Round) || Round <- Rounds]}
               || {Key, _} <- Variants],
    gen_server:stop(Queue),
    Samples.

%% ns a pair, from a fresh process (the same heap for every variant).
sample(Fun, Pairs) ->
    Parent = self(),
    Pid = spawn_link(fun() ->
                             Start = erlang:monotonic_time(nanosecond),
                             Fun(Pairs),
                             Ns = erlang:monotonic_time(nanosecond) - Start,
                             Parent ! {self(), Ns / Pairs}
                     end),
    receive {Pid, NsPerPair} -> NsPerPair end.

pairs_for(NsPerPair) -> max(1000, round(?SAMPLE_MS * 1.0e6 / NsPerPair)).

floor_loop(_Desk, 0) -> ok;
floor_loop(Desk, N) ->
    ok = floor_nif:enter(Desk, ?VISITOR),
    ok = floor_nif:release(Desk, ?VISITOR, none),
    floor_loop(Desk, N - 1).

nif_loop(_Desk, 0) -> ok;
nif_loop(Desk, N) ->
    {assigned, Agent} = clicktochat_nif:enter(Desk, ?VISITOR),
    {ok, {0, Moved}} = clicktochat_nif:release(Desk, Agent, none),
    %% Checked apart: a pattern with no variable in it (`{ok, {0, []}}`)
    %% compiles to one comparison with a literal term, a call of the VM's
    %% general term comparison (6% of a pair in perf, ~15 ns): the loop's
    %% cost, not the desk's. Field by field, as the module matches it.
    [] = Moved,
    nif_loop(Desk, N - 1).

server_loop(_Server, 0) -> ok;
server_loop(Server, N) ->
    {ok, Agent} = gen_server:call(Server, pick),
    ok = gen_server:call(Server, {release, Agent}),
    server_loop(Server, N - 1).

%%%===================================================================
%%% Part 2: concurrent clients (the README's table)
%%%===================================================================
concurrent() ->
    Agents = agents(?CONCURRENT_AGENTS),
    Rotation = desk(round_robin, ?CONCURRENT_AGENTS),
    Nif = fun() -> {assigned, A} = clicktochat_nif:enter(Rotation, ?VISITOR),
                   {ok, {0, Moved}} = clicktochat_nif:release(Rotation, A, none),
                   [] = Moved end,
    ClientHost = <<"clients.example.com">>,
    clicktochat_instance:publish(#instance{client_host = ClientHost,
                                           helpdesk_host = <<"helpdesk.example.com">>,
                                           rotation = Rotation, owner = node()}),
    %% As the module does: the request looks its instance up once.
    Owner = fun() -> Instance = clicktochat_instance:of_client_host(ClientHost),
                     {assigned, A} = clicktochat_rotation:enter(Instance, ?VISITOR),
                     ok = clicktochat_rotation:release(Instance, A, none) end,
    {ok, Queue} = gen_server:start(?MODULE, {queue, Agents}, []),
    Server = fun() -> {ok, A} = gen_server:call(Queue, pick),
                      ok = gen_server:call(Queue, {release, A}) end,
    {ok, NifServer} = gen_server:start(?MODULE, {nif, ?CONCURRENT_AGENTS}, []),
    Wrapped = fun() -> {ok, A} = gen_server:call(NifServer, pick),
                       ok = gen_server:call(NifServer, {release, A}) end,
    Results = [{Name, run(Fun, ?CLIENTS, ?CONCURRENT_PAIRS)}
               || _ <- [1, 2],
                  {Name, Fun} <- [{nif, Nif}, {owner, Owner}, {gen_server, Server},
                                  {nif_server, Wrapped}]],
    %% Each is run twice; the better run counts (the first warms up).
    [{Name, lists:max([R || {N, R} <- Results, N == Name])}
     || Name <- [nif, owner, gen_server, nif_server]].

%% Pairs per second over all clients.
run(Fun, Clients, Pairs) ->
    Parent = self(),
    Start = erlang:monotonic_time(),
    Pids = [spawn_link(fun() -> loop(Fun, Pairs), Parent ! {done, self()} end)
            || _ <- lists:seq(1, Clients)],
    [receive {done, Pid} -> ok end || Pid <- Pids],
    Seconds = erlang:convert_time_unit(erlang:monotonic_time() - Start, native, microsecond) / 1.0e6,
    Clients * Pairs / Seconds.

loop(_Fun, 0) -> ok;
loop(Fun, N) -> Fun(), loop(Fun, N - 1).

%%%===================================================================
%%% Desks, the gen_server alternatives
%%%===================================================================
agents(N) ->
    [iolist_to_binary(["agent", integer_to_list(I), "@helpdesk.example.com"])
     || I <- lists:seq(1, N)].

desk(Routing, N) ->
    Desk = clicktochat_nif:new(?MAX_SESSIONS, Routing, 0),
    [clicktochat_nif:resource_available(Desk, A, <<"desk">>) || A <- agents(N)],
    Desk.

init({queue, Agents}) ->
    {ok, {queue:from_list(Agents), maps:from_list([{A, 0} || A <- Agents])}};
init({nif, N}) ->
    {ok, {nif, desk(round_robin, N)}}.

handle_call(pick, _From, {nif, R} = State) ->
    {assigned, A} = clicktochat_nif:enter(R, ?VISITOR),
    {reply, {ok, A}, State};
handle_call({release, A}, _From, {nif, R} = State) ->
    {ok, _Changes} = clicktochat_nif:release(R, A, none),
    {reply, ok, State};
handle_call(pick, _From, {Queue, Loads}) ->
    case queue:out(Queue) of
        {{value, A}, Rest} ->
            Load = maps:get(A, Loads) + 1,
            Queue1 = if Load < ?MAX_SESSIONS -> queue:in(A, Rest); true -> Rest end,
            {reply, {ok, A}, {Queue1, Loads#{A := Load}}};
        {empty, _} ->
            {reply, none, {Queue, Loads}}
    end;
handle_call({release, A}, _From, {Queue, Loads}) ->
    Load = maps:get(A, Loads),
    Queue1 = if Load == ?MAX_SESSIONS -> queue:in(A, Queue); true -> Queue end,
    {reply, ok, {Queue1, Loads#{A := Load - 1}}}.

handle_cast(_, State) -> {noreply, State}.

%%%===================================================================
%%% The report: printed, and as JSON
%%%===================================================================
report(Single, Concurrent) ->
    Stats = [{Key, stats(Samples)} || {Key, Samples} <- Single],
    Median = fun(Key) -> maps:get(median, proplists:get_value(Key, Stats)) end,
    Floor = Median(floor),
    Server = Median(gen_server),
    io:format("~-44s ~9s ~15s ~9s ~12s~n",
              ["ns per enter + release (median)", "ns", "min..max", "x floor",
               "gen_server/x"]),
    Line = fun(Label, Key) ->
                   #{median := M, min := Min, max := Max} = proplists:get_value(Key, Stats),
                   io:format("~-44s ~9.1f ~15s ~9.2f ~12.1f~n",
                             [Label, M, io_lib:format("~b..~b", [round(Min), round(Max)]), M / Floor,
                              Server / M])
           end,
    Line("NIF floor (2 NIFs that do nothing)", floor),
    [Line(io_lib:format("direct NIF, ~w, ~b agents", [Routing, N]), {nif, Routing, N})
     || Routing <- ?ROUTINGS, N <- ?AGENT_COUNTS],
    Line(io_lib:format("gen_server + Erlang queue, ~b agents", [?GEN_SERVER_AGENTS]), gen_server),
    Growth = [{Routing, Median({nif, Routing, lists:last(?AGENT_COUNTS)})
               / Median({nif, Routing, hd(?AGENT_COUNTS)})} || Routing <- ?ROUTINGS],
    [io:format("~w: ~b agents / ~b agents = ~.2f~n",
               [Routing, lists:last(?AGENT_COUNTS), hd(?AGENT_COUNTS), G])
     || {Routing, G} <- Growth],
    NifConcurrent = proplists:get_value(nif, Concurrent),
    io:format("~b client processes x ~b pairs, ~b agents (round_robin):~n",
              [?CLIENTS, ?CONCURRENT_PAIRS, ?CONCURRENT_AGENTS]),
    [io:format("  ~-11w ~10w pairs/s  ~8.2f us/pair  nif is ~.1fx faster~n",
               [Name, round(Rate), 1.0e6 / Rate * ?CLIENTS, NifConcurrent / Rate])
     || {Name, Rate} <- Concurrent],
    Label = case os:getenv("ROTATION_BENCH_LABEL") of
                false -> null;
                L -> list_to_binary(L)
            end,
    #{bench => <<"rotation">>,
      label => Label,
      date => list_to_binary(calendar:system_time_to_rfc3339(erlang:system_time(second))),
      otp_release => list_to_binary(erlang:system_info(otp_release)),
      schedulers => erlang:system_info(schedulers_online),
      unit => <<"ns per enter + release pair, 1 client process">>,
      rounds => ?ROUNDS,
      sample_ms => ?SAMPLE_MS,
      floor => (proplists:get_value(floor, Stats))#{ns_per_call => Floor / 2},
      gen_server => (proplists:get_value(gen_server, Stats))#{agents => ?GEN_SERVER_AGENTS},
      nif => maps:from_list(
               [{Routing, [(proplists:get_value({nif, Routing, N}, Stats))#{agents => N}
                           || N <- ?AGENT_COUNTS]}
                || Routing <- ?ROUTINGS]),
      ratios => maps:from_list(
                  [{Routing,
                    [#{agents => N,
                       gen_server_over_nif => Server / Median({nif, Routing, N}),
                       nif_over_floor => Median({nif, Routing, N}) / Floor}
                     || N <- ?AGENT_COUNTS]}
                   || Routing <- ?ROUTINGS]),
      growth => maps:from_list([{Routing, #{from_agents => hd(?AGENT_COUNTS),
                                            to_agents => lists:last(?AGENT_COUNTS),
                                            ratio => G}}
                                || {Routing, G} <- Growth]),
      concurrent => #{clients => ?CLIENTS, agents => ?CONCURRENT_AGENTS,
                      pairs_per_client => ?CONCURRENT_PAIRS,
                      pairs_per_s => maps:from_list(Concurrent)}}.

stats(Samples) ->
    Sorted = lists:sort(Samples),
    #{median => lists:nth((length(Sorted) + 1) div 2, Sorted),
      min => hd(Sorted), max => lists:last(Sorted), samples => Samples}.

%% Enough JSON for the report: maps with atom keys, lists, numbers, binaries,
%% null.
json(null) -> "null";
json(Map) when is_map(Map) ->
    Fields = [[json(atom_to_binary(K)), $:, json(V)] || {K, V} <- lists:sort(maps:to_list(Map))],
    [${, lists:join($,, Fields), $}];
json(List) when is_list(List) -> [$[, lists:join($,, [json(V) || V <- List]), $]];
json(N) when is_integer(N) -> integer_to_list(N);
json(F) when is_float(F) -> float_to_list(F, [{decimals, 3}, compact]);
json(Bin) when is_binary(Bin) -> [$", escape(Bin), $"].

escape(Bin) ->
    [case C of
         $" -> "\\\"";
         $\\ -> "\\\\";
         C when C < 16#20 -> io_lib:format("\\u~4.16.0b", [C]);
         C -> C
     end || <<C>> <= Bin].
