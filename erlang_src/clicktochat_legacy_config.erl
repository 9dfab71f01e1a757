%%% clicktochat_legacy_config: the original project's `clicktochat.conf'
%%% (Erlang terms `host_client', `host_helpdesk', `max_sessions',
%%% `riak_cluster'), read when the `config_file' option names it, and the
%%% defaults of the options that may come from it.
%%%
%%% An option set in ejabberd's configuration wins over the file's; the file
%%% wins over the defaults. Pure but for reading the file (tested by eunit:
%%% test/eunit/clicktochat_legacy_config_tests.erl).
-module(clicktochat_legacy_config).

-export([resolve/1, resolve/2, options/1]).

%% Options whose default depends on the file: mod_options/1 gives them as
%% undefined, so that "not set" can be told from "set to the default".
-define(DEFAULTS, #{max_sessions => 5, riak_cluster => [<<"127.0.0.1:8087">>]}).

%% The module's options with config_file's and the defaults filled in.
-spec resolve(map()) -> {ok, map()} | {error, iodata()}.
resolve(Opts) ->
    case maps:get(config_file, Opts, undefined) of
        undefined -> {ok, resolve(Opts, #{})};
        Path ->
            case file:consult(Path) of
                {ok, Terms} ->
                    try {ok, resolve(Opts, options(Terms))}
                    catch throw:{bad_value, Term} ->
                            {error, io_lib:format("~ts: bad value ~p", [Path, Term])}
                    end;
                {error, Reason} ->
                    {error, io_lib:format("cannot read ~ts: ~ts",
                                          [Path, file:format_error(Reason)])}
            end
    end.

%% Fills every undefined option from FromFile, then from the defaults.
-spec resolve(map(), map()) -> map().
resolve(Opts, FromFile) ->
    maps:map(fun(Key, undefined) ->
                     maps:get(Key, FromFile, maps:get(Key, ?DEFAULTS, undefined));
                (_Key, Value) -> Value
             end, Opts).

%% The module options a clicktochat.conf's terms give. Keys the seed had
%% that mean nothing here (riak_erlang_client...) are ignored; a bad value
%% of a key we read throws {bad_value, Term}.
-spec options([term()]) -> map().
options(Terms) ->
    maps:from_list(lists:filtermap(fun option/1, Terms)).

option({host_client, Host}) -> {true, {client_host, host(Host)}};
option({host_helpdesk, Host}) -> {true, {helpdesk_host, host(Host)}};
option({max_sessions, N}) when is_integer(N), N >= 1, N =< 100000 ->
    {true, {max_sessions, N}};
option({max_sessions, _} = Term) -> throw({bad_value, Term});
option({riak_cluster, Nodes}) -> {true, {riak_cluster, riak_nodes(Nodes)}};
option(_) -> false.

%% Checked as ejabberd checks the client_host option itself (econf:domain()).
host(Host) when is_list(Host); is_binary(Host); is_atom(Host) ->
    try yconf:validate(econf:domain(), iolist_to_binary(io_lib:format("~ts", [Host]))) of
        {ok, Name} -> Name;
        _ -> throw({bad_value, Host})
    catch _:_ -> throw({bad_value, Host})
    end;
host(Host) -> throw({bad_value, Host}).

%% [{"10.0.0.1", 8087}, ...], ["10.0.0.1:8087", ...] or one such node.
riak_nodes({_Host, _Port} = Node) -> [node_address(Node)];
riak_nodes([C | _] = Node) when is_integer(C) -> [node_address(Node)];
riak_nodes([_ | _] = Nodes) -> [node_address(N) || N <- Nodes];
riak_nodes(Other) -> throw({bad_value, Other}).

node_address({Host, Port}) when is_integer(Port), Port > 0, Port < 65536 ->
    Name = case Host of
               {_, _, _, _} -> inet:ntoa(Host);
               _ when is_list(Host); is_atom(Host); is_binary(Host) -> io_lib:format("~ts", [Host]);
               _ -> throw({bad_value, Host})
           end,
    iolist_to_binary([Name, ":", integer_to_list(Port)]);
node_address(Node) when is_list(Node); is_binary(Node) ->
    Bin = iolist_to_binary(Node),
    case re:run(Bin, "^[^:]+:[0-9]+$") of
        {match, _} -> Bin;
        nomatch -> throw({bad_value, Node})
    end;
node_address(Node) -> throw({bad_value, Node}).
