//! accolade: a scheduled batch evaluator that awards badges to the members of a community or
//! learning platform.
//!
//! Data flows one way: the [`config`] compiles into a [`config::plan`], then [`sources`]
//! (snapshots of the host database as Polars frames) → [`features`] (per-member numbers and
//! flags) → [`predicates`] (rules and formulas compiled into checks over the features) →
//! [`evaluate`] (each badge's predicate over the feature frame) → [`store`] (only new awards,
//! exactly once). Each module imports only those before it in the order sources, features,
//! predicates, config (the plan holds the parsed criteria), evaluate, store, incremental,
//! pipeline, commands; `tests/it/layout.rs` checks it. [`pipeline`] runs one pass through them, and
//! [`incremental`] decides which members a pass needs. [`openbadges`] and [`report`] present
//! the awards to the world and to administrators; [`commands`] parse options and print.

pub mod commands;
pub mod config;
pub mod cron;
pub mod db;
pub mod errors;
pub mod evaluate;
pub mod features;
pub mod incremental;
pub mod instant;
pub mod metrics;
pub mod openbadges;
pub mod pipeline;
pub mod predicates;
pub mod report;
pub mod sources;
pub mod store;
pub mod telemetry;
