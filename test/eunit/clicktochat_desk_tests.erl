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
