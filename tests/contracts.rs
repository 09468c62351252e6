//! The contracts through the real registry and the Confluent wire format:
//! every record type round-trips exactly (property tests, money exact for
//! arbitrary values), schemas evolve in both directions, and bad bytes give
//! typed errors with their coordinates instead of panics.

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use conveyor_schemas::codec::{Codec, DecodeErrorKind, EncodeError, Source};
use conveyor_schemas::records::*;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use rust_decimal::Decimal;

// ---- one runtime, one codec and one topic prefix for the whole file ----

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

fn codec() -> &'static Codec {
    static CODEC: OnceLock<Codec> = OnceLock::new();
    CODEC.get_or_init(|| {
        let config = common::config();
        let ready = rt().block_on(async {
            reqwest::get(format!("{}/subjects", config.schema_registry.url))
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        });
        assert!(
            ready,
            "no schema registry at {}; start the dev services with `cargo run -- dev up`",
            config.schema_registry.url
        );
        Codec::new(&config.schema_registry.url).unwrap()
    })
}

fn topic(name: &str) -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    format!(
        "{}.{name}",
        PREFIX.get_or_init(|| common::unique("it.contracts"))
    )
}

fn round_trip<T: Record + PartialEq + std::fmt::Debug>(
    name: &str,
    value: &T,
) -> Result<(), TestCaseError> {
    let topic = topic(name);
    let bytes = rt()
        .block_on(codec().encode(&topic, value))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(bytes[0], 0u8, "magic byte");
    let at = Source {
        topic: &topic,
        partition: 0,
        offset: 7,
    };
    let back: T = rt()
        .block_on(codec().decode(Some(&bytes), at))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, value);

    // The hand-written fast path and apache-avro agree byte for byte, both ways.
    let schema = T::schema();
    let reference = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_ser_to_vec(value)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        &bytes[5..],
        &reference[..],
        "fast encoding == apache-avro encoding"
    );
    let reader = apache_avro::reader::datum::GenericDatumReader::builder(schema)
        .build()
        .unwrap();
    let by_avro: T = reader
        .read_deser(&mut std::io::Cursor::new(&bytes[5..]))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&by_avro, value);
    Ok(())
}

