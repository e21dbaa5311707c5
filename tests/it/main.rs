mod cli;
mod databases;
mod errors;
mod lifecycle;
mod rules;
mod support;
