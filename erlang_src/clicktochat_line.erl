%%% clicktochat_line: what the waiting line tells people, and the slots it
%%% hands out.
%%%
%%% The line itself is in the desk (clicktochat_core), on the rotation's
%%% owner. Whatever process makes a desk call there gets back what changed:
%%% how many visitors were handed a freed slot (the desk keeps who), and
%%% the visitors whose position moved. It casts that to the owner's
%%% clicktochat_server, which calls this module: one process writes every
%%% hand-over and sends every notice, so that a visitor never sees its
%%% position go up nor a position after its assignment. The casts of
%%% different processes may arrive in any order, so neither what was
%%% handed over nor the positions are taken from them: the hand-overs are
%%% taken from the desk, in its order (an agent hears of its visitors from
%%% the line in line order), and positions are read from it when the
%%% notices go out (several changes in the mailbox make one read).
-module(clicktochat_line).

-export([changed/2, apply_changes/3, visitor_logged_in/2]).
%% Hook on the client host.
-export([session_opened/3]).

-include("logger.hrl").
-include("xmpp.hrl").
-include("clicktochat.hrl").

%% The owner's server keeps, per waiting visitor, the position it was last
%% told (a visitor the server has not told yet was told by its 202).
-type told() :: #{binary() => pos_integer()}.
-export_type([told/0]).

%% On the owner, after a desk call.
-spec changed(#instance{}, clicktochat_nif:changes()) -> ok.
changed(_Instance, {0, []}) ->
    ok;
changed(#instance{client_host = ClientHost}, {_HandedOver, Moved}) ->
    gen_server:cast({global, clicktochat_rotation:name(ClientHost)},
                    {line_changed, [V || {V, _Position, _Estimate} <- Moved]}).

%% In the owner's server: the visitors handed a slot get their agent (or,
%% gone meanwhile, give the slot back), then every visitor whose position
%% moved since it was last told hears its new one.
-spec apply_changes(#instance{}, [binary()], told()) -> told().
apply_changes(#instance{rotation = R} = Instance, Moved, Told) ->
    lists:foreach(fun({LUser, Agent}) -> hand_over(Instance, LUser, Agent) end,
                  clicktochat_nif:take_handed_over(R)),
    tell_positions(Instance, sets:from_list(Moved, [{version, 2}]), Told).

hand_over(#instance{client_host = C} = Instance, LUser, Agent) ->
    case clicktochat_assignments:hand_over(LUser, C, waiting, Agent, unasked) of
        {ok, _AssignedAt} ->
            clicktochat_notices:assigned(C, LUser, Agent),
            clicktochat_notices:new_visitor(C, Agent, LUser, from_line);
        gone ->
            %% It left between the desk's hand-over and this one.
            clicktochat_rotation:release(Instance, Agent, none)
    end.

%% A visitor the server never told learnt its position from its 202: it
%% hears again only once it has moved.
tell_positions(#instance{client_host = C, rotation = R}, Moved, Told) ->
    Tell = fun(LUser, Position, Estimate, Acc) ->
                   clicktochat_notices:waiting(C, LUser, Position, Estimate),
                   Acc#{LUser => Position}
           end,
    lists:foldl(
      fun({LUser, Position, Estimate}, Acc) ->
              case maps:find(LUser, Told) of
                  {ok, Position} -> Acc#{LUser => Position};
                  {ok, _Before} -> Tell(LUser, Position, Estimate, Acc);
                  error ->
                      case sets:is_element(LUser, Moved) of
                          true -> Tell(LUser, Position, Estimate, Acc);
                          false -> Acc
                      end
              end
      end, #{}, clicktochat_nif:line(R)).

%% sm_register_connection_hook, on the visitor's node: with the line on, a
%% visitor that logs in hears where it stands (it may have been handed its
%% agent before it logged in). The seed's clients, without a line, hear
%% nothing new.
session_opened(_SID, #jid{luser = LUser, lserver = C}, _Info) ->
    case clicktochat_instance:of_client_host(C) of
        #instance{max_waiting = MaxWaiting} when MaxWaiting > 0 ->
            case clicktochat_assignments:lookup(LUser, C) of
                none -> ok;
                _Visitor -> gen_server:cast({global, clicktochat_rotation:name(C)},
                                            {visitor_logged_in, LUser})
            end;
        _ -> ok
    end.

%% In the owner's server.
-spec visitor_logged_in(#instance{}, binary()) -> {told, pos_integer()} | unchanged.
visitor_logged_in(#instance{client_host = C, rotation = R}, LUser) ->
    case clicktochat_assignments:lookup(LUser, C) of
        #{agent := waiting} ->
            case lists:keyfind(LUser, 1, clicktochat_nif:line(R)) of
                {LUser, Position, Estimate} ->
                    clicktochat_notices:waiting(C, LUser, Position, Estimate),
                    {told, Position};
                false -> unchanged    % handed a slot: its assigned notice follows
            end;
        #{agent := Agent, assigned_at := At, registered_at := Registered} when At > Registered ->
            %% Handed a slot by the line (or passed on): its 202 did not say.
            clicktochat_notices:assigned(C, LUser, Agent),
            unchanged;
        #{} -> unchanged;       % assigned on registering: its 201 said who
        none -> unchanged
    end.
