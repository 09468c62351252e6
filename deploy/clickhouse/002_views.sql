-- conveyor analytics: views over the fact tables (001_facts.sql).
--
-- Plain views read the facts with FINAL, so each natural key counts once
-- however often it was delivered or replayed.
--
-- The materialized views are refreshable (REFRESH EVERY 1 MINUTE): each
-- refresh recomputes its table from the FINAL facts and swaps it in
-- atomically. Unlike insert-triggered views, they cannot double count a
-- redelivered or replayed row (an insert-triggered view sees every
-- inserted block, duplicates included), and a superseded version (a
-- cancelled order, a voided label) drops out at the next refresh. They
-- answer the dashboards' questions in milliseconds at the cost of being
-- up to a minute behind; query the facts for the last minute.
-- `SYSTEM REFRESH VIEW <name>` refreshes one at once.

-- One row per order line, with where its units were allocated.
CREATE VIEW IF NOT EXISTS order_line_facts AS
SELECT
    o.order_id AS order_id,
    o.channel AS channel,
    o.line_id AS line_id,
    o.sku AS sku,
    o.quantity AS quantity,
    o.revenue AS revenue,
    o.discount AS discount,
    o.tax AS tax,
    o.currency AS currency,
    o.order_time AS order_time,
    o.cancelled AS cancelled,
    s.status AS allocation_status,
    a.warehouse_id AS warehouse_id,
    a.allocated_quantity AS allocated_quantity,
    b.backordered_quantity AS backordered_quantity
FROM
(
    SELECT order_id, channel, currency, order_time, cancelled,
           lines.line_id AS line_id, lines.sku AS sku, lines.quantity AS quantity,
           lines.revenue AS revenue, lines.discount AS discount, lines.tax AS tax
    FROM orders FINAL
    ARRAY JOIN lines
) AS o
LEFT JOIN (SELECT order_id, status FROM allocations FINAL) AS s ON s.order_id = o.order_id
LEFT JOIN
(
    SELECT order_id, allocated.line_id AS line_id,
           argMax(allocated.warehouse_id, allocated.quantity) AS warehouse_id,
           toInt32(sum(allocated.quantity)) AS allocated_quantity
    FROM allocations FINAL
    ARRAY JOIN allocated
    GROUP BY order_id, line_id
) AS a ON a.order_id = o.order_id AND a.line_id = o.line_id
LEFT JOIN
(
    SELECT order_id, backordered.line_id AS line_id,
           toInt32(sum(backordered.quantity)) AS backordered_quantity
    FROM allocations FINAL
    ARRAY JOIN backordered
    GROUP BY order_id, line_id
) AS b ON b.order_id = o.order_id AND b.line_id = o.line_id;

-- One row per shipment: its plan, its label and its sync-back, with the
-- order's promised delivery.
CREATE VIEW IF NOT EXISTS shipment_facts AS
SELECT
    p.shipment_id AS shipment_id,
    p.order_id AS order_id,
    o.channel AS channel,
    p.status AS plan_status,
    p.warehouse_id AS warehouse_id,
    p.carrier AS carrier,
    p.service AS service,
    p.zone AS zone,
    p.box_type AS box_type,
    p.weight_grams AS weight_grams,
    p.units AS units,
    p.rate AS planned_rate,
    p.currency AS currency,
    p.meets_sla AS meets_sla,
    p.ordered_at AS ordered_at,
    p.ship_by AS ship_by,
    o.deliver_by AS promised_delivery,
    p.estimated_delivery AS estimated_delivery,
    p.planned_at AS planned_at,
    l.status AS label_status,
    l.tracking_number AS tracking_number,
    l.label_cost AS label_cost,
    l.labeled_at AS labeled_at,
    if(l.status = '', NULL, dateDiff('millisecond', p.ordered_at, l.labeled_at) / 1000.0) AS order_to_label_seconds,
    y.outcome AS sync_outcome,
    y.synced_at AS synced_at
FROM (SELECT * FROM shipment_plans FINAL) AS p
LEFT JOIN (SELECT shipment_id, status, tracking_number, label_cost, labeled_at FROM labels FINAL) AS l
    ON l.shipment_id = p.shipment_id
LEFT JOIN (SELECT shipment_id, outcome, synced_at FROM syncs FINAL) AS y ON y.shipment_id = p.shipment_id
LEFT JOIN (SELECT order_id, channel, deliver_by FROM orders FINAL) AS o ON o.order_id = p.order_id;

