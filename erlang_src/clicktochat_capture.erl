%%% clicktochat_capture: every chat or normal message with a body between a
%%% visitor and its own agent, in either direction, goes to the archive once
%%% (and to answer_timeout, which watches who wrote first).
%%%
%%% A message is captured where it is sent, and each message is sent by
%%% exactly one session: carbons, several resources of the agent and
%%% offline delivery are all on the receiving side. Handing it over is a
%%% channel send in the NIF; the archive's writer thread does the rest.
-module(clicktochat_capture).

-export([visitor_sent/4]).
%% Hook on the helpdesk host.
-export([agent_sends/1]).

-include("xmpp.hrl").
-include("clicktochat.hrl").

%% From clicktochat_guard:visitor_sends/1, which has read the visitor's
%% assignment and let the stanza through.
-spec visitor_sent(binary(), binary(), clicktochat_assignments:assignment(), stanza()) -> ok.
visitor_sent(U, S, #{agent := Agent, assigned_at := Start} = Assignment,
             #message{to = #jid{} = To} = Msg) ->
    case bare(To) == Agent andalso text(Msg) of
        Text when is_binary(Text), Text /= <<>> ->
            Instance = clicktochat_instance:of_client_host(S),
            record(archive(Instance), {bare({U, S}), Agent, Start * 1000}, from_visitor, Text),
            clicktochat_answers:visitor_wrote(Instance, U, Assignment);
        _ToItselfItsServerOrNoText -> ok
    end;
visitor_sent(_U, _S, _Assignment, _Pkt) ->
    ok.

%% user_send_packet: an agent's message to one of its visitors. The
%% assignment is read only for a message with a body to a client host.
agent_sends({#message{from = From, to = #jid{luser = TU, lserver = TS}} = Msg, _C2SState} = Acc)
  when TU /= <<>> ->
    Instance = clicktochat_instance:of_client_host(TS),
    Text = text(Msg),
    case Instance /= undefined andalso Text /= <<>> andalso
        clicktochat_assignments:lookup(TU, TS) of
        #{agent := Agent, assigned_at := Start} = Assignment ->
            case bare(From) of
                Agent -> record(archive(Instance), {bare({TU, TS}), Agent, Start * 1000},
                                from_agent, Text),
                         clicktochat_answers:agent_wrote(Instance, TU, Assignment);
                _NotItsAgent -> ok
            end;
        _ -> ok
    end,
    Acc;
agent_sends(Acc) ->
    Acc.

%% The body of a chat or normal message (<<>> for anything else).
text(#message{type = Type, body = [_ | _] = Body}) when Type == chat; Type == normal ->
    xmpp:get_text(Body);
text(_) ->
    <<>>.

bare(#jid{luser = U, lserver = S}) -> jid:encode({U, S, <<>>});
bare({U, S}) -> jid:encode({U, S, <<>>}).

archive(#instance{archive = Archive}) -> Archive;
archive(undefined) -> undefined.

record(undefined, _Conversation, _Direction, _Text) ->
    ok;
record(Archive, Conversation, Direction, Text) ->
    clicktochat_nif:archive_message(Archive, Conversation, Direction, Text),
    ok.
