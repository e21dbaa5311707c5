//! accolade: a scheduled batch evaluator that awards badges to the members of a community or
//! learning platform.
//!
//! Data flows one way: [`config`] → [`config::plan`] → [`sources`] (snapshots of the host
//! database as Polars frames) → [`evaluate`] (per-member features and per-badge predicates) →
//! [`store`] (only new awards, exactly once); [`pipeline`] runs one pass through them, and
//! [`incremental`] decides which members a pass needs. [`openbadges`] and [`report`] present
//! the awards to the world and to administrators; [`commands`] parse options and print.

pub mod commands;
pub mod config;
pub mod cron;
pub mod db;
pub mod errors;
pub mod evaluate;
pub mod formula;
pub mod incremental;
pub mod instant;
pub mod metrics;
pub mod openbadges;
pub mod pipeline;
pub mod report;
pub mod rules;
pub mod sources;
pub mod store;
pub mod telemetry;
