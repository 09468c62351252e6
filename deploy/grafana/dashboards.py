#!/usr/bin/env python3
"""The Grafana dashboards as code: `python3 deploy/grafana/dashboards.py`
rewrites deploy/grafana/dashboards/*.json (deploy/check fails when the
committed JSON differs from what this prints).

- conveyor-pipeline: throughput, lag, latency, DLQ and exceptions, label and
  channel API health, sinks, readiness (Prometheus).
- conveyor-business: orders, revenue, fulfilment, shipping cost and latency
  per channel (ClickHouse views of deploy/clickhouse/002_views.sql).
"""
import json
import pathlib

PROM = {"type": "prometheus", "uid": "prometheus"}
CH = {"type": "grafana-clickhouse-datasource", "uid": "clickhouse"}
OUT = pathlib.Path(__file__).resolve().parent / "dashboards"


class Layout:
    """Panels placed left to right, 24 columns, rows of height 8."""

    def __init__(self):
        self.panels, self.x, self.y, self.next_id = [], 0, 0, 1

    def row(self, title):
        if self.x:
            self.x, self.y = 0, self.y + 8
        self.panels.append({"type": "row", "title": title, "id": self.next_id,
                            "collapsed": False, "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}})
        self.next_id += 1
        self.y += 1

    def add(self, panel, w=8):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + 8
        panel["id"] = self.next_id
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": 8}
        self.next_id += 1
        self.x += w
        self.panels.append(panel)


def prom(title, exprs, unit="short", kind="timeseries", description=""):
    return {
        "type": kind, "title": title, "description": description, "datasource": PROM,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]}}
        if kind == "timeseries" else {},
        "targets": [{"refId": chr(65 + i), "datasource": PROM, "expr": e, "legendFormat": lg}
                    for i, (e, lg) in enumerate(exprs)],
    }


def sql(title, query, unit="short", kind="timeseries", fmt=0, description=""):
    """A ClickHouse panel; `$database` is the dashboard variable, `$__timeFilter`
    the plugin's macro. fmt: 0 time series, 1 table."""
    return {
        "type": kind, "title": title, "description": description, "datasource": CH,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [{"refId": "A", "datasource": CH, "editorType": "sql", "format": fmt,
                     "queryType": "timeseries" if fmt == 0 else "table", "rawSql": query}],
    }


def dashboard(uid, title, description, layout, templating, tags):
    return {
        "uid": uid, "title": title, "description": description, "tags": tags,
        "editable": False, "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"}, "timezone": "utc",
        "templating": {"list": templating}, "annotations": {"list": []},
        "panels": layout.panels,
    }


