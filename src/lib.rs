//! `pipe`: transfer-learning experiments as declarative, content-hashed pipelines.
//!
//! A pipeline file ([`config`]) becomes a graph of stages ([`graph`]); each stage's key
//! ([`key`]) is a hash of what its output depends on, and the cache ([`store`]) maps keys
//! to outputs stored by content, shared across machines through a [`remote`] cache.
//! [`engine`] runs what the caches lack. Stage kinds live
//! in [`kinds`] behind one interface ([`kind`]).

pub mod alloc;
pub mod causes;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dag_view;
pub mod data;
pub mod digest;
pub mod durable;
pub mod engine;
pub mod error;
pub mod graph;
pub mod key;
pub mod kind;
pub mod kinds;
pub mod name_map;
pub mod nn;
pub mod paths;
pub mod remote;
pub mod report;
pub mod rng;
pub mod store;
