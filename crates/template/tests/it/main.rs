//! Integration tests of the template crate.

mod differential;