def pipeline():
    L = Layout()
    rate = lambda m, by, w="5m": f"sum by ({by}) (rate({m}[{w}]))"
    L.row("Throughput")
    L.add(prom("Orders in per channel (published raw)", [(rate("conveyor_connector_published_total", "channel"), "{{channel}}")], "ops"))
    L.add(prom("Webhooks by outcome", [(rate("conveyor_webhook_requests_total", "channel, outcome"), "{{channel}} {{outcome}}")], "reqps"))
    L.add(prom("Records/s per processor", [(rate("conveyor_processor_records_total", "processor", "1m"), "{{processor}}")], "ops"))
    L.add(prom("Normalize outcomes", [(rate("conveyor_normalize_total", "channel, outcome"), "{{channel}} {{outcome}}")], "ops"))
    L.add(prom("Allocation outcomes", [(rate("conveyor_allocate_outcomes_total", "status"), "{{status}}")], "ops"))
    L.add(prom("Plans per carrier and service", [(rate("conveyor_route_planned_total", "carrier, service"), "{{carrier}} {{service}}")], "ops"))
    L.row("Lag and latency")
    L.add(prom("Consumer lag per processor (records)", [("sum by (processor) (conveyor_processor_lag_records)", "{{processor}}")]), 12)
    L.add(prom("Record to outputs acknowledged, p50 / p99", [
        ("histogram_quantile(0.5, sum by (le, processor) (rate(conveyor_processor_latency_seconds_bucket[5m])))", "p50 {{processor}}"),
        ("histogram_quantile(0.99, sum by (le, processor) (rate(conveyor_processor_latency_seconds_bucket[5m])))", "p99 {{processor}}"),
    ], "s"), 12)
    L.add(prom("Batch time p99", [("histogram_quantile(0.99, sum by (le, processor) (rate(conveyor_processor_batch_seconds_bucket[5m])))", "{{processor}}")], "s"))
    L.add(prom("Produce latency p99 (acks=all)", [("histogram_quantile(0.99, sum by (le, component) (rate(conveyor_kafka_produce_seconds_bucket[5m])))", "{{component}}")], "s"))
    L.add(prom("Store restores in progress (records left)", [("sum by (store) (conveyor_state_restore_remaining_records)", "{{store}}")]))
    L.row("Dead letters and exceptions")
    L.add(prom("DLQ share per processor", [(
        "sum by (processor) (rate(conveyor_processor_dlq_total[10m])) / sum by (processor) (rate(conveyor_processor_records_total[10m]))",
        "{{processor}}")], "percentunit", description="Alert ConveyorDlqRateHigh at 1%."))
    L.add(prom("DLQ records by kind", [(rate("conveyor_processor_dlq_total", "processor, kind"), "{{processor}} {{kind}}"),
                                       (rate("conveyor_dlq_total", "stage"), "sink {{stage}}")], "ops"))
    L.add(prom("Exceptions by stage and code (1h)", [("sum by (stage, code) (increase(conveyor_exceptions_total[1h]))", "{{stage}} {{code}}")]))
    L.row("Label and channel APIs")
    L.add(prom("Labels bought / voided per carrier", [(rate("conveyor_labels_bought_total", "carrier"), "bought {{carrier}}"),
                                                      (rate("conveyor_labels_voided_total", "carrier"), "voided {{carrier}}")], "ops"))
    L.add(prom("Label API errors by kind", [(rate("conveyor_label_api_errors_total", "kind"), "{{kind}}"),
                                            ("sum(rate(conveyor_label_refused_total[5m]))", "refused labels")], "ops"))
    L.add(prom("Sync-back outcomes and API errors", [(rate("conveyor_syncback_total", "channel, outcome"), "{{channel}} {{outcome}}"),
                                                    (rate("conveyor_syncback_api_errors_total", "kind"), "errors {{kind}}")], "ops"))
    L.add(prom("Channel API throttling (429)", [(rate("conveyor_connector_throttled_total", "channel"), "{{channel}}")], "ops"))
    L.row("Sinks")
    L.add(prom("Rows/s per sink", [(rate("conveyor_sink_rows_total", "sink"), "{{sink}}")], "ops"))
    L.add(prom("Sink stalled (store down, offsets held)", [("max by (sink) (conveyor_sink_stalled)", "{{sink}}")]))
    L.add(prom("Sink write errors and batch p99", [(rate("conveyor_sink_write_errors_total", "sink"), "errors {{sink}}"),
                                                   ("histogram_quantile(0.99, sum by (le, sink) (rate(conveyor_sink_batch_seconds_bucket[5m])))", "batch p99 {{sink}}")]))
    L.add(prom("Status API p99 per route", [("histogram_quantile(0.99, sum by (le, route) (rate(conveyor_status_api_seconds_bucket[5m])))", "{{route}}")], "s"))
    L.row("Health")
    L.add(prom("Not-ready checks", [("count by (component, check) (conveyor_ready == 0)", "{{component}} {{check}}")]))
    L.add(prom("Broker reachable", [("min by (component) (conveyor_broker_up)", "{{component}}")]))
    L.add(prom("Components up", [("sum by (component) (up{job=~\"conveyor.*\"})", "{{component}}")]))
    return dashboard("conveyor-pipeline", "conveyor: pipeline",
                     "Throughput, lag, latency, DLQ, exceptions, API and sink health. Alerts: deploy/prometheus/alerts.yml.",
                     L, [], ["conveyor"])


