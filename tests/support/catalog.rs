//! The built-in catalog's models as the catalog tests read them: a spec by id, its parameter
//! counts from the inventory, and the elements of a list of tensors.

use headroom::catalog::models::ModelCatalog;
use headroom::model::spec::ModelSpec;
use headroom::model::tensors::{inventory, param_counts, TensorDesc};

/// The built-in catalog's spec for `id`, which must exist.
pub fn spec(id: &str) -> ModelSpec {
    ModelCatalog::builtin().get(id).unwrap().spec().clone()
}

/// Total and active parameters of catalog model `id`, from its inventory.
pub fn counts(id: &str) -> (u64, u64) {
    let s = spec(id);
    let c = param_counts(&s, &inventory(&s));
    (c.total, c.active)
}

/// Total parameters of catalog model `id`, from its inventory.
pub fn total(id: &str) -> u64 {
    counts(id).0
}

/// Elements of `tensors`, summed.
pub fn elements(tensors: &[TensorDesc]) -> u64 {
    tensors.iter().map(TensorDesc::elements).sum()
}
