%%% Where a registration's time goes, inside the node (loaded into a running
%%% sandbox by register_bench.py; not part of the product). One process,
%%% one registration at a time, unique names:
%%%
%%%  - handlers: the two HTTP handlers called directly with the same
%%%    #request{} ejabberd_http would build (JSON bodies), in alternating
%%%    blocks: mod_http_clicktochat:process/2 against mod_http_api:process/2.
%%%    What ejabberd_http does around them (socket, parsing the request,
%%%    writing the answer) is the same for both and left out.
%%%  - ours step by step: the steps clicktochat_visitors:register/3 and
%%%    clicktochat_api:register/3 take, in their order, each timed (a mirror
%%%    of that code: keep it in step when the path changes).
%%%  - theirs: ejabberd_admin:register/3 (the command's body) and
%%%    ejabberd_auth:try_register/3 alone.
%%%  - the SCRAM record's PBKDF2 alone, three ways (salted_password/2).
%%%
%%% Each figure: wall microseconds per registration in this process, and
%%% the node's CPU (statistics(runtime), every scheduler: includes what
%%% other processes do for the call, mnesia_tm's commit for one).
-module(register_steps).

-export([run/3, steps_only/3, tail_steps/4, paced/5]).

-include("ejabberd_http.hrl").
-include("clicktochat.hrl").

-define(BLOCKS, 3).

-spec run(binary(), pos_integer(), binary()) -> map().
run(Host, N, Prefix) ->
    Name = names(Prefix),
    #{ours_handler := Ours, theirs_handler := Theirs, auth_try_register := Auth} =
        registrations(Host, Name),
    Admin = fun() -> {ok, _} = ejabberd_admin:register(Name(), Host, <<"pw">>) end,
    _ = [F() || F <- [Ours, Theirs, Admin, Auth]],      % code loaded, caches warm
    Blocks = [{Label, measure(F, N)} || _ <- lists:seq(1, ?BLOCKS),
                                        {Label, F} <- [{ours_handler, Ours},
                                                       {theirs_handler, Theirs}]],
    Handlers = maps:from_list(
                 [{Label, average([M || {L, M} <- Blocks, L == Label])}
                  || Label <- [ours_handler, theirs_handler]]),
    Steps = steps(Host, N, Name),
    Concurrent = [{Label, concurrent(F, 16, 2000)} || _ <- lists:seq(1, 2),
                                                     {Label, F} <- [{ours_handler, Ours},
                                                                    {theirs_handler, Theirs}]],
    #{registrations_per_block => N, blocks => ?BLOCKS,
      handlers => Handlers,
      concurrent => [#{side => L, result => R} || {L, R} <- Concurrent],
      ours_steps => Steps,
      theirs_command => measure(Admin, N),
      auth_try_register => measure(Auth, N),
      salted_password => salted_password(Host, N)}.

%% A SCRAM record's PBKDF2 (the host's hash, 4 096 rounds), three ways in
%% alternating blocks: the xmpp library's (Erlang, what ejabberd_auth calls),
%% OTP's crypto:pbkdf2_hmac (OpenSSL, on a regular scheduler) and our NIF's
%% (which clicktochat_accounts calls; dirty CPU, and the two keys with it).
salted_password(Host, N) ->
    Hash = ejabberd_option:auth_scram_hash(Host),
    Salt = crypto:strong_rand_bytes(16),
    Length = byte_size(crypto:hash(Hash, <<>>)),
    Ways = [{xmpp_erlang, fun() -> scram:salted_password(Hash, <<"pw">>, Salt, 4096) end},
            {otp_crypto, fun() -> crypto:pbkdf2_hmac(Hash, <<"pw">>, Salt, 4096, Length) end},
            {nif_keys, fun() -> clicktochat_nif:scram_keys(Hash, <<"pw">>, Salt, 4096) end}],
    Blocks = [{Label, measure(F, N)} || _ <- lists:seq(1, ?BLOCKS), {Label, F} <- Ways],
    maps:from_list([{Label, average([M || {L, M} <- Blocks, L == Label])}
                    || {Label, _} <- Ways]).

