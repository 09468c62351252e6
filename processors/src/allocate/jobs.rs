//! The allocation jobs on the stream runtime (docs/allocation.md):
//!
//! - [`OrderFeed`] (stateless): `orders.normalized` -> `allocate.commands`,
//!   the order projected onto what allocation needs.
//! - [`StockFeed`] (stateless): `inventory.events` -> `inventory.commands`.
//! - [`AllocateJob`] (keyed by order, store `allocate.orders`):
//!   `allocate.commands` -> holds, commits and releases on
//!   `inventory.commands`, outcomes on `orders.allocated` /
//!   `orders.backordered`.
//! - [`InventoryJob`] (keyed by SKU, store `inventory.stock`):
//!   `inventory.commands` -> answers on `allocate.commands`, stock
//!   movements on `allocation.events`, `inventory.alerts`.
//!
//! Each stateful job reads one log, so the runtime's guarantees hold for
//! it: state and input position commit together, re-emissions are
//! byte-identical (event ids derive from the command's id, timestamps from
//! the input) and the next job drops them by source high-water mark. A
//! command that cannot be parsed or applied goes to the DLQ with its
//! reason and coordinates, changing nothing.

use conveyor_runtime::kafka::InRecord;
use conveyor_schemas::records::{InventoryEvent, OrderEvent};
use conveyor_stream::{Avro, Output, ProcessError, Processor, Raw, State};

use super::order::{self, Effect as OrderEffect, OrderState, Plan};
use super::protocol::{AllocCommand, InvCommand, OrderRequest};
use crate::inventory::sku::{Effect as SkuEffect, Rules, SkuState};

/// Job names (consumer group `<prefix>.<name>`, DLQ stage, metrics label).
pub const ORDER_FEED: &str = "allocate-feed";
pub const STOCK_FEED: &str = "inventory-feed";
pub const INVENTORY: &str = "inventory";
pub const ALLOCATE: &str = "allocate";
/// Every job of `conveyor run allocate` with the topic (id) it reads.
pub const JOBS: &[(&str, &str)] = &[
    (ORDER_FEED, "orders_normalized"),
    (STOCK_FEED, "inventory_events"),
    (INVENTORY, "commands_inventory"),
    (ALLOCATE, "commands_allocate"),
];

/// State table of the allocate job: order id -> [`OrderState`].
pub const ORDERS_TABLE: &str = "orders";
/// State table of the inventory job: sku -> [`SkuState`].
pub const STOCK_TABLE: &str = "stock";

/// Resolved names of the topics the jobs write.
#[derive(Debug, Clone)]
pub struct Topics {
    pub allocate_commands: String,
    pub inventory_commands: String,
    pub allocated: String,
    pub backordered: String,
    pub movements: String,
    pub alerts: String,
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ProcessError> {
    serde_json::to_vec(v).map_err(|e| ProcessError::Failed(format!("encode command: {e}")))
}

/// `orders.normalized` -> `allocate.commands`.
pub struct OrderFeed {
    pub topics: Topics,
}

impl Processor for OrderFeed {
    type In = Avro<OrderEvent>;

    fn process(
        &mut self,
        input: &Avro<OrderEvent>,
        _rec: &InRecord,
        _state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let cmd = AllocCommand::Order(OrderRequest::from_event(&input.0));
        out.push(Output::bytes(
            self.topics.allocate_commands.clone(),
            input.0.order_id.clone(),
            json(&cmd)?,
        ));
        Ok(())
    }
}

/// `inventory.events` -> `inventory.commands`.
pub struct StockFeed {
    pub topics: Topics,
}

impl Processor for StockFeed {
    type In = Avro<InventoryEvent>;

    fn process(
        &mut self,
        input: &Avro<InventoryEvent>,
        _rec: &InRecord,
        _state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let e = &input.0;
        if e.sku.is_empty() {
            return Err(ProcessError::Invalid(format!(
                "inventory event {} has no sku",
                e.event_id
            )));
        }
        out.push(Output::bytes(
            self.topics.inventory_commands.clone(),
            e.sku.clone(),
            json(&InvCommand::Stock(e.clone()))?,
        ));
        Ok(())
    }
}

fn parse<T: serde::de::DeserializeOwned>(rec: &InRecord, what: &str) -> Result<T, ProcessError> {
    let bytes = rec
        .payload
        .as_deref()
        .ok_or_else(|| ProcessError::Invalid(format!("{what} without a value")))?;
    serde_json::from_slice(bytes).map_err(|e| ProcessError::Invalid(format!("not a {what}: {e}")))
}

/// Outcome counters, also exported as metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub allocated: u64,
    pub backordered: u64,
    /// Backorders that superseded an allocation (also on orders.allocated).
    pub superseded: u64,
    pub released: u64,
    pub channel_fulfilled: u64,
}

