%%% clicktochat_accounts: a visitor's throw-away account, created through
%%% ejabberd_auth like any other (its checks, its stores and their cache, its
%%% register_user hook).
%%%
%%% Where the host keeps SCRAM (Debian's default), ejabberd 23.01 turns the
%%% password into its SCRAM record with the xmpp library's PBKDF2, written in
%%% Erlang: ~15 ms of CPU, nearly all of a registration. Here the same record
%%% is made first, with the PBKDF2 of our NIF (a dirty CPU scheduler, ~1.5
%%% ms), and handed to ejabberd_auth whole, which stores a record as it
%%% comes. It is the record ejabberd would make (ejabberd_auth's
%%% password_to_scram/2): the host's auth_scram_hash, 4 096 rounds, 16 random
%%% bytes of salt, the keys in base64, the password normalised by
%%% resourceprep first (and refused, as ejabberd refuses it, if that fails).
-module(clicktochat_accounts).

-export([create/3]).

-include("scram.hrl").

%% ejabberd_auth's own count of rounds for a new password, and its salt.
-define(ITERATIONS, 4096).
-define(SALT_BYTES, 16).

%% ejabberd_auth:try_register/3's answers.
-spec create(binary(), binary(), binary()) -> ok | {error, atom()}.
create(LUser, Host, Password) ->
    case stores_scram(Host) of
        true ->
            case scram(Host, Password) of
                {ok, Scram} -> ejabberd_auth:try_register(LUser, Host, Scram);
                error -> {error, invalid_password}
            end;
        false ->
            ejabberd_auth:try_register(LUser, Host, Password)
    end.

%% Whether every store that can register an account on the host keeps SCRAM:
%% ejabberd_auth tries them in turn, turning the password into SCRAM for
%% those that do and handing it as it is to the others, so a record made here
%% fits only if all of them do.
stores_scram(Host) ->
    Registering = [Module || Module <- ejabberd_auth:auth_modules(Host),
                             erlang:function_exported(Module, try_register, 3)],
    Registering /= [] andalso
        lists:all(fun(Module) -> Module:store_type(Host) == scram end, Registering).

scram(_Host, <<>>) ->
    error;
scram(Host, Password) ->
    case jid:resourceprep(Password) of
        error -> error;
        Normalised ->
            Hash = ejabberd_option:auth_scram_hash(Host),
            Salt = crypto:strong_rand_bytes(?SALT_BYTES),
            {StoredKey, ServerKey} =
                clicktochat_nif:scram_keys(Hash, Normalised, Salt, ?ITERATIONS),
            {ok, #scram{storedkey = base64:encode(StoredKey),
                        serverkey = base64:encode(ServerKey),
                        salt = base64:encode(Salt),
                        hash = Hash,
                        iterationcount = ?ITERATIONS}}
    end.
