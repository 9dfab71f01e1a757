//! The places where the desk's hot path (enter, release: a few hundred ns)
//! goes under rustler to the NIF API, each because rustler's way cost a
//! measurable share of the pair (perf, `make bench-rotation`):
//!
//! - [`resource_type!`]: a resource type of our own, its pointer kept in a
//!   static. Rustler finds its resource types on every decode in a
//!   `HashMap<TypeId, _>` hashed with SipHash (11% of enter + release) and
//!   takes and drops a reference (two atomic operations); here a decode is a
//!   pointer load and `enif_get_resource`, and the answer borrows the
//!   resource for the call, which the caller's term keeps alive.
//! - [`nif_without_vec!`]: registers a NIF as `#[rustler::nif]` does
//!   (arguments decoded under `catch_unwind`, errors raised the same way),
//!   without the `Vec` that the macro collects the arguments into: a
//!   `malloc` and a `free` on every call (8% of the pair).
//! - [`Object::binary`]: a binary pointing into a resource's memory
//!   (`enif_make_resource_binary`), for the desk's answer of an agent's name,
//!   which `release` then finds by address (rustler has it only for its own
//!   resource types, which the first point leaves).
//!
//! Nothing here trusts a term: a term of any other type, or a wrong number
//! of arguments, is `badarg`.

use rustler::sys::{
    c_void, enif_alloc_resource, enif_get_resource, enif_make_resource, enif_make_resource_binary,
    enif_open_resource_type, enif_release_resource, ErlNifEnv, ErlNifResourceFlags,
    ErlNifResourceType, ErlNifTerm,
};
use rustler::{Env, Error, NifResult, Term};
use std::ffi::CStr;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A resource type of `T`, opened by [`ResourceType::open`] at load.
pub struct ResourceType<T> {
    handle: AtomicPtr<ErlNifResourceType>,
    _type: PhantomData<fn(T) -> T>,
}

impl<T: Send + Sync + 'static> ResourceType<T> {
    pub const fn new() -> Self {
        ResourceType {
            handle: AtomicPtr::new(std::ptr::null_mut()),
            _type: PhantomData,
        }
    }

    /// Bytes to allocate: the value and room to align it (the VM aligns a
    /// resource on 8 bytes; `T` may need 16).
    const SIZE: usize = std::mem::size_of::<T>() + std::mem::align_of::<T>();

    /// Opens the type (from the NIF library's `load`): whether it worked.
    pub fn open(&self, env: Env, name: &CStr) -> bool {
        let mut tried = ErlNifResourceFlags::ERL_NIF_RT_CREATE;
        // SAFETY: called from `load` with its environment; `drop_value::<T>`
        // is the destructor of exactly the objects `make` allocates.
        let handle = unsafe {
            enif_open_resource_type(
                env.as_c_arg(),
                std::ptr::null(),
                name.as_ptr(),
                Some(drop_value::<T>),
                ErlNifResourceFlags::ERL_NIF_RT_CREATE,
                &mut tried,
            )
        };
        self.handle
            .store(handle as *mut ErlNifResourceType, Ordering::Release);
        !handle.is_null()
    }

    /// A new resource holding `value`, as a term of `env`.
    pub fn make<'a>(&self, env: Env<'a>, value: T) -> NifResult<Term<'a>> {
        let handle = self.handle.load(Ordering::Acquire);
        if handle.is_null() {
            return Err(Error::RaiseAtom("resource_type_not_open"));
        }
        // SAFETY: the allocation has room for a `T` at its aligned address,
        // which is written before the term exists; the term keeps the
        // resource alive once our reference is released.
        unsafe {
            let raw = enif_alloc_resource(handle, Self::SIZE);
            if raw.is_null() {
                return Err(Error::RaiseAtom("enomem"));
            }
            aligned::<T>(raw).write(value);
            let term = enif_make_resource(env.as_c_arg(), raw);
            enif_release_resource(raw);
            Ok(Term::new(env, term))
        }
    }

    /// The resource object of a term of this type, its value borrowed for
    /// as long as the term's environment lives; `badarg` for any other
    /// term.
    pub fn get<'a>(&self, term: Term<'a>) -> NifResult<Object<'a, T>> {
        let handle = self.handle.load(Ordering::Acquire);
        if handle.is_null() {
            return Err(Error::BadArg);
        }
        let mut raw: *const c_void = std::ptr::null();
        // SAFETY: `enif_get_resource` checks the term's type against
        // `handle`; an object of this type holds a `T` written by `make`, and
        // the term (in `'a`'s environment) keeps it alive.
        unsafe {
            if enif_get_resource(term.get_env().as_c_arg(), term.as_c_arg(), handle, &mut raw) == 0
                || raw.is_null()
            {
                return Err(Error::BadArg);
            }
            Ok(Object {
                value: &*aligned::<T>(raw),
                raw,
            })
        }
    }
}

