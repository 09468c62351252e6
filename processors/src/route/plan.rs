//! Planning one shipment: pack it, zone it, rate every carrier service,
//! and pick the cheapest one that meets the order's SLA (docs/routing.md).
//!
//! A pure function of (the order as shipping sees it, one warehouse's
//! allocation, the allocation's event time, the [`Router`]): no clock, no
//! lookups outside what is passed in, so the same shipment and config give
//! the same plan, byte for byte.
//!
//! Choice, in order: services that can carry the parcel (not excluded)
//! and meet the SLA, cheapest first; ties by faster delivery, then carrier
//! and service id. When none meets the SLA, the earliest delivery wins
//! (then the cheapest), and the plan says `meets_sla = false`: the parcel
//! still ships as fast as it can and the miss is visible to operators.
//! When no service can carry it at all the shipment cannot be planned,
//! an error with every reason.

use std::collections::BTreeMap;

use conveyor_runtime::routing::{CarrierConfig, RoutingConfig};
use conveyor_runtime::warehouses::WarehouseConfig;
use conveyor_schemas::records::{
    Currency, LineQty, Money, PlanStatus, PlannedShipment, Priority, RateQuote, WarehouseAllocation,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::calendar::{self, CalendarError, Clock, DELIVERY_HOUR};
use super::packing::{self, Unit, DEFAULT_DIMS};
use super::rates;
use crate::catalog::Catalog;
use crate::geo::{Centroids, Point};

/// The order as shipping needs it (projected from `orders.normalized`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipOrder {
    pub id: String,
    pub order_id: String,
    pub version: i64,
    pub channel: String,
    /// The number the customer and the channel know the order by.
    pub number: String,
    pub created_at: i64,
    pub ship_to: conveyor_schemas::records::Address,
    pub priority: Priority,
    pub ship_by: Option<i64>,
    pub deliver_by: Option<i64>,
    pub lines: Vec<ShipLine>,
    pub gift_message: Option<String>,
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipLine {
    pub line_id: String,
    pub sku: String,
    pub name: String,
    pub quantity: i32,
}

impl ShipOrder {
    pub fn from_event(e: &conveyor_schemas::records::OrderEvent) -> ShipOrder {
        use conveyor_schemas::records::OrderEventKind;
        let o = &e.order;
        ShipOrder {
            id: e.event_id.clone(),
            order_id: e.order_id.clone(),
            version: e.version,
            channel: o.channel.clone(),
            number: o
                .external_number
                .clone()
                .unwrap_or_else(|| o.external_id.clone()),
            created_at: o.created_at,
            ship_to: o.shipping_address.clone(),
            priority: o.priority,
            ship_by: o.ship_by,
            deliver_by: o.deliver_by,
            lines: o
                .lines
                .iter()
                .filter(|l| l.requires_shipping)
                .map(|l| ShipLine {
                    line_id: l.line_id.clone(),
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                })
                .collect(),
            gift_message: o.gift_message.clone(),
            cancelled: e.kind == OrderEventKind::Cancelled,
        }
    }
}

/// Why a shipment cannot be planned. Each is a fact about the input or
/// the config that retrying will not change: the record goes to the DLQ.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RouteError {
    #[error("warehouse `{0}` is not in the config")]
    Warehouse(String),
    #[error("sku `{0}` is not in the catalog (its weight is unknown)")]
    Sku(String),
    #[error("international shipments are not routed yet (destination country {0})")]
    International(String),
    #[error("no carrier service can take this parcel: {0}")]
    NoService(String),
    #[error("warehouse `{warehouse}`: {source}")]
    Calendar {
        warehouse: String,
        source: CalendarError,
    },
}

/// A warehouse as routing sees it.
#[derive(Debug, Clone)]
struct Origin {
    zip3: Option<Point>,
    clock: Clock,
}

/// What route needs of the config, prepared once.
#[derive(Debug, Clone)]
pub struct Router {
    pub routing: RoutingConfig,
    origins: BTreeMap<String, Result<Origin, CalendarError>>,
    currency: Currency,
    /// Short hash of the routing config and warehouses.
    pub config_version: String,
}

