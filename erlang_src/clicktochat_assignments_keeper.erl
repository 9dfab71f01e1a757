%%% clicktochat_assignments_keeper: keeps one client host's visitor
%%% assignments on this node's disk. The table (clicktochat_assignments) is
%%% in memory on every node; this process, started by the host's
%%% clicktochat_server, subscribes to its changes and hands each one of its
%%% client host to a redb file beside Mnesia's, which a writer thread
%%% commits in batches of at most 10 ms (clicktochat_nif:kept_*; what a
%%% crash of the node can lose is that window).
%%%
%%% At start, the table and the file are made one: when no other node holds
%%% the table and it has none of the host's visitors (this node started
%%% alone, or first after the whole cluster was down), the file's records
%%% fill it; otherwise the table is what the cluster holds, and the file is
%%% made to match it.
-module(clicktochat_assignments_keeper).
-behaviour(gen_server).

-export([start_link/1, stop/1, status/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2,
         code_change/3]).

-include("logger.hrl").

-define(CALL_TIMEOUT, 10000).

-spec start_link(binary()) -> {ok, pid()} | {error, term()}.
start_link(ClientHost) ->
    gen_server:start_link({local, name(ClientHost)}, ?MODULE, ClientHost, []).

-spec stop(pid()) -> ok.
stop(Keeper) ->
    gen_server:stop(Keeper).

%% The file writer's counters (clicktochat_nif:kept_status/1), once the
%% changes that reached the keeper so far are handed over.
-spec status(binary()) -> #{atom() => term()}.
status(ClientHost) ->
    gen_server:call(name(ClientHost), status, ?CALL_TIMEOUT).

name(ClientHost) ->
    gen_mod:get_module_proc(ClientHost, ?MODULE).

init(ClientHost) ->
    Path = filename:join(mnesia:system_info(directory),
                         <<"clicktochat_", ClientHost/binary, "_visitors.redb">>),
    case clicktochat_nif:kept_open(unicode:characters_to_binary(Path)) of
        {ok, Kept} ->
            %% Subscribed first: a change racing the start is applied after
            %% it, to the file as to the table.
            ok = clicktochat_assignments:subscribe(),
            case reconcile(ClientHost, Kept) of
                ok -> {ok, #{client_host => ClientHost, kept => Kept}};
                {error, Why} ->
                    ?CRITICAL_MSG("mod_clicktochat: cannot restore the visitors of ~ts from ~ts: ~p",
                                  [ClientHost, Path, Why]),
                    clicktochat_nif:kept_close(Kept),
                    {stop, {restore_failed, Why}}
            end;
        {error, Why} ->
            ?CRITICAL_MSG("mod_clicktochat: cannot open ~ts: ~ts", [Path, Why]),
            {stop, {kept_open_failed, Why}}
    end.

reconcile(ClientHost, Kept) ->
    Records = clicktochat_assignments:records(ClientHost),
    case clicktochat_assignments:held_elsewhere() orelse Records /= [] of
        false ->
            %% Written back, the records come back as changes: the file
            %% gets what it has (harmless, once a start).
            case clicktochat_nif:kept_all(Kept) of
                {ok, Rows} ->
                    try [binary_to_term(Value, [safe]) || {_LUser, Value} <- Rows] of
                        [] -> ok;
                        Restored ->
                            ?INFO_MSG("mod_clicktochat: ~B visitors of ~ts restored",
                                      [length(Restored), ClientHost]),
                            clicktochat_assignments:restore(Restored)
                    catch error:badarg -> {error, not_a_record}
                    end;
                {error, _} = Err -> Err
            end;
        true ->
            clicktochat_nif:kept_replace_all(
              Kept, [{LUser, term_to_binary(R)} || {LUser, R} <- Records])
    end.

handle_call(status, _From, #{kept := Kept} = State) ->
    {reply, clicktochat_nif:kept_status(Kept), State};
handle_call(_Request, _From, State) ->
    {reply, {error, badarg}, State}.

handle_cast(_Msg, State) ->
    {noreply, State}.

handle_info(Info, #{client_host := ClientHost, kept := Kept} = State) ->
    case clicktochat_assignments:change(Info, ClientHost) of
        {put, LUser, Record} -> clicktochat_nif:kept_put(Kept, LUser, term_to_binary(Record));
        {delete, LUser} -> clicktochat_nif:kept_delete(Kept, LUser);
        other -> ok
    end,
    {noreply, State}.

terminate(_Reason, #{kept := Kept}) ->
    %% Commits what was handed over and frees the file for the next start.
    clicktochat_nif:kept_close(Kept).

code_change(_OldVsn, State, _Extra) -> {ok, State}.
