%%% The desk NIF's hand-overs: kept by the desk, taken in its order by
%%% whoever tells the line's notices, whichever process's call made them.
-module(clicktochat_desk_tests).
-include_lib("eunit/include/eunit.hrl").

-define(A, <<"a@helpdesk.example.com">>).
-define(B, <<"b@helpdesk.example.com">>).

%% Two agents of one slot each, both taken, and Waiting in line behind.
full_desk(Waiting) ->
    Desk = clicktochat_nif:new(1, round_robin, 10),
    {0, []} = clicktochat_nif:resource_available(Desk, ?A, <<"desk">>),
    {0, []} = clicktochat_nif:resource_available(Desk, ?B, <<"desk">>),
    {assigned, ?A} = clicktochat_nif:enter(Desk, <<"v1">>),
    {assigned, ?B} = clicktochat_nif:enter(Desk, <<"v2">>),
    [{waiting, _, undefined} = clicktochat_nif:enter(Desk, V) || V <- Waiting],
    Desk.

%% In another process, as a visitor's session ending does it.
release_elsewhere(Desk, Agent) ->
    Self = self(),
    Pid = spawn(fun() -> Self ! {self(), clicktochat_nif:release(Desk, Agent, none)} end),
    receive {Pid, Released} -> Released after 5000 -> error(timeout) end.

a_release_with_nobody_waiting_hands_over_nothing_test() ->
    Desk = full_desk([]),
    ?assertEqual({ok, {0, []}}, clicktochat_nif:release(Desk, ?A, 1000)),
    ?assertEqual([], clicktochat_nif:take_handed_over(Desk)).

releases_in_two_processes_are_taken_in_line_order_once_test() ->
    Desk = full_desk([<<"v3">>, <<"v4">>, <<"v5">>]),
    ?assertEqual({ok, {1, [{<<"v4">>, 1, undefined}, {<<"v5">>, 2, undefined}]}},
                 release_elsewhere(Desk, ?B)),
    ?assertEqual({ok, {1, [{<<"v5">>, 1, undefined}]}}, release_elsewhere(Desk, ?A)),
    %% Whichever of the two reports arrives first, the take is the desk's order.
    ?assertEqual([{<<"v3">>, ?B}, {<<"v4">>, ?A}], clicktochat_nif:take_handed_over(Desk)),
    ?assertEqual([], clicktochat_nif:take_handed_over(Desk)),
    %% A leave moves the line and hands nobody over.
    ?assertEqual({0, []}, clicktochat_nif:leave(Desk, <<"v5">>)),
    ?assertEqual([], clicktochat_nif:take_handed_over(Desk)).

an_agent_coming_online_takes_from_the_line_test() ->
    Desk = full_desk([<<"v3">>, <<"v4">>]),
    ?assertEqual({1, [{<<"v4">>, 1, undefined}]},
                 clicktochat_nif:resource_available(Desk, <<"c@helpdesk.example.com">>,
                                                    <<"phone">>)),
    ?assertEqual([{<<"v3">>, <<"c@helpdesk.example.com">>}],
                 clicktochat_nif:take_handed_over(Desk)).

take_of_anything_but_a_desk_is_badarg_test() ->
    ?assertError(badarg, clicktochat_nif:take_handed_over(make_ref())),
    ?assertError(badarg, clicktochat_nif:take_handed_over(<<"desk">>)).

%%% The agent's name as enter/2 answers it: a binary pointing at the desk's
%%% own copy, found again by its address; any other binary with the same
%%% bytes by its hash.

a_release_takes_the_answered_binary_or_any_equal_one_test() ->
    Desk = clicktochat_nif:new(3, round_robin, 0),
    {0, []} = clicktochat_nif:resource_available(Desk, ?A, <<"desk">>),
    {assigned, Agent} = clicktochat_nif:enter(Desk, <<"v1">>),
    {assigned, ?A} = clicktochat_nif:enter(Desk, <<"v2">>),
    ?assertEqual(?A, Agent),
    %% Not a copy (which would reference its own bytes alone) but a
    %% reference into the desk.
    ?assert(binary:referenced_byte_size(Agent) > byte_size(Agent)),
    ?assertEqual({ok, {0, []}}, clicktochat_nif:release(Desk, Agent, none)),
    ?assertEqual({ok, {0, []}}, clicktochat_nif:release(Desk, binary:copy(Agent), none)),
    ?assertEqual({not_assigned, {0, []}}, clicktochat_nif:release(Desk, Agent, none)),
    %% A part of the answered binary is no agent's.
    {assigned, Again} = clicktochat_nif:enter(Desk, <<"v3">>),
    <<Part:5/binary, _/binary>> = Again,
    ?assertEqual({not_assigned, {0, []}}, clicktochat_nif:release(Desk, Part, none)),
    %% Through an ETS table, as the visitor's Mnesia row keeps it.
    Table = ets:new(?MODULE, []),
    true = ets:insert(Table, {v3, Again}),
    [{v3, Stored}] = ets:lookup(Table, v3),
    ?assertEqual({ok, {0, []}}, clicktochat_nif:release(Desk, Stored, none)),
    ?assertEqual([{?A, 0}], clicktochat_nif:loads(Desk)).

a_release_of_bytes_that_are_not_utf8_is_badarg_test() ->
    Desk = clicktochat_nif:new(3, round_robin, 0),
    {0, []} = clicktochat_nif:resource_available(Desk, ?A, <<"desk">>),
    {assigned, _} = clicktochat_nif:enter(Desk, <<"v1">>),
    ?assertError(badarg, clicktochat_nif:release(Desk, <<255, 254>>, none)),
    ?assertError(badarg, clicktochat_nif:release(Desk, not_a_binary, none)),
    ?assertEqual([{?A, 1}], clicktochat_nif:loads(Desk)).

%% The desk is gone from every process but the agent's binary: the binary
%% keeps it (and its bytes) alive.
an_answered_name_outlives_every_other_reference_to_its_desk_test() ->
    Self = self(),
    Pid = spawn(fun() ->
                        Desk = clicktochat_nif:new(1, least_busy, 0),
                        {0, []} = clicktochat_nif:resource_available(Desk, ?B, <<"desk">>),
                        {assigned, Agent} = clicktochat_nif:enter(Desk, <<"v1">>),
                        Self ! {self(), Agent}
                end),
    Agent = receive {Pid, Name} -> Name after 5000 -> error(timeout) end,
    MonitorRef = monitor(process, Pid),
    receive {'DOWN', MonitorRef, process, Pid, _} -> ok after 5000 -> error(timeout) end,
    %% Churn the allocators that the desk's memory came from, were it freed.
    _ = [clicktochat_nif:new(1, round_robin, 0) || _ <- lists:seq(1, 1000)],
    erlang:garbage_collect(),
    ?assertEqual(?B, binary:copy(Agent)),
    ?assertEqual(byte_size(?B), byte_size(Agent)).
