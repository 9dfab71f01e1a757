%%% What a node that does not own the rotation pays for an enter + release:
%%% two erpc calls to the owner node, each making the NIF call there (what
%%% clicktochat_rotation does), against the owner's own direct NIF calls,
%%% in one run (A B A B). The owner is a peer node on this machine, so the
%%% figure is the floor of a cluster on a LAN: the distribution protocol
%%% and two schedulers' hops, without the network. Run with `make bench`.
-module(cluster_bench).

-export([main/1, setup/0]).

-define(AGENTS, 100).
-define(MAX_SESSIONS, 1000000).

main(Args) ->
    Pairs = case Args of [P] -> list_to_integer(P); [] -> 20000 end,
    Ebin = filename:dirname(code:which(clicktochat_nif)),
    {ok, Peer, Owner} = peer:start_link(#{name => peer:random_name(cluster_bench),
                                          args => ["-pa", Ebin, "-pa",
                                                   filename:dirname(code:which(?MODULE))]}),
    ok = erpc:call(Owner, ?MODULE, setup, []),
    setup(),
    Local = fun() -> {assigned, A} = clicktochat_nif:enter(rotation(), <<"visitor">>),
                     {ok, _} = clicktochat_nif:release(rotation(), A, none) end,
    Remote = fun() -> {assigned, A} = erpc:call(Owner, fun() -> clicktochat_nif:enter(
                                                                   rotation(), <<"visitor">>) end),
                      {ok, _} = erpc:call(Owner, fun() -> clicktochat_nif:release(rotation(), A,
                                                                                  none) end)
             end,
    %% The floor of any cross-node call: a message to a process on the owner
    %% node and its answer, twice per pair.
    Echo = erpc:call(Owner, fun() -> spawn(fun Loop() ->
                                                   receive {From, Ref} -> From ! Ref end,
                                                   Loop()
                                           end)
                            end),
    Ping = fun() -> ping(Echo), ping(Echo) end,
    Results = [{Name, time(Fun, Pairs)} || _ <- [1, 2], {Name, Fun} <- [{owner, Local},
                                                                        {erpc, Remote},
                                                                        {ping, Ping}]],
    Best = fun(Name) -> lists:min([T || {N, T} <- Results, N == Name]) end,
    io:format("enter + release, ~b pairs, ~b agents~n", [Pairs, ?AGENTS]),
    io:format("on the owner (direct NIF)   ~8.2f us/pair~n", [Best(owner)]),
    io:format("from another node (erpc)    ~8.2f us/pair  ~.1fx the owner's~n",
              [Best(erpc), Best(erpc) / Best(owner)]),
    io:format("two message round trips     ~8.2f us/pair  (the floor between these nodes)~n",
              [Best(ping)]),
    peer:stop(Peer),
    halt(0).

setup() ->
    Agents = [iolist_to_binary(["agent", integer_to_list(I), "@helpdesk.example.com"])
              || I <- lists:seq(1, ?AGENTS)],
    R = clicktochat_nif:new(?MAX_SESSIONS, round_robin, 0),
    [clicktochat_nif:resource_available(R, A, <<"desk">>) || A <- Agents],
    persistent_term:put({?MODULE, rotation}, R).

rotation() -> persistent_term:get({?MODULE, rotation}).

ping(Echo) ->
    Ref = make_ref(),
    Echo ! {self(), Ref},
    receive Ref -> ok end.

time(Fun, Pairs) ->
    {Micros, ok} = timer:tc(fun() -> loop(Fun, Pairs) end),
    Micros / Pairs.

loop(_Fun, 0) -> ok;
loop(Fun, N) -> Fun(), loop(Fun, N - 1).
