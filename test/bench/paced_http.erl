%% An open-loop HTTP load driver: POST requests started on a fixed schedule
%% (Rate a second for Ms milliseconds) whatever the answers, each over one of
%% a pool of keep-alive connections, and each request's latency taken from
%% its scheduled start. wrk keeps a fixed number of requests in flight (a
%% closed loop): a stall of the server delays the requests wrk would have
%% sent meanwhile, which are then never counted as late, and a faster
%% server is driven harder than a slower one, so wrk's p99 of two servers
%% compares two different loads. Here both sides get the same offered load
%% and every request a stall holds up counts.
%%
%% Runs in its own VM (not the server's), so its CPU is its own:
%%
%%   erl -noshell -pa _build/bench -run paced_http main \
%%       Port Path Prefix Template Rate Ms Connections
%%
%% Template is the JSON body with NAME where a fresh user name goes
%% (Prefix and a counter). Prints one line, "BENCHJSON {...}": requests,
%% answers by outcome (HTTP status, or socket_error), latency percentiles
%% (us from the scheduled start) and every latency, sorted, the most
%% requests in flight at once (all
%% Connections: some due request may have waited for one), and how late
%% the driver handed requests to their connections.
-module(paced_http).

-export([main/1]).

-define(TIMEOUT_MS, 30000).

main([Port, Path, Prefix, Template, Rate, Ms, Connections]) ->
    Result = run(list_to_integer(Port), list_to_binary(Path), list_to_binary(Prefix),
                 list_to_binary(Template), list_to_integer(Rate), list_to_integer(Ms),
                 list_to_integer(Connections)),
    io:put_chars(["BENCHJSON ", json(Result), "\n"]),
    halt(0).

run(Port, Path, Prefix, Template, Rate, Ms, Connections) ->
    Parent = self(),
    Request = fun(I) ->
                      Name = <<Prefix/binary, (integer_to_binary(I))/binary>>,
                      Body = binary:replace(Template, <<"NAME">>, Name, [global]),
                      [<<"POST ">>, Path, <<" HTTP/1.1\r\nHost: 127.0.0.1:">>,
                       integer_to_binary(Port),
                       <<"\r\nContent-Type: application/json\r\nAccept: application/json"
                         "\r\nContent-Length: ">>, integer_to_binary(byte_size(Body)),
                       <<"\r\n\r\n">>, Body]
              end,
    Pids = [spawn_link(fun() -> connection(Port, Parent) end)
            || _ <- lists:seq(1, Connections)],
    Idle = [receive {idle, P} -> P end || P <- Pids],
    Count = Rate * Ms div 1000,
    T0 = now_us() + 1000,
    State = #{start => fun(I) -> T0 + I * 1000000 div Rate end, request => Request,
              count => Count, next => 0, idle => Idle, due => queue:new(), answered => 0,
              connections => Connections, latencies => [], late => [], max_in_flight => 0,
              outcomes => #{}},
    Done = dispatch(State),
    [P ! stop || P <- Pids],
    Latencies = list_to_tuple(lists:sort(maps:get(latencies, Done))),
    Late = list_to_tuple(lists:sort(maps:get(late, Done))),
    Pct = fun(_T, _P) when Count == 0 -> 0;
             (T, P) -> element(max(1, min(tuple_size(T), round(P * tuple_size(T)))), T)
          end,
    #{requests => Count, rate_per_s => Rate, ms => Ms, connections => Connections,
      duration_us => now_us() - T0, outcomes => maps:get(outcomes, Done),
      latency_us => #{p50 => Pct(Latencies, 0.5), p90 => Pct(Latencies, 0.9),
                      p99 => Pct(Latencies, 0.99), p999 => Pct(Latencies, 0.999),
                      max => Pct(Latencies, 1.0)},
      %% Every latency, sorted: a bench pools its runs' (one run's p99 is
      %% its ~40 slowest requests, one stall of the host).
      latencies_us => tuple_to_list(Latencies),
      max_in_flight => maps:get(max_in_flight, Done),
      driver_late_us => #{p50 => Pct(Late, 0.5), p99 => Pct(Late, 0.99), max => Pct(Late, 1.0)}}.

