//! The atoms the NIFs answer with. Those of arguments and of derived
//! encoders (`xml`, `from_visitor`, `embedded`, the status map's keys...)
//! come with their derives.

rustler::atoms! {
    ok, none, undefined, error, not_assigned, recorded, closed,
    assigned, waiting, line_full, no_agent_available
}
