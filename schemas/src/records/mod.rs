//! Rust types for every record conveyor publishes, one per Avro schema in
//! `schemas/*.avsc`. Field order and names mirror the schemas exactly (the
//! encoder writes fields in declaration order); `Option` is a
//! `["null", T]` union; `i64` timestamps are `timestamp-millis` (UTC);
//! amounts are [`Money`].

mod allocation;
mod catalog;
mod common;
mod dlq;
mod exception;
mod inventory;
pub mod money;
mod operator;
mod order;
mod raw;
mod shipment;
mod synced;

pub use allocation::{AllocationResult, AllocationStatus, WarehouseAllocation};
pub use catalog::{CatalogSku, ChannelListing};
pub use common::{Address, Document, LineQty};
pub use dlq::{DlqRecord, ErrorKind, Header};
pub use exception::ExceptionRecord;
pub use inventory::{
    AlertKind, InventoryAlert, InventoryEvent, InventoryEventKind, MovementKind, StockMovement,
};
pub use money::{Currency, Money};
pub use operator::{ActionKind, OperatorAction};
pub use order::{
    Cancellation, Customer, Order, OrderEvent, OrderEventKind, OrderLine, OrderStatus, Priority,
    Totals,
};
pub use raw::{RawOrder, RawSource};
pub use shipment::{LabelStatus, LabeledShipment, Parcel, PlanStatus, PlannedShipment, RateQuote};
pub use synced::{SyncOutcome, SyncedShipment};

use std::sync::OnceLock;

use apache_avro::Schema;

/// A record type with its Avro schema.
pub trait Record:
    serde::Serialize + serde::de::DeserializeOwned + crate::wire::AvroBinary + Send + Sync + 'static
{
    /// Full name of the Avro record, e.g. `conveyor.OrderEvent`.
    const NAME: &'static str;
    /// The `.avsc` text this type is built for.
    fn avsc() -> &'static str;
    /// The parsed schema (parsed once per process).
    fn schema() -> &'static Schema;
}

macro_rules! record {
    ($t:ty, $name:literal, $file:literal) => {
        impl Record for $t {
            const NAME: &'static str = $name;
            fn avsc() -> &'static str {
                include_str!(concat!("../../", $file))
            }
            fn schema() -> &'static Schema {
                static SCHEMA: OnceLock<Schema> = OnceLock::new();
                SCHEMA.get_or_init(|| {
                    // The .avsc files are checked by `every_schema_parses` and CI.
                    Schema::parse_str(Self::avsc())
                        .unwrap_or_else(|e| panic!("{} is not valid Avro: {e}", $file))
                })
            }
        }
    };
}

record!(RawOrder, "conveyor.RawOrder", "raw_order.avsc");
record!(OrderEvent, "conveyor.OrderEvent", "order_event.avsc");
record!(DlqRecord, "conveyor.DlqRecord", "dlq_record.avsc");
record!(
    InventoryEvent,
    "conveyor.InventoryEvent",
    "inventory_event.avsc"
);
record!(
    AllocationResult,
    "conveyor.AllocationResult",
    "allocation_result.avsc"
);
record!(
    StockMovement,
    "conveyor.StockMovement",
    "stock_movement.avsc"
);
record!(
    InventoryAlert,
    "conveyor.InventoryAlert",
    "inventory_alert.avsc"
);
record!(
    PlannedShipment,
    "conveyor.PlannedShipment",
    "planned_shipment.avsc"
);
record!(
    LabeledShipment,
    "conveyor.LabeledShipment",
    "labeled_shipment.avsc"
);
record!(CatalogSku, "conveyor.CatalogSku", "catalog_sku.avsc");
record!(
    ExceptionRecord,
    "conveyor.ExceptionRecord",
    "exception_record.avsc"
);
record!(
    SyncedShipment,
    "conveyor.SyncedShipment",
    "synced_shipment.avsc"
);
record!(
    OperatorAction,
    "conveyor.OperatorAction",
    "operator_action.avsc"
);

/// Serde adapter for `Vec<u8>` as Avro `bytes`.
pub(crate) use apache_avro::serde::bytes as avro_bytes;
/// Serde adapter for `Option<Vec<u8>>` as `["null", "bytes"]`.
pub(crate) use apache_avro::serde::bytes_opt as avro_bytes_opt;
