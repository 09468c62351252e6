//! Parcels to route and plans to label, from a seeded workload: each order
//! shipped whole from its nearest warehouse. What `conveyor bench route`,
//! `conveyor bench label` and the label crash test feed on.

use conveyor_runtime::config::Config;
use conveyor_schemas::records::{LineQty, PlannedShipment, WarehouseAllocation};

use super::plan::{plan, Router, ShipOrder};
use crate::allocate::candidates::rank;
use crate::allocate::workload::{self, order_event, Workload};
use crate::catalog::Catalog;

/// (order, its nearest warehouse's allocation) for the workload's orders
/// that ship (not channel-fulfilled, not cancelled).
pub fn cases(config: &Config, w: &Workload) -> Vec<(ShipOrder, WarehouseAllocation)> {
    w.orders
        .iter()
        .filter(|o| !o.fulfilled_by_channel && !o.cancelled)
        .filter_map(|o| {
            let best = rank(&config.warehouses, &o.channel, &o.country, &o.postal_code)
                .into_iter()
                .next()?;
            let alloc = WarehouseAllocation {
                warehouse_id: best.warehouse,
                lines: o
                    .lines
                    .iter()
                    .map(|l| LineQty {
                        line_id: l.line_id.clone(),
                        sku: l.sku.clone(),
                        quantity: l.quantity as i32,
                    })
                    .collect(),
            };
            Some((ShipOrder::from_event(&order_event(o)), alloc))
        })
        .collect()
}

/// `n` planned shipments (seed `seed`); `edit` may change each order
/// before it is planned (e.g. an undeliverable address).
pub fn plans(
    config: &Config,
    seed: u64,
    n: usize,
    mut edit: impl FnMut(usize, &mut ShipOrder),
) -> Vec<PlannedShipment> {
    let ids: Vec<String> = config.warehouses.iter().map(|w| w.id.clone()).collect();
    let w = workload::generate(seed, n + n / 4 + 10, 200, &ids, 1.0, 1_790_000_000_000);
    let catalog = Catalog::from_skus(workload::catalog(&w));
    let router = Router::new(config.routing.clone(), &config.warehouses);
    cases(config, &w)
        .into_iter()
        .take(n)
        .enumerate()
        .filter_map(|(i, (mut order, alloc))| {
            edit(i, &mut order);
            let shipment = format!("{}/{}/1", order.order_id, alloc.warehouse_id);
            let at = order.created_at;
            plan(
                &router,
                &catalog,
                &order,
                &alloc,
                shipment,
                format!("plan-{i}/0"),
                at,
            )
            .ok()
        })
        .collect()
}
