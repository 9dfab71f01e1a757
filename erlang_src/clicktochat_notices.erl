%%% clicktochat_notices: the headline messages of the waiting line and of
%%% answer_timeout, from the client host's own address. Each carries a
%%% payload a program reads (namespace urn:xmpp:clicktochat:0) and a body a
%%% person reads. A visitor's notices go to each of its sessions' full JIDs
%%% (a visitor need not have sent presence); an agent's to its bare JID
%%% (every available resource). Headlines are never stored offline.
-module(clicktochat_notices).

-export([waiting/4, assigned/3, new_visitor/4, passed_on/5]).

-include("xmpp.hrl").

-define(NS, <<"urn:xmpp:clicktochat:0">>).

-spec waiting(binary(), binary(), pos_integer(), non_neg_integer() | undefined) -> ok.
waiting(ClientHost, LUser, Position, Estimate) ->
    {EstimateAttrs, EstimateText} =
        case Estimate of
            undefined -> {[], <<>>};
            Seconds -> {[{<<"estimated_wait">>, integer_to_binary(Seconds)}],
                        [<<" Estimated wait: about ">>, duration(Seconds), <<".">>]}
        end,
    to_visitor(ClientHost, LUser,
               payload(<<"waiting">>, [{<<"position">>, integer_to_binary(Position)}
                                       | EstimateAttrs]),
               [<<"You are number ">>, integer_to_binary(Position), <<" in line.">>,
                EstimateText]).

-spec assigned(binary(), binary(), binary()) -> ok.
assigned(ClientHost, LUser, Agent) ->
    to_visitor(ClientHost, LUser, payload(<<"assigned">>, [{<<"agent">>, Agent}]),
               [Agent, <<" will chat with you now.">>]).

%% To the agent: a visitor from the line, or passed on to it by
%% answer_timeout.
-spec new_visitor(binary(), binary(), binary(), from_line | passed_on) -> ok.
new_visitor(ClientHost, Agent, LUser, Reason) ->
    Visitor = jid:encode({LUser, ClientHost, <<>>}),
    to_agent(ClientHost, Agent,
             payload(<<"visitor">>, [{<<"jid">>, Visitor},
                                     {<<"reason">>, atom_to_binary(Reason)}]),
             case Reason of
                 from_line -> [<<"New visitor from the waiting line: ">>, Visitor];
                 passed_on -> [<<"New visitor, passed on to you: ">>, Visitor,
                               <<" is waiting for an answer.">>]
             end).

%% To the agent that did not answer in time.
-spec passed_on(binary(), binary(), binary(), binary(), pos_integer()) -> ok.
passed_on(ClientHost, Agent, LUser, To, TimeoutSeconds) ->
    Visitor = jid:encode({LUser, ClientHost, <<>>}),
    to_agent(ClientHost, Agent,
             payload(<<"passed_on">>, [{<<"visitor">>, Visitor}, {<<"to">>, To}]),
             [Visitor, <<" was passed on to ">>, To, <<" (no answer within ">>,
              duration(TimeoutSeconds), <<").">>]).

payload(Name, Attrs) ->
    #xmlel{name = Name, attrs = [{<<"xmlns">>, ?NS} | Attrs]}.

to_visitor(ClientHost, LUser, Payload, Body) ->
    lists:foreach(fun(Resource) ->
                          send(ClientHost, jid:make(LUser, ClientHost, Resource), Payload, Body)
                  end, ejabberd_sm:get_user_resources(LUser, ClientHost)).

to_agent(ClientHost, Agent, Payload, Body) ->
    send(ClientHost, jid:decode(Agent), Payload, Body).

send(ClientHost, To, Payload, Body) ->
    ejabberd_router:route(#message{from = jid:make(ClientHost), to = To, type = headline,
                                   body = [#text{data = iolist_to_binary(Body)}],
                                   sub_els = [Payload]}).

duration(1) ->
    <<"1 second">>;
duration(Seconds) when Seconds < 120 ->
    [integer_to_binary(Seconds), <<" seconds">>];
duration(Seconds) ->
    [integer_to_binary((Seconds + 30) div 60), <<" minutes">>].