// ---- strategies ----

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,10}"
}
fn id() -> impl Strategy<Value = String> {
    "[a-z0-9:/._-]{1,16}"
}
fn ts() -> impl Strategy<Value = i64> {
    any::<i64>()
}
fn map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(text(), text(), 0..3)
}
/// Arbitrary amounts: any 4-decimal value that fits decimal(24,4), and any
/// amount in cents.
fn money() -> impl Strategy<Value = Money> {
    let amount = prop_oneof![
        any::<i64>().prop_map(|u| Decimal::from_i128_with_scale(i128::from(u), 4)),
        any::<i64>().prop_map(|c| Decimal::new(c, 2)),
        (-99_999_999_999_999_999i128..=99_999_999_999_999_999i128)
            .prop_map(|u| Decimal::from_i128_with_scale(u * 10_000 + 9_999, 4)),
    ];
    (amount, "[A-Z]{3}").prop_map(|(amount, code)| Money {
        amount,
        currency: Currency::new(&code).unwrap(),
    })
}
fn address() -> impl Strategy<Value = Address> {
    (
        text(),
        option::of(text()),
        text(),
        option::of(text()),
        text(),
        option::of(text()),
        text(),
        "[A-Z]{2}",
        option::of(text()),
    )
        .prop_map(
            |(name, company, line1, line2, city, region, postal_code, country, phone)| Address {
                name,
                company,
                line1,
                line2,
                city,
                region,
                postal_code,
                country,
                phone,
            },
        )
}
fn line_qty() -> impl Strategy<Value = LineQty> {
    (id(), id(), any::<i32>()).prop_map(|(line_id, sku, quantity)| LineQty {
        line_id,
        sku,
        quantity,
    })
}
fn document() -> impl Strategy<Value = Document> {
    (text(), text(), "[0-9a-f]{64}", any::<i32>()).prop_map(|(uri, content_type, sha256, pages)| {
        Document {
            uri,
            content_type,
            sha256,
            pages,
        }
    })
}
fn order_line() -> impl Strategy<Value = OrderLine> {
    (
        (id(), id(), text(), any::<i32>()),
        (money(), money(), money(), money()),
        (any::<bool>(), map()),
    )
        .prop_map(
            |(
                (line_id, sku, name, quantity),
                (unit_price, discount, tax, total),
                (requires_shipping, properties),
            )| OrderLine {
                line_id,
                sku,
                name,
                quantity,
                unit_price,
                discount,
                tax,
                total,
                requires_shipping,
                properties,
            },
        )
}
fn order() -> impl Strategy<Value = Order> {
    let status = prop_oneof![
        Just(OrderStatus::Pending),
        Just(OrderStatus::Open),
        Just(OrderStatus::OnHold),
        Just(OrderStatus::PartiallyFulfilled),
        Just(OrderStatus::Fulfilled),
        Just(OrderStatus::Cancelled),
    ];
    let priority = prop_oneof![
        Just(Priority::Standard),
        Just(Priority::Expedited),
        Just(Priority::Overnight)
    ];
    let customer = (
        option::of(id()),
        option::of(text()),
        text(),
        option::of(text()),
    )
        .prop_map(|(customer_id, email, name, phone)| Customer {
            customer_id,
            email,
            name,
            phone,
        });
    let totals = (money(), money(), money(), money(), money()).prop_map(
        |(subtotal, discount, shipping, tax, total)| Totals {
            subtotal,
            discount,
            shipping,
            tax,
            total,
        },
    );
    (
        (
            id(),
            id(),
            id(),
            option::of(text()),
            status,
            "[A-Z]{3}",
            customer,
        ),
        (
            address(),
            option::of(address()),
            vec(order_line(), 0..4),
            totals,
            priority,
        ),
        (
            option::of(text()),
            option::of(ts()),
            option::of(ts()),
            any::<bool>(),
            ts(),
            ts(),
        ),
        (
            vec(text(), 0..3),
            option::of(text()),
            option::of(text()),
            map(),
        ),
    )
        .prop_map(
            |(
                (order_id, channel, external_id, external_number, status, currency, customer),
                (shipping_address, billing_address, lines, totals, priority),
                (
                    shipping_method,
                    ship_by,
                    deliver_by,
                    fulfilled_by_channel,
                    created_at,
                    updated_at,
                ),
                (tags, note, gift_message, extras),
            )| Order {
                order_id,
                channel,
                external_id,
                external_number,
                status,
                currency,
                customer,
                shipping_address,
                billing_address,
                lines,
                totals,
                priority,
                shipping_method,
                ship_by,
                deliver_by,
                fulfilled_by_channel,
                created_at,
                updated_at,
                tags,
                note,
                gift_message,
                extras,
            },
        )
}
fn order_event() -> impl Strategy<Value = OrderEvent> {
    let kind = prop_oneof![
        Just(OrderEventKind::Created),
        Just(OrderEventKind::Updated),
        Just(OrderEventKind::Cancelled)
    ];
    let cancellation = option::of((text(), ts(), any::<bool>()).prop_map(
        |(reason, cancelled_at, restock)| Cancellation {
            reason,
            cancelled_at,
            restock,
        },
    ));
    (
        id(),
        id(),
        kind,
        any::<i64>(),
        ts(),
        id(),
        order(),
        cancellation,
    )
        .prop_map(
            |(
                event_id,
                order_id,
                kind,
                version,
                occurred_at,
                source_event_id,
                order,
                cancellation,
            )| OrderEvent {
                event_id,
                order_id,
                kind,
                version,
                occurred_at,
                source_event_id,
                order,
                cancellation,
            },
        )
}
fn raw_order() -> impl Strategy<Value = RawOrder> {
    let source = prop_oneof![
        Just(RawSource::Webhook),
        Just(RawSource::Poller),
        Just(RawSource::Import),
        Just(RawSource::Replay)
    ];
    (
        id(),
        id(),
        id(),
        option::of(text()),
        source,
        option::of(text()),
        ts(),
        text(),
        vec(any::<u8>(), 0..64),
        map(),
    )
        .prop_map(
            |(
                event_id,
                channel,
                external_order_id,
                external_order_number,
                source,
                topic_hint,
                received_at,
                content_type,
                payload,
                source_headers,
            )| RawOrder {
                event_id,
                channel,
                external_order_id,
                external_order_number,
                source,
                topic_hint,
                received_at,
                content_type,
                payload,
                source_headers,
            },
        )
}
fn dlq_record() -> impl Strategy<Value = DlqRecord> {
    let kind = prop_oneof![
        Just(ErrorKind::Decode),
        Just(ErrorKind::UnknownSchema),
        Just(ErrorKind::Validation),
        Just(ErrorKind::Processing)
    ];
    let header = (text(), vec(any::<u8>(), 0..8)).prop_map(|(key, value)| Header { key, value });
    (
        (id(), id(), kind, text(), id(), any::<i32>(), any::<i64>()),
        (
            option::of(ts()),
            option::of(any::<i32>()),
            option::of(vec(any::<u8>(), 0..16)),
            option::of(vec(any::<u8>(), 0..32)),
            vec(header, 0..3),
            any::<i32>(),
        ),
    )
        .prop_map(
            |(
                (
                    event_id,
                    stage,
                    error_kind,
                    reason,
                    source_topic,
                    source_partition,
                    source_offset,
                ),
                (
                    source_timestamp,
                    schema_id,
                    original_key,
                    original_value,
                    original_headers,
                    attempts,
                ),
            )| DlqRecord {
                event_id,
                stage,
                error_kind,
                reason,
                source_topic,
                source_partition,
                source_offset,
                source_timestamp,
                schema_id,
                original_key,
                original_value,
                original_headers,
                attempts,
            },
        )
}
fn inventory_event() -> impl Strategy<Value = InventoryEvent> {
    let kind = prop_oneof![
        Just(InventoryEventKind::Restock),
        Just(InventoryEventKind::Adjustment),
        Just(InventoryEventKind::Count),
        Just(InventoryEventKind::Transfer)
    ];
    (
        id(),
        id(),
        id(),
        kind,
        any::<i32>(),
        option::of(id()),
        option::of(text()),
        option::of(text()),
        ts(),
    )
        .prop_map(
            |(
                event_id,
                sku,
                warehouse_id,
                kind,
                quantity,
                to_warehouse_id,
                reason,
                reference,
                occurred_at,
            )| InventoryEvent {
                event_id,
                sku,
                warehouse_id,
                kind,
                quantity,
                to_warehouse_id,
                reason,
                reference,
                occurred_at,
            },
        )
}
fn allocation_result() -> impl Strategy<Value = AllocationResult> {
    let status = prop_oneof![
        Just(AllocationStatus::Allocated),
        Just(AllocationStatus::PartiallyAllocated),
        Just(AllocationStatus::Backordered),
        Just(AllocationStatus::Released),
        Just(AllocationStatus::FulfilledByChannel),
    ];
    let wa = (id(), vec(line_qty(), 0..3)).prop_map(|(warehouse_id, lines)| WarehouseAllocation {
        warehouse_id,
        lines,
    });
    (
        id(),
        id(),
        any::<i64>(),
        status,
        vec(wa, 0..3),
        vec(line_qty(), 0..3),
        text(),
        text(),
        ts(),
    )
        .prop_map(
            |(
                event_id,
                order_id,
                order_version,
                status,
                allocations,
                backordered,
                policy,
                config_version,
                decided_at,
            )| AllocationResult {
                event_id,
                order_id,
                order_version,
                status,
                allocations,
                backordered,
                policy,
                config_version,
                decided_at,
            },
        )
}
fn stock_movement() -> impl Strategy<Value = StockMovement> {
    let kind = prop_oneof![
        Just(MovementKind::Reserved),
        Just(MovementKind::Released),
        Just(MovementKind::Shipped),
        Just(MovementKind::Received),
        Just(MovementKind::Adjusted),
        Just(MovementKind::Counted),
        Just(MovementKind::TransferredOut),
        Just(MovementKind::TransferredIn),
        Just(MovementKind::Held),
        Just(MovementKind::Revoked),
    ];
    (
        id(),
        id(),
        id(),
        kind,
        any::<i32>(),
        option::of(id()),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        ts(),
        any::<i32>(),
        any::<i64>(),
    )
        .prop_map(
            |(
                event_id,
                sku,
                warehouse_id,
                kind,
                quantity,
                order_id,
                on_hand,
                reserved,
                available,
                occurred_at,
                held,
                seq,
            )| StockMovement {
                event_id,
                sku,
                warehouse_id,
                kind,
                quantity,
                order_id,
                on_hand,
                reserved,
                available,
                occurred_at,
                held,
                seq,
            },
        )
}
fn inventory_alert() -> impl Strategy<Value = InventoryAlert> {
    let kind = prop_oneof![
        Just(AlertKind::LowStock),
        Just(AlertKind::OutOfStock),
        Just(AlertKind::Recovered)
    ];
    (
        id(),
        id(),
        option::of(id()),
        kind,
        any::<i32>(),
        any::<i32>(),
        ts(),
    )
        .prop_map(
            |(event_id, sku, warehouse_id, kind, available, reorder_point, occurred_at)| {
                InventoryAlert {
                    event_id,
                    sku,
                    warehouse_id,
                    kind,
                    available,
                    reorder_point,
                    occurred_at,
                }
            },
        )
}
fn planned_shipment() -> impl Strategy<Value = PlannedShipment> {
    let parcel = (
        text(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
        any::<i32>(),
    )
        .prop_map(
            |(box_type, weight_grams, length_mm, width_mm, height_mm)| Parcel {
                box_type,
                weight_grams,
                length_mm,
                width_mm,
                height_mm,
            },
        );
    let quote = (
        id(),
        id(),
        money(),
        any::<i32>(),
        any::<bool>(),
        option::of(text()),
    )
        .prop_map(
            |(carrier, service, rate, transit_days, meets_sla, rejected_because)| RateQuote {
                carrier,
                service,
                rate,
                transit_days,
                meets_sla,
                rejected_because,
            },
        );
    (
        (
            id(),
            id(),
            id(),
            id(),
            vec(line_qty(), 0..3),
            address(),
            parcel,
        ),
        (
            id(),
            id(),
            money(),
            option::of(text()),
            option::of(ts()),
            option::of(ts()),
            any::<bool>(),
            vec(quote, 0..3),
            text(),
            ts(),
        ),
        (
            option::of(text()),
            option::of(ts()),
            option::of(text()),
            btree_map(text(), text(), 0..3),
            btree_map(text(), text(), 0..3),
            prop_oneof![Just(PlanStatus::Planned), Just(PlanStatus::Cancelled)],
        ),
    )
        .prop_map(
            |(
                (event_id, shipment_id, order_id, warehouse_id, lines, ship_to, parcel),
                (
                    carrier,
                    service,
                    rate,
                    zone,
                    ship_by,
                    estimated_delivery,
                    meets_sla,
                    alternatives,
                    config_version,
                    planned_at,
                ),
                (order_number, ordered_at, gift_message, line_names, bins, status),
            )| PlannedShipment {
                event_id,
                shipment_id,
                order_id,
                warehouse_id,
                lines,
                ship_to,
                parcel,
                carrier,
                service,
                rate,
                zone,
                ship_by,
                estimated_delivery,
                meets_sla,
                alternatives,
                config_version,
                planned_at,
                order_number,
                ordered_at,
                gift_message,
                line_names,
                bins,
                status,
            },
        )
}
fn labeled_shipment() -> impl Strategy<Value = LabeledShipment> {
    (
        (id(), id(), id(), id(), id(), id(), option::of(text())),
        (
            money(),
            id(),
            document(),
            document(),
            option::of(document()),
            ts(),
            vec(line_qty(), 0..3),
            prop_oneof![Just(LabelStatus::Labeled), Just(LabelStatus::Voided)],
        ),
    )
        .prop_map(
            |(
                (event_id, shipment_id, order_id, carrier, service, tracking_number, tracking_url),
                (
                    label_cost,
                    idempotency_key,
                    label,
                    packing_slip,
                    combined,
                    labeled_at,
                    lines,
                    status,
                ),
            )| LabeledShipment {
                event_id,
                shipment_id,
                order_id,
                carrier,
                service,
                tracking_number,
                tracking_url,
                label_cost,
                idempotency_key,
                label,
                packing_slip,
                combined,
                labeled_at,
                lines,
                status,
            },
        )
}
fn synced_shipment() -> impl Strategy<Value = SyncedShipment> {
    (
        (id(), id(), id(), id(), id(), id(), id()),
        (
            prop_oneof![
                Just(SyncOutcome::Confirmed),
                Just(SyncOutcome::AlreadyConfirmed),
                Just(SyncOutcome::NotSynced),
                Just(SyncOutcome::Withdrawn)
            ],
            option::of(id()),
            option::of(text()),
            ts(),
        ),
    )
        .prop_map(
            |(
                (
                    event_id,
                    shipment_id,
                    order_id,
                    channel,
                    external_order_id,
                    carrier,
                    tracking_number,
                ),
                (outcome, channel_reference, note, synced_at),
            )| SyncedShipment {
                event_id,
                shipment_id,
                order_id,
                channel,
                external_order_id,
                carrier,
                tracking_number,
                outcome,
                channel_reference,
                note,
                synced_at,
            },
        )
}
fn exception_record() -> impl Strategy<Value = ExceptionRecord> {
    (
        (id(), id(), id(), option::of(id()), id(), id()),
        (text(), text(), id(), any::<i32>(), any::<i64>(), ts()),
    )
        .prop_map(
            |(
                (event_id, exception_id, order_id, shipment_id, stage, code),
                (reason, action, source_topic, source_partition, source_offset, raised_at),
            )| ExceptionRecord {
                event_id,
                exception_id,
                order_id,
                shipment_id,
                stage,
                code,
                reason,
                action,
                source_topic,
                source_partition,
                source_offset,
                raised_at,
            },
        )
}
fn operator_action() -> impl Strategy<Value = OperatorAction> {
    (
        (id(), id(), id(), option::of(id())),
        (
            prop_oneof![
                Just(ActionKind::Retry),
                Just(ActionKind::Cancel),
                Just(ActionKind::Resolve)
            ],
            id(),
            id(),
            text(),
            text(),
            ts(),
        ),
    )
        .prop_map(
            |(
                (action_id, exception_id, order_id, shipment_id),
                (kind, actor, role, reason, detail, at),
            )| OperatorAction {
                event_id: action_id.clone(),
                action_id,
                exception_id,
                order_id,
                shipment_id,
                kind,
                actor,
                role,
                reason,
                detail,
                at,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test] fn raw_order_round_trips(v in raw_order()) { round_trip("raw", &v)?; }
    #[test] fn order_event_round_trips(v in order_event()) { round_trip("orders", &v)?; }
    #[test] fn dlq_record_round_trips(v in dlq_record()) { round_trip("dlq", &v)?; }
    #[test] fn inventory_event_round_trips(v in inventory_event()) { round_trip("inventory", &v)?; }
    #[test] fn allocation_result_round_trips(v in allocation_result()) { round_trip("allocated", &v)?; }
    #[test] fn stock_movement_round_trips(v in stock_movement()) { round_trip("movements", &v)?; }
    #[test] fn inventory_alert_round_trips(v in inventory_alert()) { round_trip("alerts", &v)?; }
    #[test] fn planned_shipment_round_trips(v in planned_shipment()) { round_trip("planned", &v)?; }
    #[test] fn labeled_shipment_round_trips(v in labeled_shipment()) { round_trip("labeled", &v)?; }
    #[test] fn synced_shipment_round_trips(v in synced_shipment()) { round_trip("synced", &v)?; }
    #[test] fn exception_record_round_trips(v in exception_record()) { round_trip("exceptions", &v)?; }
    #[test] fn operator_action_round_trips(v in operator_action()) { round_trip("actions", &v)?; }

    /// Money is exact to the cent for arbitrary values, through the wire.
    #[test]
    fn money_is_exact_to_the_cent(cents in any::<i64>()) {
        let mut ev = sample_order_event();
        ev.order.lines[0].unit_price = Money::from_cents(cents, Currency::USD);
        let topic = topic("money");
        let bytes = rt().block_on(codec().encode(&topic, &ev)).unwrap();
        let back: OrderEvent = rt().block_on(codec().decode(Some(&bytes), Source { topic: &topic, partition: 0, offset: 0 })).unwrap();
        let amount = &back.order.lines[0].unit_price.amount;
        prop_assert_eq!(*amount, Decimal::new(cents, 2));
    }
}

fn usd(cents: i64) -> Money {
    Money::from_cents(cents, Currency::USD)
}

fn sample_order_event() -> OrderEvent {
    OrderEvent {
        event_id: "shopify:450789469:1700000000000/0".into(),
        order_id: "shopify:450789469".into(),
        kind: OrderEventKind::Created,
        version: 1_700_000_000_000,
        occurred_at: 1_700_000_000_000,
        source_event_id: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into(),
        order: Order {
            order_id: "shopify:450789469".into(),
            channel: "shopify".into(),
            external_id: "450789469".into(),
            external_number: Some("#1001".into()),
            status: OrderStatus::Open,
            currency: "USD".into(),
            customer: Customer {
                customer_id: Some("207119551".into()),
                email: Some("bob.norman@example.com".into()),
                name: "Bob Norman".into(),
                phone: None,
            },
            shipping_address: Address {
                name: "Bob Norman".into(),
                company: None,
                line1: "123 Amoebobacterieae St".into(),
                line2: Some("Apt 4".into()),
                city: "Ottawa".into(),
                region: Some("ON".into()),
                postal_code: "K2P 1L4".into(),
                country: "CA".into(),
                phone: Some("555-625-1199".into()),
            },
            billing_address: None,
            lines: vec![OrderLine {
                line_id: "466157049".into(),
                sku: "IPOD2008GREEN".into(),
                name: "IPod Nano - 8gb - green".into(),
                quantity: 2,
                unit_price: usd(19_900),
                discount: usd(0),
                tax: usd(3_980),
                total: usd(43_780),
                requires_shipping: true,
                properties: BTreeMap::new(),
            }],
            totals: Totals {
                subtotal: usd(39_800),
                discount: usd(0),
                shipping: usd(1_000),
                tax: usd(3_980),
                total: usd(44_780),
            },
            priority: Priority::Expedited,
            shipping_method: Some("Express".into()),
            ship_by: Some(1_700_086_400_000),
            deliver_by: None,
            fulfilled_by_channel: false,
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_000,
            tags: vec!["vip".into()],
            note: None,
            gift_message: Some("Happy birthday".into()),
            extras: [("shopify.source_name".to_string(), "web".to_string())].into(),
        },
        cancellation: None,
    }
}

// ---- evolution: v2 adds an optional field with a default to Order ----

/// The v2 schema: OrderEvent with `loyalty_tier` added to Order.
fn order_event_v2_avsc() -> &'static str {
    static AVSC: OnceLock<String> = OnceLock::new();
    AVSC.get_or_init(|| {
        common::with_order_field(
            OrderEvent::avsc(),
            serde_json::json!({
                "name": "loyalty_tier",
                "type": ["null", "string"],
                "default": null,
                "doc": "Loyalty tier of the customer (added in v2)."
            }),
        )
    })
}

/// The v2 consumer's types: Order with the new field, fields in schema order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename = "Order")]
struct OrderV2 {
    order_id: String,
    channel: String,
    external_id: String,
    external_number: Option<String>,
    status: OrderStatus,
    currency: String,
    customer: Customer,
    shipping_address: Address,
    billing_address: Option<Address>,
    lines: Vec<OrderLine>,
    totals: Totals,
    priority: Priority,
    shipping_method: Option<String>,
    ship_by: Option<i64>,
    deliver_by: Option<i64>,
    fulfilled_by_channel: bool,
    created_at: i64,
    updated_at: i64,
    tags: Vec<String>,
    note: Option<String>,
    gift_message: Option<String>,
    extras: BTreeMap<String, String>,
    loyalty_tier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename = "OrderEvent")]
