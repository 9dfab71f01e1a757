%%% clicktochat_commands: the ejabberdctl commands of click to chat,
%%% registered while at least one instance is active.
-module(clicktochat_commands).

-export([register/0, unregister/0, get_commands_spec/0]).
-export([clicktochat_conversations/1, clicktochat_status/1]).

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
             "queue (agents in rotation order), loads, archive counters")].

%% Both commands take one binary argument and answer {ok | error, Text}.
command(Name, Desc, {Arg, ArgDesc, Example}, ResultDesc) ->
    #ejabberd_commands{name = Name, tags = [clicktochat], desc = Desc,
                       module = ?MODULE, function = Name,
                       args = [{Arg, binary}], args_desc = [ArgDesc], args_example = [Example],
                       result = {res, restuple}, result_desc = ResultDesc}.

clicktochat_status(ClientHost) ->
    case clicktochat_instance:of_client_host(jid:nameprep(ClientHost)) of
        undefined -> {error, <<"no mod_clicktochat instance on that host">>};
        #instance{rotation = Rotation, archive = Archive} ->
            Archived = clicktochat_nif:archive_status(Archive),
            {ok, iolist_to_binary(
                   [io_lib:format("queue: ~ts~n", [lists:join(" ", clicktochat_nif:queue(Rotation))]),
                    io_lib:format("loads: ~ts~n",
                                  [lists:join(" ", [[A, "=", integer_to_list(N)]
                                                    || {A, N} <- clicktochat_nif:loads(Rotation)])]),
                    [io_lib:format("archive_~ts: ~ts~n", [K, status_value(maps:get(K, Archived))])
                     || K <- lists:sort(maps:keys(Archived))]])}
    end.

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
