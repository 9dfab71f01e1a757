%%% What the hooks, the HTTP API and the commands need of an active
%%% mod_clicktochat instance (one per client host). Built by
%%% clicktochat_server at start and published through clicktochat_instance,
%%% so that the hot path reads it without asking any process.
-record(instance,
        {client_host :: binary(),
         helpdesk_host :: binary(),
         rotation :: reference(),
         archive :: reference(),
         conversations_access :: atom() | list() | undefined,
         registration_limiter :: reference(),
         registrations_per_minute :: non_neg_integer(),
         max_visitors :: pos_integer(),
         visitor_ttl :: pos_integer()}).
