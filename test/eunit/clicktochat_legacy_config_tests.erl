%%% The original project's clicktochat.conf and option resolution.
-module(clicktochat_legacy_config_tests).
-include_lib("eunit/include/eunit.hrl").

%% mod_options/1's defaults, as gen_mod hands them over when nothing is set.
unset() ->
    maps:from_list(mod_clicktochat:mod_options(<<"clients.example.com">>)).

defaults_fill_what_is_unset_test() ->
    Opts = clicktochat_legacy_config:resolve(unset(), #{}),
    ?assertEqual(5, maps:get(max_sessions, Opts)),
    ?assertEqual([<<"127.0.0.1:8087">>], maps:get(riak_cluster, Opts)),
    ?assertEqual(undefined, maps:get(client_host, Opts)),
    ?assertEqual(60, maps:get(max_registrations_per_minute, Opts)).

the_file_fills_unset_options_and_loses_to_set_ones_test() ->
    FromFile = #{client_host => <<"c.example">>, max_sessions => 3},
    Opts = clicktochat_legacy_config:resolve((unset())#{max_sessions => 1}, FromFile),
    ?assertEqual(<<"c.example">>, maps:get(client_host, Opts)),
    ?assertEqual(1, maps:get(max_sessions, Opts)).

seed_terms_test() ->
    Options = clicktochat_legacy_config:options(
                [{riak_erlang_client, "/opt/riak-erlang-client/ebin"},
                 {host_client, "Clients.Example.COM"},
                 {host_helpdesk, 'helpdesk.example.com'},
                 {max_sessions, 3},
                 {riak_cluster, [{"10.0.0.1", 8087}, "10.0.0.2:8088", {{10,0,0,3}, 8087}]}]),
    ?assertEqual(#{client_host => <<"clients.example.com">>,
                   helpdesk_host => <<"helpdesk.example.com">>,
                   max_sessions => 3,
                   riak_cluster => [<<"10.0.0.1:8087">>, <<"10.0.0.2:8088">>,
                                    <<"10.0.0.3:8087">>]},
                 Options).

one_node_alone_test() ->
    ?assertEqual(#{riak_cluster => [<<"10.0.0.1:8087">>]},
                 clicktochat_legacy_config:options([{riak_cluster, {"10.0.0.1", 8087}}])),
    ?assertEqual(#{riak_cluster => [<<"10.0.0.1:8087">>]},
                 clicktochat_legacy_config:options([{riak_cluster, "10.0.0.1:8087"}])).

bad_values_are_refused_test_() ->
    [?_assertThrow({bad_value, _}, clicktochat_legacy_config:options([Term]))
     || Term <- [{max_sessions, 0}, {max_sessions, 100001}, {max_sessions, "5"},
                 {riak_cluster, []}, {riak_cluster, [{"h", 0}]}, {riak_cluster, ["nohost"]},
                 {riak_cluster, [{"h", 70000}]}, {host_client, 42},
                 {host_client, "bad host\x{0}"}]].

unknown_keys_are_ignored_test() ->
    ?assertEqual(#{}, clicktochat_legacy_config:options([{riak_erlang_client, "/x"},
                                                        {anything, else}])).

resolve_reads_the_file_test() ->
    Path = filename:join(temp_dir(), "clicktochat.conf"),
    ok = file:write_file(Path, "{host_client, \"c.example\"}.\n{max_sessions, 3}.\n"),
    {ok, Opts} = clicktochat_legacy_config:resolve((unset())#{config_file => Path}),
    ?assertEqual({<<"c.example">>, 3},
                 {maps:get(client_host, Opts), maps:get(max_sessions, Opts)}).

resolve_explains_a_bad_file_test() ->
    Dir = temp_dir(),
    Missing = filename:join(Dir, "missing.conf"),
    {error, Why} = clicktochat_legacy_config:resolve((unset())#{config_file => Missing}),
    ?assertMatch({match, _}, re:run(Why, "cannot read .*missing.conf")),
    Bad = filename:join(Dir, "bad.conf"),
    ok = file:write_file(Bad, "{max_sessions, 0}.\n"),
    {error, Why2} = clicktochat_legacy_config:resolve((unset())#{config_file => Bad}),
    ?assertMatch({match, _}, re:run(Why2, "bad.conf: bad value")).

temp_dir() ->
    Dir = filename:join(["/tmp", "clicktochat-eunit-" ++ os:getpid()]),
    ok = filelib:ensure_path(Dir),
    Dir.
