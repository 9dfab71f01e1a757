/* The NIF floor for rotation_bench: what calling a NIF costs when the NIF
 * does nothing. Same names and arities as the desk's hot path
 * (clicktochat_nif:enter/2 and release/3); both answer the atom ok, made
 * once at load so that no call looks an atom up.
 *
 * Built by `make bench` into _build/bench (gcc, -I the VM's include dir). */
#include <erl_nif.h>

static ERL_NIF_TERM atom_ok;

static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info)
{
    (void)priv_data;
    (void)load_info;
    atom_ok = enif_make_atom(env, "ok");
    return 0;
}

static ERL_NIF_TERM enter(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)env;
    (void)argc;
    (void)argv;
    return atom_ok;
}

static ERL_NIF_TERM release(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])
{
    (void)env;
    (void)argc;
    (void)argv;
    return atom_ok;
}

static ErlNifFunc funcs[] = {
    {"enter", 2, enter, 0},
    {"release", 3, release, 0},
};

ERL_NIF_INIT(floor_nif, funcs, load, NULL, NULL, NULL)
