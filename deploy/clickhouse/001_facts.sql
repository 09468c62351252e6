-- conveyor analytics: the fact tables the ClickHouse sink writes.
--
-- Every table is a ReplacingMergeTree keyed by its natural key with
-- `version` = the event's time in microseconds plus its output index (see
-- sinks/src/event.rs): redeliveries and replays of the same event insert
-- identical rows, a newer event supersedes an older one, and an older one
-- replayed later loses. Read with FINAL (or through the views of
-- 002_views.sql, which do) to see each key once.
--
-- Tables are partitioned by month of a time that never changes for their
-- key (rows of one key must share a partition to be replaced); tables
-- whose rows have no such time are not partitioned.
--
-- No PII: no names, emails, phone numbers or street addresses; the ship-to
-- country, region and postal code only.
--
-- Applied by `conveyor sink clickhouse --migrate` in file order, each file
-- once (table schema_migrations).

CREATE TABLE IF NOT EXISTS orders
(
    order_id String,
    channel LowCardinality(String),
    external_id String,
    external_number String,
    event_kind LowCardinality(String) COMMENT 'CREATED, UPDATED or CANCELLED: the latest order event',
    channel_status LowCardinality(String) COMMENT 'the order status the channel reported',
    priority LowCardinality(String),
    currency LowCardinality(String),
    customer_id String COMMENT 'the channel''s opaque customer id, empty when none',
    ship_country LowCardinality(String),
    ship_region LowCardinality(String),
    ship_postal_code String,
    fulfilled_by_channel Bool,
    cancelled Bool,
    cancel_reason String,
    subtotal Decimal(38, 4),
    discount Decimal(38, 4),
    shipping Decimal(38, 4),
    tax Decimal(38, 4),
    total Decimal(38, 4),
    lines Nested
    (
        line_id String,
        sku String,
        quantity Int32,
        unit_price Decimal(38, 4),
        discount Decimal(38, 4),
        tax Decimal(38, 4),
        revenue Decimal(38, 4)
    ),
    order_time DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    updated_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD),
    deliver_by Nullable(DateTime64(3, 'UTC')),
    event_id String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(order_time)
ORDER BY order_id;

-- The latest allocation decision per order: where each line's units come
-- from (one warehouse per parcel), what waits for stock.
CREATE TABLE IF NOT EXISTS allocations
(
    order_id String,
    status LowCardinality(String) COMMENT 'ALLOCATED, PARTIALLY_ALLOCATED, BACKORDERED, RELEASED or FULFILLED_BY_CHANNEL',
    policy LowCardinality(String),
    config_version LowCardinality(String),
    warehouses Array(LowCardinality(String)) COMMENT 'one entry per warehouse the order ships from',
    allocated Nested
    (
        line_id String,
        sku String,
        warehouse_id LowCardinality(String),
        quantity Int32
    ),
    backordered Nested
    (
        line_id String,
        sku String,
        quantity Int32
    ),
    order_version Int64,
    decided_at DateTime64(3, 'UTC'),
    event_id String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY order_id;

-- The latest plan per shipment (a CANCELLED plan replaces a superseded one).
CREATE TABLE IF NOT EXISTS shipment_plans
(
    shipment_id String,
    order_id String,
    status LowCardinality(String) COMMENT 'PLANNED or CANCELLED',
    warehouse_id LowCardinality(String),
    carrier LowCardinality(String),
    service LowCardinality(String),
    zone LowCardinality(String),
    box_type LowCardinality(String),
    weight_grams Int32,
    units Int32,
    rate Decimal(38, 4),
    currency LowCardinality(String),
    meets_sla Bool,
    ship_to_country LowCardinality(String),
    ordered_at DateTime64(3, 'UTC'),
    ship_by Nullable(DateTime64(3, 'UTC')),
    estimated_delivery Nullable(DateTime64(3, 'UTC')) COMMENT 'the planned service''s delivery date',
    planned_at DateTime64(3, 'UTC'),
    config_version LowCardinality(String),
    event_id String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(ordered_at)
ORDER BY shipment_id;

-- The latest label per shipment (VOIDED replaces LABELED when refunded).
CREATE TABLE IF NOT EXISTS labels
(
    shipment_id String,
    order_id String,
    status LowCardinality(String) COMMENT 'LABELED or VOIDED',
    carrier LowCardinality(String),
    service LowCardinality(String),
    tracking_number String,
    label_cost Decimal(38, 4),
    currency LowCardinality(String),
    units Int32,
    labeled_at DateTime64(3, 'UTC'),
    event_id String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY shipment_id;

-- The latest sync-back outcome per shipment.
CREATE TABLE IF NOT EXISTS syncs
(
    shipment_id String,
    order_id String,
    channel LowCardinality(String),
    outcome LowCardinality(String) COMMENT 'CONFIRMED, ALREADY_CONFIRMED, NOT_SYNCED or WITHDRAWN',
    carrier LowCardinality(String),
    synced_at DateTime64(3, 'UTC'),
    event_id String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY shipment_id;

-- Every stock movement with the levels after it; `seq` orders a SKU's
-- movements (the latest levels of a sku x warehouse are argMax(..., seq)).
CREATE TABLE IF NOT EXISTS inventory_movements
(
    event_id String,
    sku String,
    warehouse_id LowCardinality(String),
    kind LowCardinality(String),
    quantity Int32,
    order_id String,
    on_hand Int32,
    reserved Int32,
    held Int32,
    available Int32,
    seq Int64,
    occurred_at DateTime64(3, 'UTC') CODEC(Delta, ZSTD)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (sku, warehouse_id, event_id);

-- The inventory feed as received (restocks, adjustments with their reason,
-- counts, transfers).
CREATE TABLE IF NOT EXISTS inventory_events
(
    event_id String,
    sku String,
    warehouse_id LowCardinality(String),
    kind LowCardinality(String),
    quantity Int32,
    to_warehouse_id LowCardinality(String),
    reason String,
    reference String,
    occurred_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (sku, event_id);

CREATE TABLE IF NOT EXISTS inventory_alerts
(
    event_id String,
    sku String,
    warehouse_id LowCardinality(String),
    kind LowCardinality(String),
    available Int32,
    reorder_point Int32,
    occurred_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (sku, event_id);

-- Dead-lettered records: reason and source coordinates, not the payload.
CREATE TABLE IF NOT EXISTS dlq
(
    event_id String,
    stage LowCardinality(String),
    error_kind LowCardinality(String),
    reason String,
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    source_time DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(source_time)
ORDER BY (stage, event_id);

-- The latest state of each exception an operator must handle.
CREATE TABLE IF NOT EXISTS exceptions
(
    exception_id String,
    order_id String,
    shipment_id String,
    stage LowCardinality(String),
    code LowCardinality(String),
    reason String,
    action String,
    source_topic LowCardinality(String),
    source_partition Int32,
    source_offset Int64,
    raised_at DateTime64(3, 'UTC'),
    event_id String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY exception_id;
