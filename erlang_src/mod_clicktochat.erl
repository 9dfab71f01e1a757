%%% mod_clicktochat: the gen_mod of "click to chat": options, their
%%% documentation, and starting the per-host server.
%%%
%%% One instance is active per client host: the one started on the vhost
%%% named by `client_host'. Instances started on any other vhost stay inert,
%%% so the module can be listed in the global `modules' section. The work is
%%% done by the modules it starts or that its server hooks in:
%%%   clicktochat_server       the per-host process: archive, hooks, owning the
%%%                            rotation or watching its owner, visitor_ttl timers
%%%   clicktochat_rotation     the one rotation of the cluster, and its owner
%%%   clicktochat_assignments  which visitor belongs to which agent (Mnesia)
%%%   clicktochat_assignments_keeper  those of the host on this node's disk
%%%   clicktochat_visitors     registering and ending visitors
%%%   clicktochat_presence     agents in and out of the rotation
%%%   clicktochat_guard        visitors talk to their agent only
%%%   clicktochat_capture      messages into the archive
%%%   clicktochat_api          what mod_http_clicktochat asks
%%%   clicktochat_commands     ejabberdctl
%%%   clicktochat_legacy_config  the original project's clicktochat.conf
-module(mod_clicktochat).
-behaviour(gen_mod).

-export([start/2, stop/1, depends/2, mod_opt_type/1, mod_options/1, mod_doc/0]).

-include("logger.hrl").

%%%===================================================================
%%% gen_mod
%%%===================================================================
start(Host, ModuleOpts) ->
    case clicktochat_legacy_config:resolve(ModuleOpts) of
        {ok, Opts} -> start_on(Host, Opts);
        {error, Why} ->
            ?CRITICAL_MSG("mod_clicktochat: ~ts", [Why]),
            {error, {config_file, Why}}
    end.

start_on(Host, Opts) ->
    case gen_mod:get_opt(client_host, Opts) of
        Host -> start_instance(Host, Opts);
        undefined ->
            ?CRITICAL_MSG("mod_clicktochat: option client_host is required", []),
            {error, {missing_option, client_host}};
        _OtherHost ->
            %% Listed globally: only the instance of the client host works.
            ok
    end.

start_instance(ClientHost, Opts) ->
    case check_hosts(ClientHost, gen_mod:get_opt(helpdesk_host, Opts)) of
        ok ->
            clicktochat_commands:register(),
            gen_mod:start_child(clicktochat_server, ClientHost, Opts);
        {error, Why} = Err ->
            ?CRITICAL_MSG("mod_clicktochat: ~ts", [Why]),
            Err
    end.

check_hosts(_ClientHost, undefined) ->
    {error, "option helpdesk_host is required"};
check_hosts(Host, Host) ->
    {error, "client_host and helpdesk_host must be different vhosts"};
check_hosts(_ClientHost, HelpdeskHost) ->
    case ejabberd_router:is_my_host(HelpdeskHost) of
        true -> ok;
        false ->
            {error, io_lib:format("helpdesk_host ~ts is not a vhost of this server",
                                  [HelpdeskHost])}
    end.

stop(Host) ->
    case clicktochat_instance:of_client_host(Host) of
        undefined -> ok;
        _Instance ->
            case clicktochat_instance:client_hosts() of
                [Host] -> clicktochat_commands:unregister();
                _ -> ok
            end,
            gen_mod:stop_child(clicktochat_server, Host)
    end.

depends(_Host, _Opts) -> [].

%%%===================================================================
%%% Options
%%%===================================================================
mod_opt_type(client_host) -> econf:domain();
mod_opt_type(helpdesk_host) -> econf:domain();
mod_opt_type(max_sessions) -> econf:int(1, 100000);
mod_opt_type(visitor_ttl) -> econf:timeout(second);
mod_opt_type(store) -> econf:enum([embedded, riak]);
mod_opt_type(riak_cluster) -> econf:non_empty(econf:list(econf:binary("^[^:]+:[0-9]+$")));
mod_opt_type(riak_bucket) -> econf:binary("^.+$");
mod_opt_type(riak_max_value_size) -> econf:int(4096, 64 * 1024 * 1024);
mod_opt_type(riak_push_interval) -> econf:timeout(second);
mod_opt_type(conversations_access) -> econf:acl();
mod_opt_type(config_file) -> econf:file();
mod_opt_type(max_registrations_per_minute) -> econf:non_neg_int();
mod_opt_type(max_visitors) -> econf:pos_int();
mod_opt_type(max_waiting) -> econf:int(0, 2000);
mod_opt_type(routing) -> econf:enum([round_robin, least_busy]);
mod_opt_type(answer_timeout) -> econf:timeout(second, infinity).

