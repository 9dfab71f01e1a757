%%% The SCRAM NIF against the xmpp library's own derivation (what ejabberd
%%% 23.01 stores for a password), and its refusals at the boundary.
-module(clicktochat_scram_tests).
-include_lib("eunit/include/eunit.hrl").

the_keys_are_those_ejabberds_library_derives_test_() ->
    {timeout, 60,
     fun() ->
             Password = jid:resourceprep(<<"pässwörd 1"/utf8>>),
             [begin
                  Salt = crypto:strong_rand_bytes(16),
                  Salted = scram:salted_password(Hash, Password, Salt, 4096),
                  Expected = {scram:stored_key(Hash, scram:client_key(Hash, Salted)),
                              scram:server_key(Hash, Salted)},
                  ?assertEqual(Expected, clicktochat_nif:scram_keys(Hash, Password, Salt, 4096))
              end || Hash <- [sha, sha256, sha512]]
     end}.

bad_arguments_are_badarg_test() ->
    [?assertError(badarg, apply(clicktochat_nif, scram_keys, Args))
     || Args <- [[md5, <<"pw">>, <<"salt">>, 4096],
                 [sha, "pw", <<"salt">>, 4096],
                 [sha, <<"pw">>, salt, 4096],
                 [sha, <<"pw">>, <<"salt">>, 0],
                 [sha, <<"pw">>, <<"salt">>, -1],
                 [sha, <<"pw">>, <<"salt">>, (1 bsl 20) + 1],
                 [sha, <<"pw">>, <<"salt">>, 1 bsl 40]]].