%% Workers processes calling F in a loop for Ms milliseconds (as wrk's 16
%% connections do, without HTTP): registrations per second, the node's
%% CPU per registration, and the processes whose message queue was longest
%% on average over samples every 20 ms (a process that serializes the
%% work shows up there).
concurrent(F, Workers, Ms) ->
    Parent = self(),
    Stop = erlang:monotonic_time(millisecond) + Ms,
    Reductions0 = reductions(),
    {Cpu0, _} = statistics(runtime),
    T0 = erlang:monotonic_time(microsecond),
    Pids = [spawn_link(fun() -> Parent ! {done, self(), work(F, Stop, [])} end)
            || _ <- lists:seq(1, Workers)],
    Queues = sample_queues(Stop, #{}, 0),
    Times = lists:sort(lists:append([receive {done, P, C} -> C end || P <- Pids])),
    Count = length(Times),
    T1 = erlang:monotonic_time(microsecond),
    {Cpu1, _} = statistics(runtime),
    Reductions1 = reductions(),
    {Samples, Totals} = Queues,
    Top = lists:sublist(lists:reverse(lists:keysort(2, maps:to_list(Totals))), 5),
    %% Work done for the workers by other processes (the workers are gone
    %% from Reductions1): reductions per registration, by process name.
    Others = lists:sublist(lists:reverse(lists:keysort(2, maps:to_list(
               maps:filter(fun(_, V) -> V > 0 end,
                           maps:map(fun(K, V) -> V - maps:get(K, Reductions0, 0) end,
                                    Reductions1))))), 6),
    Pct = fun(P) -> lists:nth(max(1, round(P * Count)), Times) end,
    #{per_s => Count / ((T1 - T0) / 1.0e6), node_cpu_us => (Cpu1 - Cpu0) * 1000 / max(Count, 1),
      p50_us => Pct(0.5), p99_us => Pct(0.99), max_us => lists:last(Times),
      longest_queues => [#{process => Name, mean_queue => Sum / max(Samples, 1)}
                         || {Name, Sum} <- Top, Sum > 0],
      other_processes_reductions_per_op => [#{process => Name, reductions => R / max(Count, 1)}
                                            || {Name, R} <- Others]}.

work(F, Stop, Times) ->
    case erlang:monotonic_time(millisecond) < Stop of
        true ->
            T0 = erlang:monotonic_time(microsecond),
            F(),
            work(F, Stop, [erlang:monotonic_time(microsecond) - T0 | Times]);
        false -> Times
    end.

reductions() ->
    lists:foldl(fun(P, Acc) ->
                        case erlang:process_info(P, [reductions, registered_name]) of
                            [{reductions, R}, {registered_name, N}] ->
                                Name = case N of [] -> name(P); _ -> atom_to_binary(N) end,
                                maps:update_with(Name, fun(S) -> S + R end, R, Acc);
                            undefined -> Acc
                        end
                end, #{}, erlang:processes() -- [self()]).    % not the sampler

sample_queues(Stop, Totals, Samples) ->
    case erlang:monotonic_time(millisecond) < Stop of
        false -> {Samples, Totals};
        true ->
            New = lists:foldl(
                    fun(P, Acc) ->
                            case erlang:process_info(P, [message_queue_len, registered_name]) of
                                [{message_queue_len, L}, {registered_name, R}] when L > 0 ->
                                    Name = case R of [] -> name(P); _ -> atom_to_binary(R) end,
                                    maps:update_with(Name, fun(S) -> S + L end, L, Acc);
                                _ -> Acc
                            end
                    end, Totals, erlang:processes()),
            timer:sleep(20),
            sample_queues(Stop, New, Samples + 1)
    end.

%% An unregistered process: its proc_lib initial call (dets and disk_log
%% give their init), else where it runs now.
name(P) ->
    case proc_lib:initial_call(P) of
        {M, Fn, A} when is_integer(A) -> iolist_to_binary(io_lib:format("~s:~s/~p", [M, Fn, A]));
        {M, Fn, A} when is_list(A) -> iolist_to_binary(io_lib:format("~s:~s/~p", [M, Fn, length(A)]));
        _ ->
            case erlang:process_info(P, current_function) of
                {current_function, {M, Fn, A}} ->
                    iolist_to_binary(io_lib:format("~p in ~s:~s/~p", [P, M, Fn, A]));
                _ -> iolist_to_binary(io_lib:format("~p", [P]))
            end
    end.

%% Ours step by step only (visitors_bench.py, at each level of live visitors).
-spec steps_only(binary(), pos_integer(), binary()) -> map().
steps_only(Host, N, Prefix) ->
    steps(Host, N, names(Prefix)).

request(Host, Path, Body) ->
    #request{method = 'POST', path = binary:split(Path, <<"/">>, [global, trim_all]),
             raw_path = Path, data = Body, ip = {{127, 0, 0, 1}, 40000}, host = Host,
             headers = [{'Content-Type', <<"application/json">>},
                        {'Accept', <<"application/json">>}],
             length = byte_size(Body), sockmod = gen_tcp, opts = []}.

measure(F, N) ->
    {Cpu0, _} = statistics(runtime),
    T0 = erlang:monotonic_time(nanosecond),
    loop(F, N),
    T1 = erlang:monotonic_time(nanosecond),
    {Cpu1, _} = statistics(runtime),
    #{wall_us => (T1 - T0) / 1000 / N, node_cpu_us => (Cpu1 - Cpu0) * 1000 / N}.

