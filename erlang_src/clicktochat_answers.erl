%%% clicktochat_answers: answer_timeout. A visitor whose agent has not
%%% answered its first message within answer_timeout is passed on to
%%% another agent with a free slot (both agents are told, and the visitor);
%%% the first agent's slot is freed.
%%%
%%% The assignment records where the chat stands (unasked, asked, answered;
%%% each step a transaction taken once per chat), and the timer lives on the
%%% rotation's owner with the visitor_ttl timers. A timer names the chat it
%%% was armed for (the visitor and the chat's start), so one that fires after
%%% the agent answered, the visitor ended or it was passed on does nothing.
%%% Off (infinity, the default), none of this costs anything.
-module(clicktochat_answers).

-export([visitor_wrote/3, agent_wrote/3, expired/3]).

-include("clicktochat.hrl").

%% The visitor wrote to its agent (from clicktochat_capture): its first
%% message starts the clock.
-spec visitor_wrote(#instance{} | undefined, binary(),
                    clicktochat_assignments:assignment()) -> ok.
visitor_wrote(#instance{answer_timeout = Timeout, client_host = C}, LUser,
              #{answer := unasked, assigned_at := Start}) when Timeout /= infinity ->
    case clicktochat_assignments:note_answer(LUser, C, Start, {unasked, asked}) of
        ok -> clicktochat_server:arm_answer_timeout(C, LUser, Start);
        gone -> ok
    end;
visitor_wrote(_Instance, _LUser, _Assignment) ->
    ok.

%% The agent wrote to its visitor: it has answered (or spoke first).
-spec agent_wrote(#instance{}, binary(), clicktochat_assignments:assignment()) -> ok.
agent_wrote(#instance{answer_timeout = Timeout, client_host = C}, LUser,
            #{answer := Answer, assigned_at := Start}) when Timeout /= infinity,
                                                           Answer /= answered ->
    clicktochat_assignments:note_answer(LUser, C, Start, {Answer, answered}),
    ok;
agent_wrote(_Instance, _LUser, _Assignment) ->
    ok.

%% In the owner's server, when the timer of the chat that started at Start
%% fires. Passing on takes the new agent's slot first and hands the visitor
%% over in Mnesia second: if the visitor ended in between, the new slot is
%% given back and the first agent's is freed by the visitor's own end, so
%% no slot is counted twice or lost. With no other agent free, the visitor
%% stays and the clock starts again.
-spec expired(#instance{}, binary(), integer()) -> ok | {again, integer()}.
expired(#instance{client_host = C, answer_timeout = Timeout} = Instance, LUser, Start) ->
    case clicktochat_assignments:lookup(LUser, C) of
        #{agent := From, assigned_at := Start, answer := asked} when From /= waiting ->
            case clicktochat_rotation:pass_on(Instance, LUser, From) of
                {ok, To} ->
                    case clicktochat_assignments:hand_over(LUser, C, From, To, asked) of
                        {ok, NewStart} ->
                            clicktochat_rotation:release(Instance, From, none),
                            clicktochat_notices:assigned(C, LUser, To),
                            clicktochat_notices:new_visitor(C, To, LUser, passed_on),
                            clicktochat_notices:passed_on(C, From, LUser, To, Timeout div 1000),
                            {again, NewStart};
                        gone ->
                            clicktochat_rotation:release(Instance, To, none)
                    end;
                none -> {again, Start}
            end;
        _AnsweredEndedOrAnotherChat -> ok
    end.
