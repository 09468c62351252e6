//! A seeded allocation workload: stock for a catalog of SKUs across the
//! configured warehouses and a stream of orders against it, the same for
//! the same seed. Used by the broker tests, the quality report and
//! `conveyor bench allocate`.
//!
//! Shape: SKU popularity is skewed (weight `1 / (rank + 10)`), orders have
//! one to three distinct SKUs (60/30/10%) of one or two units (80/20%),
//! come from Shopify, Amazon (5% of them fulfilled by Amazon), TikTok Shop
//! and eBay, ship to real ZIP codes across the US, and 13% are urgent.
//! Each SKU's stock is `stock_ratio` of its expected demand, spread
//! unevenly over the warehouses (some SKUs are in one warehouse only).

use conveyor_schemas::records::{
    Address, CatalogSku, Currency, Customer, InventoryEvent, InventoryEventKind, Money, Order,
    OrderEvent, OrderEventKind, OrderLine, OrderStatus, Priority, Totals,
};

use super::protocol::{OrderRequest, RequestLine};

/// Destination ZIPs: big metros, coast to coast.
pub const ZIPS: &[&str] = &[
    "10001", "11201", "02108", "19103", "20001", "21201", "30303", "33101", "28202", "27601",
    "37203", "60601", "48226", "44113", "43215", "46204", "53202", "55401", "63101", "64105",
    "68102", "70112", "75201", "77002", "78701", "73102", "80202", "84101", "85004", "87102",
    "89101", "90012", "92101", "94103", "95814", "97205", "98101", "99501", "96813", "83702",
];

const CHANNELS: &[(&str, u32)] = &[
    ("shopify", 50),
    ("amazon", 25),
    ("tiktok", 15),
    ("ebay", 10),
];

/// A generated workload.
#[derive(Debug, Clone)]
pub struct Workload {
    pub skus: Vec<String>,
    /// Restocks, one per SKU x warehouse with stock.
    pub stock: Vec<InventoryEvent>,
    /// Order versions in arrival order.
    pub orders: Vec<OrderRequest>,
}

/// Generates `orders` orders over `skus` SKUs with stock for `stock_ratio`
/// of the expected demand in `warehouses`.
pub fn generate(
    seed: u64,
    orders: usize,
    skus: usize,
    warehouses: &[String],
    stock_ratio: f64,
    base_ms: i64,
) -> Workload {
    let mut rng = fastrand::Rng::with_seed(seed);
    let sku_ids: Vec<String> = (0..skus.max(1)).map(|i| format!("SKU-{i:04}")).collect();
    let weights: Vec<f64> = (0..sku_ids.len())
        .map(|i| 1.0 / (i as f64 + 10.0))
        .collect();
    let total: f64 = weights.iter().sum();
    let pick = |rng: &mut fastrand::Rng| -> usize {
        let mut x = rng.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            x -= w;
            if x <= 0.0 {
                return i;
            }
        }
        weights.len() - 1
    };
    let mut demand = vec![0f64; sku_ids.len()];
    let mut out = Vec::with_capacity(orders);
    for n in 0..orders {
        let lines = match rng.u32(..10) {
            0..=5 => 1,
            6..=8 => 2,
            _ => 3,
        };
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < lines {
            let s = pick(&mut rng);
            if !chosen.contains(&s) {
                chosen.push(s);
            }
        }
        let mut roll = rng.u32(..100);
        let channel = CHANNELS
            .iter()
            .find(|(_, share)| {
                if roll < *share {
                    true
                } else {
                    roll -= share;
                    false
                }
            })
            .map_or("shopify", |c| c.0);
        let fba = channel == "amazon" && rng.u32(..100) < 5;
        let urgency = match rng.u32(..100) {
            0..=2 => 0,
            3..=12 => 1,
            _ => 2,
        };
        let request_lines: Vec<RequestLine> = chosen
            .iter()
            .enumerate()
            .map(|(l, &s)| {
                let quantity = if rng.u32(..10) < 8 { 1 } else { 2 };
                if !fba {
                    demand[s] += quantity as f64;
                }
                RequestLine {
                    line_id: format!("{n}-{l}"),
                    sku: sku_ids[s].clone(),
                    quantity,
                }
            })
            .collect();
        let at = base_ms + n as i64;
        out.push(OrderRequest {
            id: format!("wl:{seed}:{n}/0"),
            order_id: format!("{channel}:wl{n}"),
            version: 1,
            cancelled: false,
            channel: channel.to_string(),
            fulfilled_by_channel: fba,
            urgency,
            created_at: at,
            country: "US".into(),
            postal_code: ZIPS[rng.usize(..ZIPS.len())].to_string(),
            lines: request_lines,
            at,
        });
    }
    let mut stock = Vec::new();
    for (s, sku) in sku_ids.iter().enumerate() {
        let units = (demand[s] * stock_ratio).round() as i64;
        if units == 0 || warehouses.is_empty() {
            continue;
        }
        // Uneven shares; a third of the SKUs sit in one warehouse only.
        let shares: Vec<f64> = if rng.u32(..3) == 0 {
            let only = rng.usize(..warehouses.len());
            (0..warehouses.len())
                .map(|w| if w == only { 1.0 } else { 0.0 })
                .collect()
        } else {
            (0..warehouses.len()).map(|_| rng.f64() + 0.1).collect()
        };
        let sum: f64 = shares.iter().sum();
        let mut left = units;
        for (w, share) in shares.iter().enumerate() {
            let q = if w + 1 == warehouses.len() {
                left
            } else {
                ((units as f64) * share / sum).floor() as i64
            };
            left -= q;
            if q > 0 {
                stock.push(InventoryEvent {
                    event_id: format!("wl:{seed}:stock:{s}:{w}"),
                    sku: sku.clone(),
                    warehouse_id: warehouses[w].clone(),
                    kind: InventoryEventKind::Restock,
                    quantity: q.min(i64::from(i32::MAX)) as i32,
                    to_warehouse_id: None,
                    reason: Some("initial stock".into()),
                    reference: Some(format!("PO-{s}-{w}")),
                    occurred_at: base_ms - 1,
                });
            }
        }
    }
    Workload {
        skus: sku_ids,
        stock,
        orders: out,
    }
}