loop(_F, 0) -> ok;
loop(F, N) -> F(), loop(F, N - 1).

average(Ms) ->
    #{wall_us => lists:sum([maps:get(wall_us, M) || M <- Ms]) / length(Ms),
      node_cpu_us => lists:sum([maps:get(node_cpu_us, M) || M <- Ms]) / length(Ms)}.

%% The tails at one offered rate: ours' handler, theirs' and
%% ejabberd_auth:try_register alone (the account both create), each started
%% Rate times a second on a fixed schedule for Ms milliseconds whatever the
%% answers (an open loop: a stall delays no request's start, so every
%% request it holds up is counted), in Rounds rounds of alternating order.
%% Latency runs from a request's scheduled start to its answer.
-spec paced(binary(), pos_integer(), pos_integer(), pos_integer(), binary()) -> map().
paced(Host, Rate, Ms, Rounds, Prefix) ->
    Name = names(Prefix),
    Sides = maps:to_list(registrations(Host, Name)),
    Runs = [{Label, open_loop(F, Rate, Ms)}
            || Round <- lists:seq(1, Rounds),
               {Label, F} <- case Round rem 2 of 1 -> Sides; 0 -> lists:reverse(Sides) end],
    #{rate_per_s => Rate, ms => Ms, rounds => Rounds,
      runs => [#{side => L, result => R} || {L, R} <- Runs]}.

open_loop(F, Rate, Ms) ->
    Parent = self(),
    Count = Rate * Ms div 1000,
    T0 = erlang:monotonic_time(microsecond),
    Start = fun(I) -> T0 + I * 1000000 div Rate end,
    launch(F, Parent, Start, 0, Count),
    Latencies = lists:sort([receive {answered, Us} -> Us end || _ <- lists:seq(1, Count)]),
    Pct = fun(P) -> lists:nth(max(1, round(P * Count)), Latencies) end,
    #{requests => Count, p50_us => Pct(0.5), p99_us => Pct(0.99), max_us => lists:last(Latencies),
      seconds => (erlang:monotonic_time(microsecond) - T0) / 1.0e6}.

%% Every request whose time has come is started, then a millisecond's sleep.
launch(_F, _Parent, _Start, I, Count) when I >= Count -> ok;
launch(F, Parent, Start, I, Count) ->
    Now = erlang:monotonic_time(microsecond),
    case Start(I) =< Now of
        true ->
            At = Start(I),
            spawn_link(fun() -> F(), Parent ! {answered, erlang:monotonic_time(microsecond) - At} end),
            launch(F, Parent, Start, I + 1, Count);
        false ->
            timer:sleep(1),
            launch(F, Parent, Start, I, Count)
    end.

%% A fresh name at each call, unique across concurrent workers too.
names(Prefix) ->
    fun() -> <<Prefix/binary, (integer_to_binary(erlang:unique_integer([positive])))/binary>> end.

%% One registration of a fresh name each call, three ways: ours' HTTP
%% handler, theirs' (mod_http_api's register command), and the account
%% alone (ejabberd_auth:try_register/3, which both end in), each handed the
%% #request{} ejabberd_http would build.
registrations(Host, Name) ->
    #{ours_handler =>
          fun() -> {201, _, _} = mod_http_clicktochat:process(
                                   [<<"register">>], request(Host, <<"/clicktochat/register">>,
                                                             ours_body(Name())))
          end,
      theirs_handler =>
          fun() -> {200, _, _} = mod_http_api:process(
                                   [<<"register">>], request(Host, <<"/api/register">>,
                                                             theirs_body(Name(), Host)))
          end,
      auth_try_register => fun() -> ok = ejabberd_auth:try_register(Name(), Host, <<"pw">>) end}.

ours_body(Name) -> <<"{\"username\":\"", Name/binary, "\",\"password\":\"pw\"}">>.

theirs_body(Name, Host) ->
    <<"{\"user\":\"", Name/binary, "\",\"host\":\"", Host/binary, "\",\"password\":\"pw\"}">>.

