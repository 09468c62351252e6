//! The route jobs on the stream runtime (docs/routing.md):
//!
//! - [`OrderFeed`] (stateless): `orders.normalized` -> `route.commands`,
//!   the order projected onto what shipping needs.
//! - [`AllocationFeed`] (stateless): `orders.allocated` -> `route.commands`.
//! - [`RouteJob`] (keyed by order, store `route.shipments`):
//!   `route.commands` -> `shipments.planned`.
//!
//! The route job reads one log, so the runtime's guarantees hold for it:
//! state and input position commit together, and a re-emission after a
//! crash is byte-identical (ids from the allocation's id, times from its
//! event time). A shipment that cannot be planned (a SKU missing from the
//! catalog, an international destination, a parcel no service can carry)
//! sends its command to the DLQ with the reason, changing nothing; fixing
//! the catalog or config and replaying plans it.

use conveyor_runtime::kafka::InRecord;
use conveyor_schemas::records::{AllocationResult, OrderEvent};
use conveyor_stream::{Avro, Output, ProcessError, Processor, Raw, State};

use super::order::{handle, RouteCommand, RouteState};
use super::plan::{Router, ShipOrder};
use crate::catalog_feed::SharedCatalog;

/// Job names (consumer group `<prefix>.<name>`, DLQ stage, metrics label).
pub const ORDER_FEED: &str = "route-orders";
pub const ALLOCATION_FEED: &str = "route-allocations";
pub const ROUTE: &str = "route";
/// State table of the route job: order id -> [`RouteState`].
pub const SHIPMENTS_TABLE: &str = "shipments";

/// Resolved names of the topics the jobs write.
#[derive(Debug, Clone)]
pub struct Topics {
    pub commands: String,
    pub planned: String,
}

impl Topics {
    pub fn resolve(topo: &conveyor_runtime::topology::Topology) -> Topics {
        let name = |id: &str, default: &str| topo.topic_name(id).unwrap_or(default).to_string();
        Topics {
            commands: name("commands_route", "route.commands"),
            planned: name("shipments_planned", "shipments.planned"),
        }
    }
}

fn forward(topics: &Topics, cmd: &RouteCommand) -> Result<Output, ProcessError> {
    let bytes = serde_json::to_vec(cmd)
        .map_err(|e| ProcessError::Failed(format!("encode route command: {e}")))?;
    Ok(Output::bytes(
        topics.commands.clone(),
        cmd.order_id().to_string(),
        bytes,
    ))
}

/// `orders.normalized` -> `route.commands`.
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
        let cmd = RouteCommand::Order(Box::new(ShipOrder::from_event(&input.0)));
        out.push(forward(&self.topics, &cmd)?);
        Ok(())
    }
}

/// `orders.allocated` -> `route.commands`.
pub struct AllocationFeed {
    pub topics: Topics,
}

impl Processor for AllocationFeed {
    type In = Avro<AllocationResult>;

    fn process(
        &mut self,
        input: &Avro<AllocationResult>,
        _rec: &InRecord,
        _state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let cmd = RouteCommand::Allocation(input.0.clone());
        out.push(forward(&self.topics, &cmd)?);
        Ok(())
    }
}

/// Plans per job instance, also exported as metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub planned: u64,
    pub sla_missed: u64,
}

/// The route job.
pub struct RouteJob {
    pub router: Router,
    pub catalog: SharedCatalog,
    pub topics: Topics,
    pub counts: Counts,
}

impl Processor for RouteJob {
    type In = Raw;

    fn process(
        &mut self,
        _input: &Raw,
        rec: &InRecord,
        state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let bytes = rec
            .payload
            .as_deref()
            .ok_or_else(|| ProcessError::Invalid("route command without a value".into()))?;
        let cmd: RouteCommand = serde_json::from_slice(bytes)
            .map_err(|e| ProcessError::Invalid(format!("not a route command: {e}")))?;
        let key = cmd.order_id().to_string();
        let mut s: RouteState = state
            .get_json(SHIPMENTS_TABLE, key.as_bytes())?
            .unwrap_or_default();
        let planned = {
            let catalog = self
                .catalog
                .read()
                .map_err(|_| ProcessError::Failed("catalog lock poisoned".into()))?;
            handle(&mut s, &cmd, &self.router, &catalog)
                .map_err(|e| ProcessError::Invalid(format!("order {key}: {e}")))?
        };
        state.put_json(SHIPMENTS_TABLE, key.as_bytes(), &s)?;
        for p in planned {
            self.counts.planned += 1;
            metrics::counter!("conveyor_route_planned_total", "carrier" => p.carrier.clone(), "service" => p.service.clone())
                .increment(1);
            if !p.meets_sla {
                self.counts.sla_missed += 1;
                metrics::counter!("conveyor_route_sla_missed_total").increment(1);
            }
            out.push(Output::avro(self.topics.planned.clone(), key.clone(), p));
        }
        Ok(())
    }
}
