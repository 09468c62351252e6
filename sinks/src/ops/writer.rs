//! The operational sink's writer: a batch of sink records becomes one
//! batch of mutations applied to the store (see [`super::model`]).

use super::model::located_mutations;
use super::OperationalStore;
use crate::event::Located;
use crate::feed::{WriteError, Writer};

pub struct StoreWriter<S> {
    store: std::sync::Arc<S>,
}

impl<S: OperationalStore> StoreWriter<S> {
    pub fn new(store: std::sync::Arc<S>) -> Self {
        Self { store }
    }
}

impl<S: OperationalStore> Writer for StoreWriter<S> {
    async fn write(&mut self, batch: &[Located]) -> Result<u64, WriteError> {
        let muts: Vec<_> = batch.iter().flat_map(located_mutations).collect();
        let n = muts.len() as u64;
        self.store
            .apply(muts)
            .await
            .map_err(|e| WriteError(e.to_string()))?;
        Ok(n)
    }
}
