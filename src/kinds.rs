//! The stage kinds this build knows; each implements [`crate::kind::Kind`].

pub mod cmd;