struct OrderEventV2 {
    event_id: String,
    order_id: String,
    kind: OrderEventKind,
    version: i64,
    occurred_at: i64,
    source_event_id: String,
    order: OrderV2,
    cancellation: Option<Cancellation>,
}

conveyor_schemas::avro_record!(OrderV2 {
    order_id,
    channel,
    external_id,
    external_number,
    status,
    currency,
    customer,
    shipping_address,
    billing_address,
    lines,
    totals,
    priority,
    shipping_method,
    ship_by,
    deliver_by,
    fulfilled_by_channel,
    created_at,
    updated_at,
    tags,
    note,
    gift_message,
    extras,
    loyalty_tier,
});
conveyor_schemas::avro_record!(OrderEventV2 {
    event_id,
    order_id,
    kind,
    version,
    occurred_at,
    source_event_id,
    order,
    cancellation,
});

impl Record for OrderEventV2 {
    const NAME: &'static str = "conveyor.OrderEvent";
    fn avsc() -> &'static str {
        order_event_v2_avsc()
    }
    fn schema() -> &'static apache_avro::Schema {
        static S: OnceLock<apache_avro::Schema> = OnceLock::new();
        S.get_or_init(|| apache_avro::Schema::parse_str(order_event_v2_avsc()).unwrap())
    }
}

