%%% The HTTP module's pure rules: which format a request speaks and wants,
%%% and the default access rule of the archive.
-module(clicktochat_http_rules_tests).
-include_lib("eunit/include/eunit.hrl").

request_format_test_() ->
    [?_assertEqual(xml, mod_http_clicktochat:request_format([])),
     ?_assertEqual(xml, mod_http_clicktochat:request_format([{'Content-Type', <<"text/xml">>}])),
     ?_assertEqual(json, mod_http_clicktochat:request_format(
                           [{'Content-Type', <<"Application/JSON; charset=utf-8">>}])),
     ?_assertEqual(xml, mod_http_clicktochat:request_format(
                          [{<<"X-Content-Type">>, <<"application/json">>}]))].

response_format_test_() ->
    Json = {'Content-Type', <<"application/json">>},
    [?_assertEqual(xml, mod_http_clicktochat:response_format([])),
     ?_assertEqual(json, mod_http_clicktochat:response_format([{'Accept', <<"application/json">>}])),
     %% Sent JSON without asking for anything: answered in JSON.
     ?_assertEqual(json, mod_http_clicktochat:response_format([Json])),
     %% Asks for XML explicitly: XML, whatever it sent.
     ?_assertEqual(xml, mod_http_clicktochat:response_format([Json, {'Accept', <<"text/xml">>}])),
     %% Accepts both: the format it sent.
     ?_assertEqual(json, mod_http_clicktochat:response_format(
                           [Json, {'Accept', <<"text/xml, application/json">>}])),
     ?_assertEqual(xml, mod_http_clicktochat:response_format(
                          [{'Accept', <<"text/xml, application/json">>}])),
     %% Header names in any case, values in any case, split over headers.
     ?_assertEqual(json, mod_http_clicktochat:response_format(
                           [{<<"accept">>, <<"text/plain">>}, {<<"ACCEPT">>, <<"Application/Json">>}]))].

loopback_test_() ->
    [?_assert(clicktochat_api:is_loopback({127, 0, 0, 1})),
     ?_assert(clicktochat_api:is_loopback({127, 200, 3, 4})),
     ?_assert(clicktochat_api:is_loopback({0, 0, 0, 0, 0, 0, 0, 1})),
     ?_assert(clicktochat_api:is_loopback({0, 0, 0, 0, 0, 16#ffff, 16#7f00, 1})),
     ?_assertNot(clicktochat_api:is_loopback({10, 0, 0, 1})),
     ?_assertNot(clicktochat_api:is_loopback({128, 0, 0, 1})),
     ?_assertNot(clicktochat_api:is_loopback({0, 0, 0, 0, 0, 0, 0, 2})),
     ?_assertNot(clicktochat_api:is_loopback({0, 0, 0, 0, 0, 16#ffff, 16#0a00, 1}))].