/// The allocate job.
pub struct AllocateJob {
    pub plan: Plan,
    pub topics: Topics,
    pub counts: Counts,
}

impl Processor for AllocateJob {
    type In = Raw;

    fn process(
        &mut self,
        _input: &Raw,
        rec: &InRecord,
        state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let cmd: AllocCommand = parse(rec, "allocate command")?;
        let key = cmd.order_id().to_string();
        let prior: Option<OrderState> = state.get_json(ORDERS_TABLE, key.as_bytes())?;
        let (next, effects) =
            order::handle(prior, &cmd, &self.plan).map_err(ProcessError::Invalid)?;
        if let Some(s) = &next {
            state.put_json(ORDERS_TABLE, key.as_bytes(), s)?;
        }
        for e in effects {
            match e {
                OrderEffect::Inventory(c) => out.push(Output::bytes(
                    self.topics.inventory_commands.clone(),
                    c.sku().to_string(),
                    json(&c)?,
                )),
                OrderEffect::Allocated(r) => {
                    use conveyor_schemas::records::AllocationStatus as S;
                    let (label, n) = match r.status {
                        S::Released => ("released", &mut self.counts.released),
                        // Supersedes an allocation; counted with the
                        // backorder it repeats.
                        S::Backordered => {
                            ("backordered_after_allocation", &mut self.counts.superseded)
                        }
                        S::FulfilledByChannel => {
                            ("fulfilled_by_channel", &mut self.counts.channel_fulfilled)
                        }
                        _ => ("allocated", &mut self.counts.allocated),
                    };
                    *n += 1;
                    metrics::counter!("conveyor_allocate_outcomes_total", "status" => label)
                        .increment(1);
                    out.push(Output::avro(self.topics.allocated.clone(), key.clone(), r));
                }
                OrderEffect::Backordered(r) => {
                    self.counts.backordered += 1;
                    metrics::counter!("conveyor_allocate_outcomes_total", "status" => "backordered")
                        .increment(1);
                    out.push(Output::avro(
                        self.topics.backordered.clone(),
                        key.clone(),
                        r,
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The inventory job.
pub struct InventoryJob {
    pub rules: Rules,
    pub topics: Topics,
}

impl Processor for InventoryJob {
    type In = Raw;

    fn process(
        &mut self,
        _input: &Raw,
        rec: &InRecord,
        state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let cmd: InvCommand = parse(rec, "inventory command")?;
        let sku = cmd.sku().to_string();
        let mut stock: SkuState = state
            .get_json(STOCK_TABLE, sku.as_bytes())?
            .unwrap_or_default();
        let effects = stock
            .apply(&cmd, &self.rules)
            .map_err(|e| ProcessError::Invalid(format!("sku {sku}: {e}")))?;
        state.put_json(STOCK_TABLE, sku.as_bytes(), &stock)?;
        for e in effects {
            match e {
                SkuEffect::Reply(r) => out.push(Output::bytes(
                    self.topics.allocate_commands.clone(),
                    r.order_id().to_string(),
                    json(&r)?,
                )),
                SkuEffect::Movement(m) => {
                    out.push(Output::avro(self.topics.movements.clone(), sku.clone(), m))
                }
                SkuEffect::Alert(a) => {
                    metrics::counter!("conveyor_inventory_alerts_total").increment(1);
                    out.push(Output::avro(self.topics.alerts.clone(), sku.clone(), a))
                }
            }
        }
        Ok(())
    }
}

/// The inventory job's rules from the config.
pub fn rules(config: &conveyor_runtime::Config) -> Rules {
    Rules {
        warehouses: config.warehouses.iter().map(|w| w.id.clone()).collect(),
        safety_stock: config.allocation.safety_stock,
        reorder_point: config.allocation.reorder_point,
        reorder_points: config.allocation.reorder_points.clone(),
    }
}

/// The allocate job's plan from the config.
pub fn plan(config: &conveyor_runtime::Config) -> Plan {
    Plan::new(config.warehouses.clone(), config.allocation.clone())
}

impl Topics {
    /// The resolved names, from the topology.
    pub fn resolve(topo: &conveyor_runtime::topology::Topology) -> Topics {
        let name = |id: &str, default: &str| topo.topic_name(id).unwrap_or(default).to_string();
        Topics {
            allocate_commands: name("commands_allocate", "allocate.commands"),
            inventory_commands: name("commands_inventory", "inventory.commands"),
            allocated: name("orders_allocated", "orders.allocated"),
            backordered: name("orders_backordered", "orders.backordered"),
            movements: name("allocation_events", "allocation.events"),
            alerts: name("inventory_alerts", "inventory.alerts"),
        }
    }
}