impl Router {
    /// The currency rates are in.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn new(routing: RoutingConfig, warehouses: &[WarehouseConfig]) -> Router {
        let text = serde_json::to_string(&(&routing, warehouses)).unwrap_or_default();
        let digest = Sha256::digest(text.as_bytes());
        let config_version = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let origins = warehouses
            .iter()
            .map(|w| {
                let origin = Clock::new(&w.timezone, &w.cutoff).map(|clock| Origin {
                    zip3: Centroids::us().zip3(&w.country, &w.postal_code),
                    clock,
                });
                (w.id.clone(), origin)
            })
            .collect();
        let currency = Currency::new(&routing.currency).unwrap_or(Currency::USD);
        Router {
            routing,
            origins,
            currency,
            config_version,
        }
    }

    fn origin(&self, warehouse: &str) -> Result<&Origin, RouteError> {
        match self.origins.get(warehouse) {
            None => Err(RouteError::Warehouse(warehouse.to_string())),
            Some(Err(e)) => Err(RouteError::Calendar {
                warehouse: warehouse.to_string(),
                source: e.clone(),
            }),
            Some(Ok(o)) => Ok(o),
        }
    }

    fn promise_days(&self, p: Priority) -> u32 {
        let d = self.routing.promise_days;
        match p {
            Priority::Standard => d.standard,
            Priority::Expedited => d.expedited,
            Priority::Overnight => d.overnight,
        }
    }
}

/// One service's quote, before the choice.
struct Quote<'a> {
    carrier: &'a CarrierConfig,
    service: &'a str,
    zone: u8,
    cents: u64,
    transit_days: u32,
    delivery_ms: i64,
    excluded: Option<String>,
    meets_sla: bool,
}

