mod cli;
mod errors;
mod lifecycle;
mod operations;
mod rules;
mod support;
