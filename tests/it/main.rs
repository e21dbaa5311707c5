mod cli;
mod errors;
mod lifecycle;
mod rules;
mod support;
