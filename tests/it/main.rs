mod cli;
mod errors;
mod explain;
mod formulas;
mod lifecycle;
mod rules;
mod support;