/// Plans the parcel of `alloc` (the `n`th shipment of the order from that
/// warehouse), released at `at_ms` (the allocation's event time).
pub fn plan(
    router: &Router,
    catalog: &Catalog,
    order: &ShipOrder,
    alloc: &WarehouseAllocation,
    shipment_id: String,
    event_id: String,
    at_ms: i64,
) -> Result<PlannedShipment, RouteError> {
    let to = &order.ship_to;
    if !to.country.eq_ignore_ascii_case("US") {
        return Err(RouteError::International(to.country.clone()));
    }
    let origin = router.origin(&alloc.warehouse_id)?;
    let cal = |source| RouteError::Calendar {
        warehouse: alloc.warehouse_id.clone(),
        source,
    };

    // Pack.
    let mut units = Vec::new();
    let mut hazmat: Vec<String> = Vec::new();
    for l in &alloc.lines {
        let sku = catalog
            .get(&l.sku)
            .ok_or_else(|| RouteError::Sku(l.sku.clone()))?;
        let d = |v: Option<i32>, i: usize| {
            v.and_then(|x| u32::try_from(x).ok())
                .filter(|&x| x > 0)
                .unwrap_or(DEFAULT_DIMS[i])
        };
        let unit = Unit::new(
            d(sku.length_mm, 0),
            d(sku.width_mm, 1),
            d(sku.height_mm, 2),
            u32::try_from(sku.weight_grams).unwrap_or(0),
        );
        units.extend(std::iter::repeat_n(
            unit,
            usize::try_from(l.quantity).unwrap_or(0),
        ));
        if let Some(h) = sku.hazmat.as_ref().filter(|h| !h.is_empty()) {
            if !hazmat.contains(h) {
                hazmat.push(h.clone());
            }
        }
    }
    let parcel = packing::pack(&units, &router.routing.boxes);

    // Dates.
    let ship_date = origin.clock.ship_date(at_ms).map_err(cal)?;
    let deadline = match order.deliver_by {
        Some(d) => d,
        None => {
            let created = origin.clock.date_of(order.created_at).map_err(cal)?;
            let due = calendar::add_business_days(created, router.promise_days(order.priority))
                .map_err(cal)?;
            origin.clock.end_of(due).map_err(cal)?
        }
    };
    let ship_by_missed = match order.ship_by {
        Some(sb) => origin.clock.date_of(sb).map_err(cal)? < ship_date,
        None => false,
    };

    // Quote every service.
    let dest = Centroids::us().zip3(&to.country, &to.postal_code);
    let mut quotes = Vec::new();
    for carrier in &router.routing.carriers {
        let zone = match (origin.zip3, dest) {
            (Some(o), Some(d)) => rates::zone_between(carrier, o, d),
            // A ZIP outside the data set: rate as the farthest zone.
            _ => rates::zone(&carrier.zone_miles, f64::INFINITY),
        };
        let carrier_out = rates::carrier_excluded(carrier, to, &hazmat);
        let billable = rates::billable_pounds(carrier, &parcel);
        for s in &carrier.services {
            let transit_days = s.transit_days[usize::from(zone) - 1];
            let day = calendar::add_business_days(ship_date, transit_days).map_err(cal)?;
            let delivery_ms = origin.clock.at(day, DELIVERY_HOUR).map_err(cal)?;
            quotes.push(Quote {
                carrier,
                service: &s.id,
                zone,
                cents: rates::price_cents(s, zone, billable),
                transit_days,
                delivery_ms,
                excluded: carrier_out
                    .clone()
                    .or_else(|| rates::service_excluded(s, &parcel)),
                meets_sla: !ship_by_missed && delivery_ms <= deadline,
            });
        }
    }

    // Choose.
    let key = |q: &Quote| (q.carrier.id.clone(), q.service.to_string());
    let eligible = quotes.iter().filter(|q| q.excluded.is_none());
    let chosen = eligible
        .clone()
        .filter(|q| q.meets_sla)
        .min_by(|a, b| (a.cents, a.delivery_ms, key(a)).cmp(&(b.cents, b.delivery_ms, key(b))))
        .or_else(|| {
            eligible.min_by(|a, b| {
                (a.delivery_ms, a.cents, key(a)).cmp(&(b.delivery_ms, b.cents, key(b)))
            })
        });
    let Some(chosen) = chosen else {
        let reasons: Vec<String> = quotes
            .iter()
            .map(|q| {
                format!(
                    "{}/{}: {}",
                    q.carrier.id,
                    q.service,
                    q.excluded.as_deref().unwrap_or("?")
                )
            })
            .collect();
        return Err(RouteError::NoService(reasons.join("; ")));
    };
    let money =
        |cents: u64| Money::from_cents(i64::try_from(cents).unwrap_or(i64::MAX), router.currency);
    let due = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .map(|t| t.to_string())
            .unwrap_or_else(|_| ms.to_string())
    };
    let alternatives = quotes
        .iter()
        .map(|q| {
            let why = if std::ptr::eq(q, chosen) {
                None
            } else if let Some(e) = &q.excluded {
                Some(format!("excluded: {e}"))
            } else if !q.meets_sla && chosen.meets_sla {
                Some(if ship_by_missed {
                    "misses the ship-by date".to_string()
                } else {
                    format!(
                        "misses the SLA: delivers {}, due {}",
                        due(q.delivery_ms),
                        due(deadline)
                    )
                })
            } else if !chosen.meets_sla {
                Some("no service meets the SLA; a faster or cheaper one was chosen".into())
            } else {
                Some(format!(
                    "costs {} more",
                    money(q.cents.saturating_sub(chosen.cents)).amount
                ))
            };
            RateQuote {
                carrier: q.carrier.id.clone(),
                service: q.service.to_string(),
                rate: money(q.cents),
                transit_days: i32::try_from(q.transit_days).unwrap_or(i32::MAX),
                meets_sla: q.meets_sla,
                rejected_because: why,
            }
        })
        .collect();
    Ok(PlannedShipment {
        event_id,
        shipment_id,
        order_id: order.order_id.clone(),
        warehouse_id: alloc.warehouse_id.clone(),
        lines: alloc.lines.iter().map(LineQty::clone).collect(),
        ship_to: to.clone(),
        parcel,
        carrier: chosen.carrier.id.clone(),
        service: chosen.service.to_string(),
        rate: money(chosen.cents),
        zone: Some(chosen.zone.to_string()),
        ship_by: order.ship_by,
        estimated_delivery: Some(chosen.delivery_ms),
        meets_sla: chosen.meets_sla,
        alternatives,
        config_version: format!("{}.c{}", router.config_version, catalog.version()),
        planned_at: at_ms,
        order_number: Some(order.number.clone()),
        ordered_at: Some(order.created_at),
        gift_message: order.gift_message.clone(),
        line_names: alloc
            .lines
            .iter()
            .filter_map(|l| {
                let line = order.lines.iter().find(|o| o.line_id == l.line_id)?;
                Some((l.line_id.clone(), line.name.clone()))
            })
            .collect(),
        bins: alloc
            .lines
            .iter()
            .filter_map(|l| {
                let bin = catalog.get(&l.sku)?.bin_location.clone()?;
                Some((l.sku.clone(), bin))
            })
            .collect(),
        status: PlanStatus::Planned,
    })
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A catalog, a router and orders the route tests share.

    use conveyor_schemas::records::{Address, CatalogSku, LineQty, Priority, WarehouseAllocation};

    use super::{Router, ShipLine, ShipOrder};
    use crate::catalog::Catalog;

    pub fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    pub fn router() -> Router {
        Router::new(
            conveyor_runtime::routing::sample(),
            &conveyor_runtime::warehouses::sample(),
        )
    }

    fn sku(id: &str, grams: i32, dims: [i32; 3], hazmat: Option<&str>) -> CatalogSku {
        CatalogSku {
            sku: id.into(),
            name: id.into(),
            weight_grams: grams,
            length_mm: Some(dims[0]),
            width_mm: Some(dims[1]),
            height_mm: Some(dims[2]),
            declared_value: None,
            hazmat: hazmat.map(String::from),
            bin_location: Some("A-01-1".into()),
            listings: vec![],
            updated_at: 7,
        }
    }

    /// BOOSTER: 400 g, 14 x 9 x 4 cm. BATTERY: 300 g, lithium (UN3481).
    pub fn catalog() -> Catalog {
        Catalog::from_skus([
            sku("BOOSTER", 400, [140, 90, 40], None),
            sku("BATTERY", 300, [100, 60, 40], Some("UN3481")),
        ])
    }

    pub fn address(line1: &str, city: &str, region: &str, zip: &str) -> Address {
        Address {
            name: "Ada Lovelace".into(),
            company: None,
            line1: line1.into(),
            line2: None,
            city: city.into(),
            region: Some(region.into()),
            postal_code: zip.into(),
            country: "US".into(),
            phone: None,
        }
    }

    /// An order created Monday 2026-11-23 10:00 New York time.
    pub fn order(priority: Priority, to: Address) -> ShipOrder {
        ShipOrder {
            id: "evt-1".into(),
            order_id: "shopify-1001".into(),
            version: 1,
            channel: "shopify".into(),
            number: "#1001".into(),
            created_at: ms("2026-11-23T15:00:00Z"),
            ship_to: to,
            priority,
            ship_by: None,
            deliver_by: None,
            lines: vec![ShipLine {
                line_id: "l1".into(),
                sku: "BOOSTER".into(),
                name: "Booster box".into(),
                quantity: 1,
            }],
            gift_message: None,
            cancelled: false,
        }
    }

    pub fn alloc(warehouse: &str, sku: &str, quantity: i32) -> WarehouseAllocation {
        WarehouseAllocation {
            warehouse_id: warehouse.into(),
            lines: vec![LineQty {
                line_id: "l1".into(),
                sku: sku.into(),
                quantity,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use conveyor_schemas::records::Priority;

    use super::fixtures::*;
    use super::*;

    fn run(order: &ShipOrder, a: &WarehouseAllocation) -> Result<PlannedShipment, RouteError> {
        plan(
            &router(),
            &catalog(),
            order,
            a,
            "s/1".into(),
            "e/0".into(),
            ms("2026-11-23T15:00:00Z"),
        )
    }

    fn rejected<'a>(p: &'a PlannedShipment, carrier: &str, service: &str) -> &'a RateQuote {
        p.alternatives
            .iter()
            .find(|q| q.carrier == carrier && q.service == service)
            .unwrap()
    }

    #[test]
    fn a_standard_order_next_door_goes_by_the_cheapest_service() {
        // Edison NJ -> Manhattan: zone 1 for everyone. One booster in the
        // mailer: 440 g = 1 lb actual; the mailer is 10 x 7 x 2 in = 140
        // in3, which UPS/FedEx (divisor 139, no minimum) bill as 2 lb and
        // USPS (only above 1728 in3) does not.
        let o = order(
            Priority::Standard,
            address("1 Penn Plz", "New York", "NY", "10001"),
        );
        let p = run(&o, &alloc("nj-edison", "BOOSTER", 1)).unwrap();
        assert_eq!(p.parcel.box_type, "mailer-s");
        assert_eq!(p.parcel.weight_grams, 440);
        assert_eq!(
            (p.carrier.as_str(), p.service.as_str()),
            ("usps", "ground_advantage")
        );
        assert_eq!(p.rate, Money::from_cents(540, Currency::USD));
        assert_eq!(p.zone.as_deref(), Some("1"));
        assert!(p.meets_sla);
        // Shipped Monday (before the 15:00 cut-off), 2 business days:
        // Wednesday 20:00 New York time.
        assert_eq!(p.estimated_delivery, Some(ms("2026-11-26T01:00:00Z")));
        assert_eq!(p.alternatives.len(), 8);
        assert_eq!(
            rejected(&p, "usps", "ground_advantage").rejected_because,
            None
        );
        assert_eq!(
            rejected(&p, "ups", "ground").rate,
            Money::from_cents(1010 + 55, Currency::USD)
        );
        assert_eq!(
            rejected(&p, "usps", "priority").rejected_because.as_deref(),
            Some("costs 3.55 more")
        );
    }

    #[test]
    fn an_expedited_order_across_the_country_takes_the_cheapest_two_day_service() {
        // Edison -> Los Angeles: zone 8. Expedited: 2 business days from
        // Monday, due Wednesday. Ground services take 5 days, USPS
        // Priority 3; Express (1 lb) $45.50, UPS 2nd Day Air (2 lb dim)
        // 36.20 + 7.20, FedEx 2Day 36.00 + 7.15 = $43.15, UPS Next Day Air
        // 56.80 + 10.10.
        let o = order(
            Priority::Expedited,
            address("200 N Spring St", "Los Angeles", "CA", "90012"),
        );
        let p = run(&o, &alloc("nj-edison", "BOOSTER", 1)).unwrap();
        assert_eq!((p.carrier.as_str(), p.service.as_str()), ("fedex", "2day"));
        assert_eq!(p.rate, Money::from_cents(4315, Currency::USD));
        assert_eq!(p.zone.as_deref(), Some("8"));
        assert!(p.meets_sla);
        let ground = rejected(&p, "usps", "ground_advantage");
        assert!(!ground.meets_sla);
        assert!(ground
            .rejected_because
            .as_deref()
            .unwrap()
            .starts_with("misses the SLA: delivers 2026-12-01"));
        assert_eq!(
            rejected(&p, "ups", "2day").rejected_because.as_deref(),
            Some("costs 0.25 more")
        );
    }

    #[test]
    fn when_nothing_meets_the_deadline_the_earliest_delivery_wins_and_says_so() {
        // Due by the end of Monday: no service delivers the same day. The
        // earliest is Tuesday (1 day in zone 1); the cheapest of those is
        // USPS Priority, $8.95.
        let mut o = order(
            Priority::Overnight,
            address("1 Penn Plz", "New York", "NY", "10001"),
        );
        o.deliver_by = Some(ms("2026-11-24T04:59:59Z"));
        let p = run(&o, &alloc("nj-edison", "BOOSTER", 1)).unwrap();
        assert_eq!(
            (p.carrier.as_str(), p.service.as_str(), p.meets_sla),
            ("usps", "priority", false)
        );
        assert!(p.alternatives.iter().all(|q| !q.meets_sla));
        // A missed ship-by date misses the SLA whatever the service.
        let mut o = order(
            Priority::Standard,
            address("1 Penn Plz", "New York", "NY", "10001"),
        );
        o.ship_by = Some(ms("2026-11-20T22:00:00Z"));
        let p = run(&o, &alloc("nj-edison", "BOOSTER", 1)).unwrap();
        assert_eq!((p.service.as_str(), p.meets_sla), ("priority", false));
        assert_eq!(
            rejected(&p, "usps", "ground_advantage")
                .rejected_because
                .as_deref(),
            Some("no service meets the SLA; a faster or cheaper one was chosen")
        );
    }

    #[test]
    fn exclusions_by_destination_po_box_and_hazmat() {
        // A PO box in Alaska: UPS does not serve AK, FedEx does not deliver
        // to PO boxes: only USPS remains.
        let o = order(
            Priority::Standard,
            address("PO Box 12", "Anchorage", "AK", "99501"),
        );
        let p = run(&o, &alloc("ca-ontario", "BOOSTER", 1)).unwrap();
        assert_eq!(p.carrier, "usps");
        assert_eq!(
            rejected(&p, "ups", "ground").rejected_because.as_deref(),
            Some("excluded: ups does not serve AK")
        );
        assert_eq!(
            rejected(&p, "fedex", "2day").rejected_because.as_deref(),
            Some("excluded: fedex does not deliver to PO boxes")
        );
        // Lithium batteries (UN3481): USPS does not take them.
        let o = order(
            Priority::Standard,
            address("1 Penn Plz", "New York", "NY", "10001"),
        );
        let p = run(&o, &alloc("nj-edison", "BATTERY", 1)).unwrap();
        assert_eq!((p.carrier.as_str(), p.service.as_str()), ("ups", "ground"));
        // Both together: nobody can take it, and the error says why.
        let o = order(
            Priority::Standard,
            address("PO Box 12", "Anchorage", "AK", "99501"),
        );
        let e = run(&o, &alloc("ca-ontario", "BATTERY", 1)).unwrap_err();
        assert!(e
            .to_string()
            .contains("usps/priority: usps does not accept hazmat class UN3481"));
    }

    #[test]
    fn what_cannot_be_planned_is_an_error_not_a_guess() {
        let o = order(
            Priority::Standard,
            address("1 Penn Plz", "New York", "NY", "10001"),
        );
        assert_eq!(
            run(&o, &alloc("nj-edison", "NOPE", 1)).unwrap_err(),
            RouteError::Sku("NOPE".into())
        );
        assert_eq!(
            run(&o, &alloc("mars", "BOOSTER", 1)).unwrap_err(),
            RouteError::Warehouse("mars".into())
        );
        let mut o = o;
        o.ship_to.country = "CA".into();
        assert_eq!(
            run(&o, &alloc("nj-edison", "BOOSTER", 1)).unwrap_err(),
            RouteError::International("CA".into())
        );
    }

    #[test]
    fn the_same_shipment_and_config_give_the_same_plan() {
        let o = order(
            Priority::Expedited,
            address("200 N Spring St", "Los Angeles", "CA", "90012"),
        );
        let a = alloc("tx-dallas", "BOOSTER", 3);
        assert_eq!(run(&o, &a).unwrap(), run(&o, &a).unwrap());
        let p = run(&o, &a).unwrap();
        assert_eq!(p.config_version, format!("{}.c7", router().config_version));
    }
}
