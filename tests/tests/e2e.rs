//! The end-to-end suite: the real app in a WebKit window (see `e2e/suite.rs`). Its tests
//! live in the module `e2e`, so their names start with `e2e::`: the keyring stage of
//! `scripts/test` runs every other ignored test of the workspace with `--skip e2e::`,
//! with the same cargo arguments as every other stage (nothing is rebuilt for it).

#[path = "e2e/suite.rs"]
mod e2e;