mod_options(_Host) ->
    [{client_host, undefined},
     {helpdesk_host, undefined},
     %% undefined: from config_file, else the default
     %% (see clicktochat_legacy_config:resolve/1).
     {max_sessions, undefined},
     {visitor_ttl, timer:seconds(300)},
     {store, embedded},
     {riak_cluster, undefined},
     {riak_bucket, <<"clicktochat">>},
     {riak_max_value_size, 512 * 1024},
     {riak_push_interval, timer:seconds(10)},
     {conversations_access, undefined},
     {config_file, undefined},
     {max_registrations_per_minute, 60},
     {max_visitors, 10000},
     {max_waiting, 0},
     {routing, round_robin},
     {answer_timeout, infinity}].

mod_doc() ->
    #{desc =>
          [<<"Click to chat: a website visitor registers a throw-away "
             "account on client_host through mod_http_clicktochat and is "
             "handed a helpdesk agent of helpdesk_host, chosen round robin "
             "(or least busy) among the agents online with a free slot, or "
             "waits in line for one.">>,
           <<"Only the instance started on client_host is active, so the "
             "module may be listed in the global modules section.">>],
      opts =>
          [{client_host,
            #{value => "Domain",
              desc => <<"Vhost of the visitors' throw-away accounts (required).">>}},
           {helpdesk_host,
            #{value => "Domain",
              desc => <<"Vhost of the helpdesk agents (required).">>}},
           {max_sessions,
            #{value => "pos_integer()",
              desc => <<"Most visitors one agent serves at once. "
                        "The default value is 5.">>}},
           {visitor_ttl,
            #{value => "timeout()",
              desc => <<"A registered visitor that has not logged in within this "
                        "time is removed and its slot freed. "
                        "The default value is 300 seconds.">>}},
           {store,
            #{value => "embedded | riak",
              desc => <<"Where conversations are archived: a file under the spool "
                        "directory, or the Riak KV cluster of riak_cluster. "
                        "The default value is embedded.">>}},
           {riak_cluster,
            #{value => "[\"Host:Port\", ...]",
              desc => <<"Riak nodes (Protocol Buffers port), tried in turn. "
                        "The default value is [\"127.0.0.1:8087\"].">>}},
           {riak_bucket,
            #{value => "Bucket",
              desc => <<"Riak bucket of the archive. "
                        "The default value is clicktochat.">>}},
           {riak_max_value_size,
            #{value => "Bytes",
              desc => <<"The most bytes one Riak value of an agent's archive "
                        "holds: past it, the older part is sealed under "
                        "Agent/1, Agent/2, ... (4096 to 64 MiB). "
                        "The default value is 524288.">>}},
           {riak_push_interval,
            #{value => "timeout()",
              desc => <<"The shortest time between two rounds of pushes to "
                        "Riak: messages committed meanwhile wait in the local "
                        "outbox (and are read from there), so that one get and "
                        "put of an agent's value carry many of them (at most an "
                        "hour). The default value is 10 seconds.">>}},
           {conversations_access,
            #{value => "AccessName",
              desc => <<"Access rule (matched against the client's IP address) "
                        "for /clicktochat/conversations/. By default only "
                        "loopback addresses may read the archive.">>}},
           {config_file,
            #{value => "Path",
              desc => <<"The original project's clicktochat.conf (Erlang terms "
                        "host_client, host_helpdesk, max_sessions, riak_cluster), "
                        "read at start; options set here take precedence.">>}},
           {max_registrations_per_minute,
            #{value => "non_neg_integer()",
              desc => <<"Registrations one client address may attempt per minute "
                        "(429 beyond; 0: no limit). The client address is the one "
                        "ejabberd_http gives, X-Forwarded-For resolved against the "
                        "global trusted_proxies option. The default value is 60.">>}},
           {max_visitors,
            #{value => "pos_integer()",
              desc => <<"Most visitor accounts alive at once (503 beyond). "
                        "The default value is 10000.">>}},
           {max_waiting,
            #{value => "non_neg_integer()",
              desc => <<"Length of the waiting line: when every agent is busy, "
                        "up to this many visitors register with 202 and their "
                        "position, and are handed the next free slot in turn "
                        "(503 line_full beyond). 0: no line, a busy desk answers "
                        "503 no_agent_available. At most 2000: every move of the "
                        "line tells everyone behind, in one scheduler slice. "
                        "The default value is 0.">>}},
           {routing,
            #{value => "round_robin | least_busy",
              desc => <<"How a visitor's agent is chosen among those with a free "
                        "slot: in turn, or the one with the fewest chats (ties: "
                        "the one whose last visitor came longest ago). "
                        "The default value is round_robin.">>}},
           {answer_timeout,
            #{value => "timeout()",
              desc => <<"An agent that has not answered its visitor's first "
                        "message within this time is skipped: the visitor goes "
                        "to another agent with a free slot (all three are told). "
                        "The default value is infinity (off).">>}}]}.
