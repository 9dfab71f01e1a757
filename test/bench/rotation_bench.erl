%%% The rotation's hot path (pick an agent, release it) measured three ways
%%% in one run, from the same concurrent client processes:
%%%   nif         - clicktochat_nif called directly by each process (what
%%%                 mod_http_clicktochat does);
%%%   gen_server  - the obvious Erlang design, and the original project's: one
%%%                 gen_server owning a queue of agents and their loads;
%%%   nif_server  - the same NIF behind a gen_server, to show the cost of
%%%                 the process hop alone;
%%%   owner       - clicktochat_rotation:enter/release on the node that owns
%%%                 the rotation (what the module does since it runs in a
%%%                 cluster: one instance lookup per request, then the same NIF
%%%                 calls),
%%%                 to show what that costs a lone node.
%%% Run with `make bench` (prints ops/s and ratios).
-module(rotation_bench).
-behaviour(gen_server).

-export([main/1]).
-export([init/1, handle_call/3, handle_cast/2]).

-include("clicktochat.hrl").

-define(AGENTS, 100).
-define(MAX_SESSIONS, 1000000).
%% The visitor's name only matters to the waiting line, which is off here.
-define(VISITOR, <<"visitor">>).

main(Args) ->
    {Clients, Pairs} = case Args of
                           [C, P] -> {list_to_integer(C), list_to_integer(P)};
                           [] -> {8, 50000}
                       end,
    Agents = [iolist_to_binary(["agent", integer_to_list(I), "@helpdesk.example.com"])
              || I <- lists:seq(1, ?AGENTS)],
    Rotation = clicktochat_nif:new(?MAX_SESSIONS, round_robin, 0),
    [clicktochat_nif:resource_available(Rotation, A, <<"desk">>) || A <- Agents],
    Nif = fun() -> {assigned, A} = clicktochat_nif:enter(Rotation, ?VISITOR),
                   {ok, {[], []}} = clicktochat_nif:release(Rotation, A, none) end,
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
    {ok, NifServer} = gen_server:start(?MODULE, {nif, Agents}, []),
    Wrapped = fun() -> {ok, A} = gen_server:call(NifServer, pick),
                       ok = gen_server:call(NifServer, {release, A}) end,
    io:format("~b client processes x ~b pick+release pairs, ~b agents, ~b schedulers~n",
              [Clients, Pairs, ?AGENTS, erlang:system_info(schedulers_online)]),
    Results = [{Name, run(Fun, Clients, Pairs)}
               || _ <- [1, 2],
                  {Name, Fun} <- [{nif, Nif}, {owner, Owner}, {gen_server, Server},
                                  {nif_server, Wrapped}]],
    %% Each is run twice; the better run counts (the first warms up).
    Best = [{Name, lists:max([R || {N, R} <- Results, N == Name])}
            || Name <- [nif, owner, gen_server, nif_server]],
    NifRate = proplists:get_value(nif, Best),
    [io:format("~-11w ~10w pairs/s  ~8.2f us/pair  nif is ~.1fx faster~n",
               [Name, round(Rate), 1.0e6 / Rate * Clients, NifRate / Rate])
     || {Name, Rate} <- Best],
    halt(0).

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

%% The gen_server alternatives.
init({queue, Agents}) ->
    {ok, {queue:from_list(Agents), maps:from_list([{A, 0} || A <- Agents])}};
init({nif, Agents}) ->
    R = clicktochat_nif:new(?MAX_SESSIONS, round_robin, 0),
    [clicktochat_nif:resource_available(R, A, <<"desk">>) || A <- Agents],
    {ok, {nif, R}}.

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
