//! galaxy-cli as a library: the parts of the operator tooling that are worth using
//! without the binary. Today the engine contract checker ([`engine_check`]), which an
//! engine author's own tests (or the platform's) can run in-process and judge rule by
//! rule. The binary's README is the crate's user guide.

pub mod engine_check;
