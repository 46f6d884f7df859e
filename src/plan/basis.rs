//! `Basis`: one named assumption or constant behind a plan, with where it comes from, so a user
//! can redo the arithmetic (DESIGN.md: `basis` in the JSON output).

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Basis {
    pub name: String,
    pub value: String,
    pub source: String,
}

/// Collects basis entries while a plan is computed.
#[derive(Clone, Debug, Default)]
pub struct BasisLog(pub Vec<Basis>);

impl BasisLog {
    pub fn add(&mut self, name: impl Into<String>, value: impl ToString, source: impl Into<String>) {
        self.0.push(Basis { name: name.into(), value: value.to_string(), source: source.into() });
    }
}