def business():
    L = Layout()
    db = "$database"
    L.row("Orders and revenue")
    L.add(sql("Orders per channel per hour",
              f"SELECT hour AS time, channel, sum(orders) AS orders FROM {db}.channel_hourly "
              "WHERE $__timeFilter(hour) GROUP BY time, channel ORDER BY time"), 12)
    L.add(sql("Revenue per channel per hour",
              f"SELECT hour AS time, concat(channel, ' ', currency) AS channel, sum(revenue) AS revenue "
              f"FROM {db}.channel_hourly WHERE $__timeFilter(hour) GROUP BY time, channel ORDER BY time", "currencyUSD"), 12)
    L.add(sql("Orders, units, revenue per channel (range)",
              f"SELECT channel, currency, sum(orders) AS orders, sum(cancelled_orders) AS cancelled, sum(units) AS units, "
              f"sum(revenue) AS revenue FROM {db}.channel_hourly WHERE $__timeFilter(hour) "
              "GROUP BY channel, currency ORDER BY revenue DESC", kind="table", fmt=1), 12)
    L.add(sql("Top SKUs by revenue",
              f"SELECT sku, currency, sum(units) AS units, sum(revenue) AS revenue FROM {db}.sku_daily "
              "WHERE $__timeFilter(day) GROUP BY sku, currency ORDER BY revenue DESC LIMIT 20", kind="table", fmt=1), 12)
    L.row("Fulfilment")
    L.add(sql("Split and backorder rate per channel",
              f"SELECT channel, sum(orders) AS order_count, sum(split) / greatest(order_count, 1) AS split_rate, "
              f"sum(backordered) / greatest(order_count, 1) AS backorder_rate, "
              f"sum(one_warehouse) / greatest(sum(allocated), 1) AS one_warehouse_rate "
              f"FROM {db}.fulfillment_daily WHERE $__timeFilter(day) GROUP BY channel ORDER BY order_count DESC",
              "percentunit", kind="table", fmt=1))
    L.add(sql("Shipping cost per carrier per day",
              f"SELECT toDateTime(day) AS time, carrier, sum(label_cost) AS cost FROM {db}.shipping_cost_daily "
              "WHERE $__timeFilter(day) GROUP BY time, carrier ORDER BY time", "currencyUSD"))
    L.add(sql("Order to label p99 per carrier",
              f"SELECT toDateTime(day) AS time, carrier, max(p99_seconds) AS p99 FROM {db}.label_latency_daily "
              "WHERE $__timeFilter(day) GROUP BY time, carrier ORDER BY time", "s"))
    L.row("Exceptions")
    L.add(sql("Dead letters by stage and reason",
              f"SELECT stage, error_kind, reason, count() AS records FROM {db}.dlq FINAL WHERE $__timeFilter(source_time) "
              "GROUP BY stage, error_kind, reason ORDER BY records DESC LIMIT 20", kind="table", fmt=1), 12)
    L.add(sql("Exceptions by code",
              f"SELECT stage, code, action, count() AS exceptions FROM {db}.exceptions FINAL WHERE $__timeFilter(raised_at) "
              "GROUP BY stage, code, action ORDER BY exceptions DESC", kind="table", fmt=1), 12)
    var = {"name": "database", "label": "ClickHouse database", "type": "textbox", "query": "conveyor",
           "current": {"text": "conveyor", "value": "conveyor"}, "hide": 0}
    return dashboard("conveyor-business", "conveyor: business",
                     "Orders, revenue and fulfilment per channel from the ClickHouse views (docs/analytics.md).",
                     L, [var], ["conveyor", "analytics"])


def render():
    return {"conveyor-pipeline.json": pipeline(), "conveyor-business.json": business()}


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, d in render().items():
        (OUT / name).write_text(json.dumps(d, indent=2) + "\n")
        print(f"wrote {OUT / name}")