/// Catalog entries for the workload's SKUs (what route packs and rates
/// by): 60 g to 2.4 kg, card-sized to shoebox-sized, every 40th SKU an
/// ORM-D (limited quantity) hazmat item; the same for the same SKUs.
pub fn catalog(w: &Workload) -> Vec<CatalogSku> {
    w.skus
        .iter()
        .enumerate()
        .map(|(i, sku)| {
            let i = i as i32;
            CatalogSku {
                sku: sku.clone(),
                name: format!("Item {sku}"),
                weight_grams: 60 + (i * 37) % 2340,
                length_mm: Some(90 + (i * 13) % 230),
                width_mm: Some(60 + (i * 7) % 140),
                height_mm: Some(10 + (i * 11) % 110),
                declared_value: None,
                hazmat: (i % 40 == 39).then(|| "ORM-D".to_string()),
                bin_location: Some(format!(
                    "{}-{:02}-{}",
                    (b'A' + (i % 6) as u8) as char,
                    i % 40,
                    i % 4 + 1
                )),
                listings: Vec::new(),
                updated_at: 1,
            }
        })
        .collect()
}

/// An order event (as normalize emits it) carrying `req`: what the broker
/// tests and the end-to-end benchmark put on `orders.normalized`.
pub fn order_event(req: &OrderRequest) -> OrderEvent {
    let usd = |cents: i64| Money::from_cents(cents, Currency::USD);
    let lines: Vec<OrderLine> = req
        .lines
        .iter()
        .map(|l| OrderLine {
            line_id: l.line_id.clone(),
            sku: l.sku.clone(),
            name: l.sku.clone(),
            quantity: l.quantity as i32,
            unit_price: usd(1000),
            discount: usd(0),
            tax: usd(0),
            total: usd(1000 * l.quantity),
            requires_shipping: true,
            properties: Default::default(),
        })
        .collect();
    let total = usd(lines.iter().map(|l| 1000 * i64::from(l.quantity)).sum());
    let (_, external_id) = req.order_id.split_once(':').unwrap_or(("", &req.order_id));
    OrderEvent {
        event_id: req.id.clone(),
        order_id: req.order_id.clone(),
        kind: if req.cancelled {
            OrderEventKind::Cancelled
        } else if req.version > 1 {
            OrderEventKind::Updated
        } else {
            OrderEventKind::Created
        },
        version: req.version,
        occurred_at: req.at,
        source_event_id: req.id.clone(),
        order: Order {
            order_id: req.order_id.clone(),
            channel: req.channel.clone(),
            external_id: external_id.to_string(),
            external_number: None,
            status: OrderStatus::Open,
            currency: "USD".into(),
            customer: Customer {
                customer_id: None,
                email: None,
                name: "Load Test".into(),
                phone: None,
            },
            shipping_address: Address {
                name: "Load Test".into(),
                company: None,
                line1: "1 Main St".into(),
                line2: None,
                city: "Anytown".into(),
                region: None,
                postal_code: req.postal_code.clone(),
                country: req.country.clone(),
                phone: None,
            },
            billing_address: None,
            lines,
            totals: Totals {
                subtotal: total.clone(),
                discount: usd(0),
                shipping: usd(0),
                tax: usd(0),
                total,
            },
            priority: match req.urgency {
                0 => Priority::Overnight,
                1 => Priority::Expedited,
                _ => Priority::Standard,
            },
            shipping_method: None,
            ship_by: None,
            deliver_by: None,
            fulfilled_by_channel: req.fulfilled_by_channel,
            created_at: req.created_at,
            updated_at: req.at,
            tags: Vec::new(),
            note: None,
            gift_message: None,
            extras: Default::default(),
        },
        cancellation: req
            .cancelled
            .then(|| conveyor_schemas::records::Cancellation {
                reason: "customer".into(),
                cancelled_at: req.at,
                restock: true,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_workload_and_events_round_trip() {
        let w: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let x = generate(7, 500, 50, &w, 0.8, 1_000);
        let y = generate(7, 500, 50, &w, 0.8, 1_000);
        assert_eq!(x.orders, y.orders);
        assert_eq!(x.stock, y.stock);
        let stocked: i64 = x.stock.iter().map(|e| i64::from(e.quantity)).sum();
        let wanted: i64 = x
            .orders
            .iter()
            .filter(|o| !o.fulfilled_by_channel)
            .flat_map(|o| &o.lines)
            .map(|l| l.quantity)
            .sum();
        let ratio = stocked as f64 / wanted as f64;
        assert!((0.75..0.85).contains(&ratio), "{ratio}");
        for o in &x.orders {
            assert_eq!(&OrderRequest::from_event(&order_event(o)), o);
        }
    }
}
