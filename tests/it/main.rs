mod cli;
mod errors;
mod explain;
mod formulas;
mod lifecycle;
mod operations;
mod rules;
mod support;
