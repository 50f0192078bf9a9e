//! Integration tests of the datafiles crate: the example project and broken projects.

mod projects;
