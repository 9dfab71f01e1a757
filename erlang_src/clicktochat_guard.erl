%%% clicktochat_guard: a visitor talks to its agent and nobody else.
%%%
%%% A visitor's account exchanges stanzas with its agent, itself and its
%%% server (pings, roster, disco) only: it cannot message, subscribe to or
%%% join anyone else, nor change its password or manage accounts
%%% (jabber:iq:register); and only its agent and its server reach it.
%%% Throw-away accounts are no spam relay. A visitor waiting in the line
%%% has no agent yet: it talks to itself and its server only. Each hook
%%% reads the visitor's assignment once; what the visitor may send goes on
%%% to the archive capture with the assignment in hand.
-module(clicktochat_guard).

%% Hooks on the client host, before anything else sees the stanza.
-export([visitor_sends/1, visitor_receives/1]).

-include("xmpp.hrl").
-include("clicktochat.hrl").

%% user_send_packet.
visitor_sends({Pkt, #{jid := #jid{luser = U, lserver = S}} = State} = Acc)
  when is_tuple(Pkt) ->
    case clicktochat_assignments:lookup(U, S) of
        none -> Acc;
        #{agent := Agent} = Assignment ->
            case may_send(Pkt, U, S, Agent) of
                true ->
                    clicktochat_capture:visitor_sent(U, S, Assignment, Pkt),
                    Acc;
                false when Agent == waiting ->
                    refuse(Pkt, <<"A visitor in the waiting line has no agent yet">>),
                    {drop, State};
                false ->
                    refuse(Pkt, <<"A visitor may only talk to its agent">>),
                    {drop, State}
            end
    end;
visitor_sends(Acc) ->
    Acc.

%% user_receive_packet.
visitor_receives({Pkt, #{jid := #jid{luser = U, lserver = S}} = State} = Acc)
  when is_tuple(Pkt) ->
    case clicktochat_assignments:lookup(U, S) of
        none -> Acc;
        #{agent := Agent} ->
            case may_receive(Pkt, U, S, Agent) of
                true -> Acc;
                false ->
                    refuse(Pkt, <<"This visitor only talks to its agent">>),
                    {drop, State}
            end
    end;
visitor_receives(Acc) ->
    Acc.

may_send(Pkt, U, S, Agent) ->
    case xmpp:get_to(Pkt) of
        #jid{luser = U, lserver = S} -> true;
        #jid{luser = <<>>, lserver = S} -> not is_account_management(Pkt);
        #jid{luser = TU, lserver = TS} -> is_agent(TU, TS, Agent);
        undefined -> true
    end.

%% Our own bounces (refuse/2) come from whoever the visitor wrote to.
may_receive(Pkt, U, S, Agent) ->
    xmpp:get_meta(Pkt, clicktochat_refusal, false) orelse from_peer(Pkt, U, S, Agent).

from_peer(Pkt, U, S, Agent) ->
    case xmpp:get_from(Pkt) of
        #jid{luser = <<>>, lserver = S} -> true;
        #jid{luser = U, lserver = S} -> true;
        #jid{luser = FU, lserver = FS} -> is_agent(FU, FS, Agent);
        _ -> true
    end.

is_agent(_U, _S, waiting) -> false;
is_agent(U, S, Agent) -> jid:encode({U, S, <<>>}) == Agent.

is_account_management(#iq{type = set} = IQ) ->
    lists:any(fun(El) -> xmpp:get_ns(El) == <<"jabber:iq:register">> end, xmpp:get_els(IQ));
is_account_management(_) -> false.

%% Bounces a not-allowed error to the sender, except for stanzas that must
%% never be answered (errors, IQ results, unavailable presence).
refuse(#iq{type = T}, _Text) when T == result; T == error -> ok;
refuse(#message{type = error}, _Text) -> ok;
refuse(#presence{type = T}, _Text) when T == error; T == unavailable -> ok;
refuse(Pkt, Text) ->
    Bounce = xmpp:make_error(Pkt, xmpp:err_not_allowed(Text, xmpp:get_lang(Pkt))),
    ejabberd_router:route(xmpp:put_meta(Bounce, clicktochat_refusal, true)).