%% Every request whose time has come is handed to an idle connection (in
%% order; when none is idle it waits for the next to answer), then the
%% dispatcher waits for an answer or the next request's time.
dispatch(#{count := Count, answered := Count} = S) ->
    S;
dispatch(#{start := Start, count := Count} = S0) ->
    S = hand_out(due(S0, now_us())),
    Timeout = case maps:get(next, S) of
                  Count -> ?TIMEOUT_MS;
                  %% Rounded up: a wait of 0 would spin until the time comes.
                  Next -> max(0, (Start(Next) - now_us() + 999) div 1000)
              end,
    receive
        {answered, Pid, Scheduled, Outcome} ->
            #{idle := Idle, latencies := L, answered := A, outcomes := O} = S,
            dispatch(S#{idle := [Pid | Idle], latencies := [now_us() - Scheduled | L],
                        answered := A + 1,
                        outcomes := maps:update_with(Outcome, fun(N) -> N + 1 end, 1, O)})
    after Timeout ->
            case maps:get(next, S) of
                Count -> error({no_answer_for_ms, ?TIMEOUT_MS});
                _ -> dispatch(S)
            end
    end.

due(#{start := Start, count := Count, next := I, due := Due} = S, Now)
  when I < Count ->
    case Start(I) =< Now of
        true -> due(S#{next := I + 1, due := queue:in(I, Due)}, Now);
        false -> S
    end;
due(S, _Now) ->
    S.

hand_out(#{due := Due, idle := Idle, start := Start, request := Request} = S) ->
    case {queue:out(Due), Idle} of
        {{{value, I}, Rest}, [Pid | Idle1]} ->
            Scheduled = Start(I),
            Pid ! {request, Scheduled, Request(I)},
            #{late := Late, max_in_flight := Max, connections := Connections} = S,
            hand_out(S#{due := Rest, idle := Idle1, late := [now_us() - Scheduled | Late],
                        max_in_flight := max(Max, Connections - length(Idle1))});
        _ ->
            S
    end.

%% One keep-alive connection: a request at a time; reconnects when the
%% server closes it.
connection(Port, Parent) ->
    Parent ! {idle, self()},
    serve(Port, Parent, connect(Port)).

serve(Port, Parent, Socket) ->
    receive
        {request, Scheduled, Bytes} ->
            {Outcome, Socket1} = exchange(Port, Socket, Bytes),
            Parent ! {answered, self(), Scheduled, Outcome},
            serve(Port, Parent, Socket1);
        stop ->
            gen_tcp:close(Socket)
    end.

connect(Port) ->
    {ok, Socket} = gen_tcp:connect({127, 0, 0, 1}, Port,
                                   [binary, {packet, http_bin}, {active, false},
                                    {nodelay, true}], ?TIMEOUT_MS),
    Socket.

exchange(Port, Socket, Bytes) ->
    case gen_tcp:send(Socket, Bytes) of
        ok ->
            case response(Socket) of
                {ok, Status, keep_alive} -> {Status, Socket};
                {ok, Status, close} -> gen_tcp:close(Socket), {Status, connect(Port)};
                {error, _} -> gen_tcp:close(Socket), {socket_error, connect(Port)}
            end;
        {error, _} ->
            gen_tcp:close(Socket),
            {socket_error, connect(Port)}
    end.

%% The status line, the headers (Content-Length, Connection), the body.
response(Socket) ->
    case gen_tcp:recv(Socket, 0, ?TIMEOUT_MS) of
        {ok, {http_response, _Version, Status, _}} -> headers(Socket, Status, 0, keep_alive);
        {ok, Other} -> {error, Other};
        {error, _} = E -> E
    end.

headers(Socket, Status, Length, Connection) ->
    case gen_tcp:recv(Socket, 0, ?TIMEOUT_MS) of
        {ok, {http_header, _, 'Content-Length', _, Value}} ->
            headers(Socket, Status, binary_to_integer(Value), Connection);
        {ok, {http_header, _, 'Connection', _, Value}} ->
            headers(Socket, Status, Length,
                    case string:lowercase(Value) of <<"close">> -> close; _ -> Connection end);
        {ok, {http_header, _, _, _, _}} ->
            headers(Socket, Status, Length, Connection);
        {ok, http_eoh} when Length == 0 ->
            {ok, Status, Connection};
        {ok, http_eoh} ->
            ok = inet:setopts(Socket, [{packet, raw}]),
            Body = gen_tcp:recv(Socket, Length, ?TIMEOUT_MS),
            ok = inet:setopts(Socket, [{packet, http_bin}]),
            case Body of
                {ok, _} -> {ok, Status, Connection};
                {error, _} = E -> E
            end;
        {ok, Other} -> {error, Other};
        {error, _} = E -> E
    end.

now_us() ->
    erlang:monotonic_time(microsecond).

%% Just enough JSON for the result: maps with atom or integer keys, lists
%% and integers.
json(Map) when is_map(Map) ->
    Pairs = [[$", key(K), "\":", json(V)] || {K, V} <- lists:sort(maps:to_list(Map))],
    [${, lists:join($,, Pairs), $}];
json(List) when is_list(List) ->
    [$[, lists:join($,, [json(V) || V <- List]), $]];
json(N) when is_integer(N) ->
    integer_to_binary(N).

key(K) when is_atom(K) -> atom_to_binary(K);
key(K) when is_integer(K) -> integer_to_binary(K).
