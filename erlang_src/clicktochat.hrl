%%% What the hooks, the HTTP API and the commands need of an active
%%% mod_clicktochat instance (one per client host). Built by
%%% clicktochat_server at start and published through clicktochat_instance,
%%% so that the hot path reads it without asking any process.
-record(instance,
        {client_host :: binary(),
         helpdesk_host :: binary(),
         %% The rotation; only the owner's is used (see clicktochat_rotation).
         rotation :: reference(),
         %% The node that owns the rotation, as this node last saw it.
         owner :: node() | undefined,
         max_sessions :: pos_integer(),
         routing :: round_robin | least_busy,
         %% 0: no waiting line.
         max_waiting :: non_neg_integer(),
         %% Milliseconds, or infinity (off).
         answer_timeout :: pos_integer() | infinity,
         %% On the owner: {{Agent, Resource}, Node} of every available agent
         %% resource (an ETS table of clicktochat_server's).
         agent_nodes :: ets:tid(),
         archive :: reference(),
         conversations_access :: atom() | list() | undefined,
         registration_limiter :: reference(),
         registrations_per_minute :: non_neg_integer(),
         max_visitors :: pos_integer(),
         visitor_ttl :: pos_integer()}).