/// A resource object borrowed from a term of the call: its value, and the
/// object, which a binary can point into.
pub struct Object<'a, T> {
    pub value: &'a T,
    raw: *const c_void,
}

impl<'a, T> Object<'a, T> {
    /// `bytes` as a binary of `env` that is not a copy but points at them,
    /// and keeps the resource alive for as long as the binary lives
    /// (`enif_make_resource_binary`).
    ///
    /// # Safety
    /// `bytes` must stay where they are, unchanged, for as long as the
    /// resource lives: memory the resource's value owns and never moves,
    /// writes over or frees before it is dropped.
    pub unsafe fn binary(&self, env: Env<'a>, bytes: &[u8]) -> Term<'a> {
        // SAFETY: `raw` is a live resource object (the call's term holds
        // it); the binary takes its own reference on it, and the caller
        // vouches for the bytes for the object's life.
        unsafe {
            Term::new(
                env,
                enif_make_resource_binary(
                    env.as_c_arg(),
                    self.raw,
                    bytes.as_ptr().cast(),
                    bytes.len(),
                ),
            )
        }
    }
}

/// Where a `T` lives in an allocation of `ResourceType::<T>::SIZE` bytes.
fn aligned<T>(raw: *const c_void) -> *mut T {
    let offset = raw.cast::<u8>().align_offset(std::mem::align_of::<T>());
    raw.cast::<u8>().wrapping_add(offset).cast::<T>().cast_mut()
}

/// The destructor the VM calls when the last reference goes.
unsafe extern "C" fn drop_value<T>(_env: *mut ErlNifEnv, raw: *mut c_void) {
    // SAFETY: `raw` is an object `make` wrote a `T` into, dropped once.
    unsafe { std::ptr::drop_in_place(aligned::<T>(raw)) }
}

/// The arguments of a NIF call as terms of its environment.
pub fn args<'a, const N: usize>(env: Env<'a>, args: &[ErlNifTerm]) -> NifResult<[Term<'a>; N]> {
    let args: &[ErlNifTerm; N] = args.try_into().map_err(|_| Error::BadArg)?;
    // SAFETY: the VM's arguments are terms of the call's environment.
    Ok(args.map(|term| unsafe { Term::new(env, term) }))
}

/// Registers `$fun(env, args) -> NifResult<Term>` as the NIF `$name/$arity`
/// on a normal scheduler: what `#[rustler::nif]` registers, less the `Vec`.
macro_rules! nif_without_vec {
    ($name:literal, $arity:literal, $fun:path) => {
        rustler::codegen_runtime::inventory::submit!(rustler::Nif {
            name: concat!($name, "\0").as_ptr() as *const rustler::codegen_runtime::c_char,
            arity: $arity,
            flags: 0,
            raw_func: {
                unsafe extern "C" fn nif_func(
                    env: *mut rustler::sys::ErlNifEnv,
                    argc: rustler::codegen_runtime::c_int,
                    argv: *const rustler::sys::ErlNifTerm,
                ) -> rustler::sys::ErlNifTerm {
                    let lifetime = ();
                    // SAFETY: the VM calls with its environment and `argc`
                    // terms at `argv`.
                    let env = unsafe { rustler::Env::new(&lifetime, env) };
                    let args: &[rustler::sys::ErlNifTerm] = match usize::try_from(argc) {
                        Ok(argc) if !argv.is_null() => unsafe {
                            std::slice::from_raw_parts(argv, argc)
                        },
                        _ => &[],
                    };
                    let result = std::panic::catch_unwind(move || $fun(env, args));
                    // SAFETY: as rustler's generated NIFs answer.
                    unsafe { rustler::codegen_runtime::handle_nif_result(result, env).apply(env) }
                }
                nif_func
            },
        });
    };
}

pub(crate) use nif_without_vec;