-- Current levels per sku x warehouse: those after the SKU's latest movement.
CREATE VIEW IF NOT EXISTS inventory_levels AS
SELECT
    sku,
    warehouse_id,
    argMax(on_hand, seq) AS on_hand,
    argMax(reserved, seq) AS reserved,
    argMax(held, seq) AS held,
    argMax(available, seq) AS available,
    max(occurred_at) AS as_of
FROM inventory_movements
GROUP BY sku, warehouse_id;

-- Orders, units and revenue per channel per hour (cancelled orders apart).
CREATE MATERIALIZED VIEW IF NOT EXISTS channel_hourly
REFRESH EVERY 1 MINUTE
ENGINE = MergeTree ORDER BY (hour, channel, currency)
AS SELECT
    toStartOfHour(order_time) AS hour,
    channel,
    currency,
    countIf(NOT cancelled) AS orders,
    countIf(cancelled) AS cancelled_orders,
    toInt64(sumIf(arraySum(lines.quantity), NOT cancelled)) AS units,
    sumIf(total, NOT cancelled) AS revenue,
    sumIf(discount, NOT cancelled) AS discount,
    sumIf(tax, NOT cancelled) AS tax
FROM orders FINAL
GROUP BY hour, channel, currency;

-- Labels bought and their cost per day, carrier, service and zone.
CREATE MATERIALIZED VIEW IF NOT EXISTS shipping_cost_daily
REFRESH EVERY 1 MINUTE
ENGINE = MergeTree ORDER BY (day, carrier, service, zone, currency)
AS SELECT
    toDate(labeled_at) AS day,
    carrier,
    service,
    zone,
    currency,
    count() AS shipments,
    uniqExact(order_id) AS orders,
    sum(label_cost) AS label_cost,
    sum(planned_rate) AS planned_cost,
    toInt64(sum(weight_grams)) AS weight_grams
FROM shipment_facts
WHERE label_status = 'LABELED'
GROUP BY day, carrier, service, zone, currency;

-- Allocation outcomes per order day and channel: split and backorder rates.
CREATE MATERIALIZED VIEW IF NOT EXISTS fulfillment_daily
REFRESH EVERY 1 MINUTE
ENGINE = MergeTree ORDER BY (day, channel)
AS SELECT
    toDate(o.order_time) AS day,
    o.channel AS channel,
    count() AS orders,
    countIf(a.status IN ('ALLOCATED', 'PARTIALLY_ALLOCATED')) AS allocated,
    countIf(a.status = 'ALLOCATED' AND length(a.warehouses) = 1) AS one_warehouse,
    countIf(length(a.warehouses) > 1) AS split,
    countIf(a.status IN ('BACKORDERED', 'PARTIALLY_ALLOCATED')) AS backordered,
    countIf(a.status = 'FULFILLED_BY_CHANNEL') AS fulfilled_by_channel,
    countIf(a.status = '') AS undecided
FROM (SELECT order_id, channel, order_time FROM orders FINAL WHERE NOT cancelled) AS o
LEFT JOIN (SELECT order_id, status, warehouses FROM allocations FINAL) AS a ON a.order_id = o.order_id
GROUP BY day, channel;

-- Order-to-label latency per label day and carrier.
CREATE MATERIALIZED VIEW IF NOT EXISTS label_latency_daily
REFRESH EVERY 1 MINUTE
ENGINE = MergeTree ORDER BY (day, carrier)
AS SELECT
    toDate(labeled_at) AS day,
    carrier,
    count() AS shipments,
    quantileExact(0.5)(order_to_label_seconds) AS p50_seconds,
    quantileExact(0.9)(order_to_label_seconds) AS p90_seconds,
    quantileExact(0.99)(order_to_label_seconds) AS p99_seconds,
    max(order_to_label_seconds) AS max_seconds
FROM shipment_facts
WHERE label_status = 'LABELED'
GROUP BY day, carrier;

-- Units and revenue per SKU per order day (cancelled orders apart).
CREATE MATERIALIZED VIEW IF NOT EXISTS sku_daily
REFRESH EVERY 1 MINUTE
ENGINE = MergeTree ORDER BY (day, sku, currency)
AS SELECT
    toDate(order_time) AS day,
    sku,
    currency,
    toInt64(sum(quantity)) AS units,
    sum(revenue) AS revenue,
    uniqExact(order_id) AS orders
FROM order_line_facts
WHERE NOT cancelled
GROUP BY day, sku, currency;