%% Where ours' tail goes: Workers processes registering step by step for Ms
%% milliseconds (as wrk's connections do, without HTTP), every
%% registration's steps kept: for the whole registration and for each step,
%% p50 and p99; and in the slowest 1% of registrations, the mean time of
%% each step (which step the tail waits in).
-spec tail_steps(binary(), pos_integer(), pos_integer(), binary()) -> map().
tail_steps(Host, Workers, Ms, Prefix) ->
    Name = names(Prefix),
    One = one_step_by_step(Host, Name),
    Parent = self(),
    Stop = erlang:monotonic_time(millisecond) + Ms,
    Loop = fun Loop(Acc) ->
                   case erlang:monotonic_time(millisecond) < Stop of
                       true -> Loop([One(#{}) | Acc]);
                       false -> Acc
                   end
           end,
    Pids = [spawn_link(fun() -> Parent ! {steps, self(), Loop([])} end)
            || _ <- lists:seq(1, Workers)],
    All = lists:append([receive {steps, P, S} -> S end || P <- Pids]),
    Totals = lists:sort([{lists:sum(maps:values(S)), S} || S <- All]),
    Count = length(Totals),
    Pct = fun(Sorted, P) -> lists:nth(max(1, round(P * length(Sorted))), Sorted) / 1000 end,
    Tail = lists:nthtail(Count - max(1, Count div 100), Totals),
    Keys = maps:keys(element(2, hd(Totals))),
    #{registrations => Count,
      total => #{p50_us => Pct([T || {T, _} <- Totals], 0.5),
                 p99_us => Pct([T || {T, _} <- Totals], 0.99)},
      steps => maps:from_list(
                 [{K, #{p50_us => Pct(lists:sort([maps:get(K, S) || {_, S} <- Totals]), 0.5),
                        p99_us => Pct(lists:sort([maps:get(K, S) || {_, S} <- Totals]), 0.99),
                        slowest_1pct_mean_us =>
                            lists:sum([maps:get(K, S) || {_, S} <- Tail]) / length(Tail) / 1000}}
                  || K <- Keys])}.

%% clicktochat_api:register/3 then clicktochat_visitors:register/3, step by
%% step (no waiting line: every registration gets an agent, claimed with it).
steps(Host, N, Name) ->
    One = one_step_by_step(Host, Name),
    {Cpu0, _} = statistics(runtime),
    T0 = erlang:monotonic_time(nanosecond),
    Totals = lists:foldl(fun(_, Acc) -> One(Acc) end, #{}, lists:seq(1, N)),
    Wall = (erlang:monotonic_time(nanosecond) - T0) / 1000 / N,
    {Cpu1, _} = statistics(runtime),
    #{total => #{wall_us => Wall, node_cpu_us => (Cpu1 - Cpu0) * 1000 / N},
      steps_wall_us => maps:map(fun(_K, Ns) -> Ns / 1000 / N end, Totals)}.

%% One registration, each step's nanoseconds added to the map's.
one_step_by_step(Host, Name) ->
    Instance = clicktochat_instance:for_request(Host),
    Timed = fun(Key, F, Acc) ->
                    T0 = erlang:monotonic_time(nanosecond),
                    R = F(),
                    {R, maps:update_with(Key, fun(T) -> T + erlang:monotonic_time(nanosecond) - T0 end,
                                         erlang:monotonic_time(nanosecond) - T0, Acc)}
            end,
    One = fun(Acc0) ->
                  Body = ours_body(Name()),
                  {Headers, Acc1} = Timed(a_content_negotiation, fun() ->
                      mod_http_clicktochat:response_format([{'Content-Type', <<"application/json">>}]),
                      mod_http_clicktochat:request_format([{'Content-Type', <<"application/json">>}])
                  end, Acc0),
                  json = Headers,
                  {_, Acc2} = Timed(b_instance, fun() -> clicktochat_instance:for_request(Host) end, Acc1),
                  {{ok, User, Password}, Acc3} =
                      Timed(c_parse_json, fun() -> clicktochat_nif:parse_registration_json(Body) end, Acc2),
                  {LUser, Acc4} = Timed(d_nodeprep, fun() -> jid:nodeprep(User) end, Acc3),
                  {_, Acc5} = Timed(e_count_visitors, fun() -> clicktochat_assignments:count() end, Acc4),
                  {none, Acc6} = Timed(f_lookup_mnesia_dirty_read,
                                       fun() -> clicktochat_assignments:lookup(LUser, Host) end, Acc5),
                  {{assigned, Agent}, Acc7} =
                      Timed(g_rotation_enter_nif, fun() -> clicktochat_rotation:enter(Instance, LUser) end, Acc6),
                  {{ok, At}, Acc8} = Timed(h_claim_mnesia_transaction,
                                           fun() -> clicktochat_assignments:claim(LUser, Host, Agent) end, Acc7),
                  {ok, Acc9} = Timed(i_create_account,
                                     fun() -> clicktochat_accounts:create(LUser, Host, Password) end, Acc8),
                  {_, Acc10} = Timed(j_arm_ttl_cast,
                                     fun() -> clicktochat_server:arm_ttl(Host, LUser, At) end, Acc9),
                  {_, Acc11} = Timed(k_render_json, fun() ->
                      clicktochat_nif:render_register_ok(json, jid:encode({LUser, Host, <<>>}), Agent)
                  end, Acc10),
                  Acc11
          end,
    One.
