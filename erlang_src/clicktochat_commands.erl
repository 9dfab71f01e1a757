%%% clicktochat_commands: the ejabberdctl commands of click to chat,
%%% registered while at least one instance is active.
-module(clicktochat_commands).

-export([register/0, unregister/0, get_commands_spec/0]).
-export([clicktochat_conversations/1, clicktochat_status/1, clicktochat_line/1]).

-include("ejabberd_commands.hrl").
-include("clicktochat.hrl").

register() ->
    ejabberd_commands:register_commands(?MODULE, get_commands_spec()).

unregister() ->
    ejabberd_commands:unregister_commands(get_commands_spec()).

get_commands_spec() ->
    [command(clicktochat_conversations, "Print an agent's archived conversations (XML)",
             {agent, "Bare JID of the helpdesk agent", <<"agent1@helpdesk.example.com">>},
             "The archive, as GET /clicktochat/conversations/<agent> returns it"),
     command(clicktochat_status, "Print the rotation and the archive writer's state of a client host",
             {host, "The client_host of a mod_clicktochat instance", <<"clients.example.com">>},
             "owner node, queue (agents in rotation order), loads, agents per node, "
             "the waiting line's length and a newcomer's estimated wait, "
             "this node's archive counters and those of its copy of the assignments on disk"),
     command(clicktochat_line, "Print the waiting line of a client host",
             {host, "The client_host of a mod_clicktochat instance", <<"clients.example.com">>},
             "one visitor per line, head first: position, JID, estimated wait")].

%% Both commands take one binary argument and answer {ok | error, Text}.
command(Name, Desc, {Arg, ArgDesc, Example}, ResultDesc) ->
    #ejabberd_commands{name = Name, tags = [clicktochat], desc = Desc,
                       module = ?MODULE, function = Name,
                       args = [{Arg, binary}], args_desc = [ArgDesc], args_example = [Example],
                       result = {res, restuple}, result_desc = ResultDesc}.

%% The cluster's view: which node owns the rotation, its queue and loads,
%% each node's available agents; then this node's archive writer and the
%% writer of its assignments on disk.
clicktochat_status(ClientHost) ->
    LHost = jid:nameprep(ClientHost),
    case clicktochat_instance:of_client_host(LHost) of
        undefined -> {error, <<"no mod_clicktochat instance on that host">>};
        #instance{archive = Archive} ->
            Rotation = case clicktochat_rotation:view(LHost) of
                           {ok, Owner, Queue, Loads, PerNode, Line} ->
                               [io_lib:format("owner: ~ts~n", [Owner]),
                                io_lib:format("queue: ~ts~n", [lists:join(" ", Queue)]),
                                io_lib:format("loads: ~ts~n",
                                              [lists:join(" ", [[A, "=", integer_to_list(N)]
                                                                || {A, N} <- Loads])]),
                                [io_lib:format("agents_on ~ts: ~ts~n", [Node, lists:join(" ", Agents)])
                                 || {Node, Agents} <- PerNode],
                                io_lib:format("waiting: ~b~n", [length(Line)]),
                                io_lib:format("estimated_wait: ~ts~n",
                                              [estimate(newcomer_estimate(LHost))])];
                           unavailable -> "owner: none\n"
                       end,
            Archived = clicktochat_nif:archive_status(Archive),
            Kept = clicktochat_assignments_keeper:status(LHost),
            {ok, iolist_to_binary(
                   [Rotation, counters("archive", Archived), counters("kept", Kept)])}
    end.

counters(Prefix, Counters) ->
    [io_lib:format("~ts_~ts: ~ts~n", [Prefix, K, status_value(maps:get(K, Counters))])
     || K <- lists:sort(maps:keys(Counters))].

%% The line, head first, one visitor per line:
%% "Position Visitor waited Ns estimated_wait=S".
clicktochat_line(ClientHost) ->
    LHost = jid:nameprep(ClientHost),
    case clicktochat_instance:of_client_host(LHost) =/= undefined andalso
        clicktochat_rotation:view(LHost) of
        false -> {error, <<"no mod_clicktochat instance on that host">>};
        {ok, _Owner, _Queue, _Loads, _PerNode, Line} ->
            Now = erlang:system_time(millisecond),
            {ok, iolist_to_binary(
                   [io_lib:format("~b ~ts@~ts waited ~bs estimated_wait=~ts~n",
                                  [Position, LUser, LHost, waited(LUser, LHost, Now),
                                   estimate(Estimate)])
                    || {LUser, Position, Estimate} <- Line])};
        unavailable -> {error, <<"the rotation's owner did not answer">>}
    end.

waited(LUser, LHost, Now) ->
    case clicktochat_assignments:lookup(LUser, LHost) of
        #{registered_at := At} -> max(0, Now - At) div 1000;
        none -> 0
    end.

newcomer_estimate(LHost) ->
    case clicktochat_api:status(LHost) of
        {ok, {_Agents, _FreeSlots, _Waiting, Estimate}} -> Estimate;
        {error, _} -> undefined
    end.

estimate(undefined) -> "unknown";
estimate(Seconds) -> integer_to_list(Seconds).

status_value(nil) -> "none";
status_value(N) when is_integer(N) -> integer_to_list(N);
status_value(Text) -> Text.

clicktochat_conversations(AgentJid) ->
    case clicktochat_api:read_conversations(AgentJid) of
        {ok, Xml} -> {ok, ascii_xml(Xml)};
        {error, Why} when is_atom(Why) -> {error, atom_to_binary(Why)};
        {error, Why} -> {error, Why}
    end.

%% ejabberdctl prints results in the node's I/O encoding (latin1 here): with
%% every non-ASCII character as an XML character reference, the document
%% reaches any terminal intact.
ascii_xml(Xml) ->
    << <<(if C < 128 -> <<C>>;
             true -> iolist_to_binary(["&#", integer_to_list(C), ";"])
          end)/binary>> || <<C/utf8>> <= Xml >>.