fn to_v2(v1: &OrderEvent, tier: Option<&str>) -> OrderEventV2 {
    // Through JSON: same field names, plus the new one.
    let mut json = serde_json::to_value(v1).unwrap();
    json["order"]["loyalty_tier"] = serde_json::json!(tier);
    serde_json::from_value(json).unwrap()
}

#[test]
fn v1_and_v2_consumers_read_each_others_records() {
    let codec = codec();
    let topic = topic("evolution");
    let at = Source {
        topic: &topic,
        partition: 0,
        offset: 0,
    };
    let v1_event = sample_order_event();

    // A v1 producer registers v1 and writes.
    let v1_bytes = rt().block_on(codec.encode(&topic, &v1_event)).unwrap();
    // A v2 producer registers v2 (BACKWARD compatible) and writes.
    let v2_event = to_v2(&v1_event, Some("gold"));
    let v2_bytes = rt().block_on(codec.encode(&topic, &v2_event)).unwrap();
    assert_ne!(v1_bytes[1..5], v2_bytes[1..5], "v2 has its own schema id");
    let versions: serde_json::Value = rt().block_on(async {
        reqwest::get(format!(
            "{}/subjects/{topic}-value/versions",
            common::config().schema_registry.url
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
    });
    assert_eq!(versions, serde_json::json!([1, 2]));

    // The v1 consumer reads v2 records: the new field is skipped.
    let read_by_v1: OrderEvent = rt().block_on(codec.decode(Some(&v2_bytes), at)).unwrap();
    assert_eq!(read_by_v1, v1_event);
    // The v2 consumer reads v1 records: the new field takes its default.
    let read_by_v2: OrderEventV2 = rt().block_on(codec.decode(Some(&v1_bytes), at)).unwrap();
    assert_eq!(read_by_v2, to_v2(&v1_event, None));
    // And each reads its own.
    let own: OrderEventV2 = rt().block_on(codec.decode(Some(&v2_bytes), at)).unwrap();
    assert_eq!(own, v2_event);
}

// ---- bad input: typed errors with coordinates, never a panic ----

#[test]
fn bad_bytes_give_typed_errors_with_coordinates() {
    let codec = codec();
    let topic = topic("bad");
    let at = Source {
        topic: &topic,
        partition: 3,
        offset: 42,
    };
    let good = rt()
        .block_on(codec.encode(&topic, &sample_order_event()))
        .unwrap();

    let e = rt()
        .block_on(codec.decode::<OrderEvent>(Some(&[7, 0, 0, 0, 1, 2]), at))
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Framing);
    assert!(
        e.to_string().contains(&format!("{topic}[3]@42")) && e.to_string().contains("magic byte"),
        "{e}"
    );
    assert_eq!(e.dlq_kind(), ErrorKind::Decode);

    let e = rt()
        .block_on(codec.decode::<OrderEvent>(None, at))
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Framing);

    let e = rt()
        .block_on(codec.decode::<OrderEvent>(Some(&[0, 0x7f, 0xff, 0xff, 0xf0, 2]), at))
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::UnknownSchema, "{e}");
    assert_eq!(e.schema_id, Some(0x7fff_fff0));
    assert!(e.to_string().contains("schema id 2147483632"), "{e}");
    assert!(!e.is_retryable());
    assert_eq!(e.dlq_kind(), ErrorKind::UnknownSchema);

    let truncated = &good[..good.len() / 2];
    let e = rt()
        .block_on(codec.decode::<OrderEvent>(Some(truncated), at))
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Data, "{e}");
    assert!(e.schema_id.is_some());

    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    let e = rt()
        .block_on(codec.decode::<OrderEvent>(Some(&trailing), at))
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Data);
    assert!(e.message.contains("trailing"), "{e}");

    // The right bytes for another record type do not pass as an order.
    let inv_topic = self::topic("bad-inventory");
    let inventory = InventoryEvent {
        event_id: "e".into(),
        sku: "S".into(),
        warehouse_id: "W".into(),
        kind: InventoryEventKind::Restock,
        quantity: 5,
        to_warehouse_id: None,
        reason: None,
        reference: None,
        occurred_at: 0,
    };
    let inv = rt().block_on(codec.encode(&inv_topic, &inventory)).unwrap();
    let e = rt()
        .block_on(codec.decode::<OrderEvent>(Some(&inv), at))
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Data, "{e}");

    // Amounts that would lose precision are refused at encode time.
    let mut ev = sample_order_event();
    ev.order.lines[0].unit_price.amount = Decimal::new(123_456, 5);
    let e = rt().block_on(codec.encode(&topic, &ev)).unwrap_err();
    assert!(
        matches!(e, EncodeError::Data { .. }) && e.to_string().contains("fractional digits"),
        "{e}"
    );
}

#[test]
fn an_unreachable_registry_is_retryable() {
    let codec = Codec::new("http://127.0.0.1:1").unwrap();
    let at = Source {
        topic: "t",
        partition: 0,
        offset: 1,
    };
    let e = rt()
        .block_on(codec.decode::<OrderEvent>(Some(&[0, 0, 0, 0, 1, 2]), at))
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::Registry, "{e}");
    assert!(e.is_retryable());
    let e = rt()
        .block_on(codec.encode("t", &sample_order_event()))
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
}
