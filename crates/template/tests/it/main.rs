//! Integration tests of the template crate.

mod differential;
mod properties;
mod render;
