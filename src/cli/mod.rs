//! The binary's own modules (not part of the library): the command line's arguments, how
//! errors and output reach the terminal, and the commands.

pub(crate) mod args;
pub(crate) mod commands;
pub(crate) mod output;
pub(crate) mod run;
pub(crate) mod send;
