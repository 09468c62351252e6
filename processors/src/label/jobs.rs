//! The label job on the stream runtime (docs/labels.md): keyed by order
//! (`shipments.planned`), store `label.labels` (shipment id -> what was
//! bought), output `shipments.labeled`.
//!
//! Per planned shipment: if the store has its label, the same labeled
//! record is emitted again (a replay buys nothing). Otherwise the label is
//! bought with the idempotency key `conveyor-<sha256(shipment id)>`, the
//! packing slip and the combined PDF are rendered, all three stored under
//! deterministic names, and the record is emitted. A crash between buying
//! and committing the store re-runs the purchase with the same key: the
//! label API returns the label already bought (G2), the documents are
//! re-rendered byte for byte, and the output is identical.
//!
//! Purchases overlap: before a batch is processed, [`Processor::prepare`]
//! buys (and renders and stores the documents of) every shipment of the
//! batch that the store has no label for, `label.concurrency` at a time
//! within the API's rate limit; `process` then takes each result in batch
//! order, each plan only the result bought for it (by event id). Only a
//! cache: a plan `prepare` did not buy for (a retryable failure) is bought
//! in `process` as before, from inside the
//! batch (the runtime's processor is synchronous; the call runs on the
//! job's worker thread with `block_in_place`). Buying ahead is safe because
//! a purchase is idempotent at the API: whatever happens to the batch
//! afterwards (a retry, a crash, a rebalance), the next attempt gets the
//! same label under the same key. The documents of purchases made ahead
//! are rendered on the job's task, between the other purchases' waits
//! (rendering is milliseconds, a purchase hundreds of them). A refusal (undeliverable address, unknown service)
//! raises an exception (`exceptions` topic, with the API's code and words)
//! and dead-letters the plan ([`crate::exceptions`]); nothing is stored, so
//! a replay after the address is fixed buys the label. An unavailable API
//! makes the runtime retry the record later, never skip it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use conveyor_runtime::kafka::InRecord;
use conveyor_runtime::label::LabelConfig;
use conveyor_runtime::warehouses::WarehouseConfig;
use conveyor_schemas::records::{
    Currency, LabelStatus, LabeledShipment, Money, PlanStatus, PlannedShipment,
};
use conveyor_stream::{event_id, Avro, Committed, Output, ProcessError, Processor, State};
use futures::StreamExt as _;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::api::{ApiAddress, ApiParcel, ApiShipment, TransactionRequest};
use super::carrier::{BuyError, CarrierApi};
use super::documents::{self, DocumentStore, Kind};
use super::slip::{self, Branding, Slip, SlipLine};
use crate::exceptions::{self, Problem, Sinks};

/// Job name (consumer group `<prefix>.label`, DLQ stage, metrics label).
pub const LABEL: &str = "label";
/// State table: shipment id -> [`Labeled`].
pub const LABELS_TABLE: &str = "labels";

/// What the store keeps per shipment: the record that was emitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Labeled {
    pub transaction_id: String,
    pub record: LabeledShipment,
    /// The label API's refund, once the label was voided.
    #[serde(default)]
    pub refund_id: Option<String>,
}

/// The idempotency key of a shipment's label purchase.
pub fn idempotency_key(shipment_id: &str) -> String {
    let d = Sha256::digest(shipment_id.as_bytes());
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("conveyor-{hex}")
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub bought: u64,
    pub replayed: u64,
    pub refused: u64,
    pub voided: u64,
}

pub struct LabelJob {
    pub api: Arc<CarrierApi>,
    pub store: Arc<DocumentStore>,
    pub brand: Branding,
    pub config: LabelConfig,
    pub warehouses: BTreeMap<String, WarehouseConfig>,
    pub output: String,
    pub sinks: Sinks,
    pub counts: Counts,
    /// What [`Processor::prepare`] bought (or was refused) for the batch in
    /// hand, by shipment id; `process` takes from it.
    ahead: HashMap<String, Ahead>,
}

/// A purchase made ahead of `process`, for the plan with this event id
/// (only that record takes it).
struct Ahead {
    event_id: String,
    outcome: AheadOutcome,
}

enum AheadOutcome {
    Bought(Box<Labeled>),
    Refused { code: String, reason: String },
}

/// Why a shipment got no label.
enum Failure {
    Refused { code: String, reason: String },
    Other(ProcessError),
}

impl From<ProcessError> for Failure {
    fn from(e: ProcessError) -> Failure {
        Failure::Other(e)
    }
}

impl LabelJob {
    pub fn new(
        api: Arc<CarrierApi>,
        store: Arc<DocumentStore>,
        config: &LabelConfig,
        warehouses: &[WarehouseConfig],
        output: String,
        sinks: Sinks,
    ) -> LabelJob {
        LabelJob {
            api,
            store,
            brand: Branding {
                name: config.merchant_name.clone(),
                message: Some(config.merchant_message.clone()).filter(|m| !m.is_empty()),
            },
            config: config.clone(),
            warehouses: warehouses
                .iter()
                .map(|w| (w.id.clone(), w.clone()))
                .collect(),
            output,
            sinks,
            counts: Counts::default(),
            ahead: HashMap::new(),
        }
    }

    fn request(&self, p: &PlannedShipment) -> Result<TransactionRequest, ProcessError> {
        let w = self.warehouses.get(&p.warehouse_id).ok_or_else(|| {
            ProcessError::Invalid(format!(
                "warehouse `{}` is not in the config",
                p.warehouse_id
            ))
        })?;
        let to = &p.ship_to;
        let inches = |mm: i32| format!("{:.1}", f64::from(mm) / 25.4);
        Ok(TransactionRequest {
            shipment: ApiShipment {
                address_from: ApiAddress {
                    name: format!("{} - {}", self.config.merchant_name, w.name),
                    company: None,
                    street1: w.name.clone(),
                    street2: None,
                    city: String::new(),
                    state: String::new(),
                    zip: w.postal_code.clone(),
                    country: w.country.clone(),
                    phone: None,
                },
                address_to: ApiAddress {
                    name: to.name.clone(),
                    company: to.company.clone(),
                    street1: to.line1.clone(),
                    street2: to.line2.clone(),
                    city: to.city.clone(),
                    state: to.region.clone().unwrap_or_default(),
                    zip: to.postal_code.clone(),
                    country: to.country.clone(),
                    phone: to.phone.clone(),
                },
                parcels: vec![ApiParcel {
                    length: inches(p.parcel.length_mm),
                    width: inches(p.parcel.width_mm),
                    height: inches(p.parcel.height_mm),
                    distance_unit: "in".into(),
                    weight: format!("{:.2}", f64::from(p.parcel.weight_grams) / 453.592_37),
                    mass_unit: "lb".into(),
                }],
            },
            carrier_account: self
                .config
                .carrier_accounts
                .get(&p.carrier)
                .cloned()
                .unwrap_or_else(|| p.carrier.clone()),
            servicelevel_token: format!("{}_{}", p.carrier, p.service),
            label_file_type: self.config.label_file_type.clone(),
            metadata: p.shipment_id.clone(),
            is_async: false,
        })
    }

    fn slip(&self, p: &PlannedShipment) -> Slip {
        let date = p
            .ordered_at
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(|t| t.to_string()[..10].to_string())
            .unwrap_or_default();
        Slip {
            order_number: p.order_number.clone().unwrap_or_else(|| p.order_id.clone()),
            order_date: date,
            shipment_id: p.shipment_id.clone(),
            service: Some(format!("{} {}", p.carrier, p.service)),
            ship_to: p.ship_to.clone(),
            lines: p
                .lines
                .iter()
                .map(|l| SlipLine {
                    sku: l.sku.clone(),
                    name: p
                        .line_names
                        .get(&l.line_id)
                        .cloned()
                        .unwrap_or_else(|| l.sku.clone()),
                    bin: p.bins.get(&l.sku).cloned(),
                    quantity: l.quantity,
                })
                .collect(),
            gift_message: p.gift_message.clone(),
        }
    }

    /// [`LabelJob::label`] for `prepare`, keyed by shipment.
    /// The plan's shipment id and event id, and the outcome.
    async fn buy_ahead(&self, p: &PlannedShipment) -> (String, String, Result<Labeled, Failure>) {
        let key = idempotency_key(&p.shipment_id);
        let result = self.label(p, &key).await;
        (p.shipment_id.clone(), p.event_id.clone(), result)
    }

    /// Buys, renders and stores; the labeled record.
    async fn label(&self, p: &PlannedShipment, key: &str) -> Result<Labeled, Failure> {
        let req = self.request(p)?;
        let bought = self.api.buy(&req, key).await.map_err(|e| match e {
            BuyError::Refused { code, reason } => Failure::Refused { code, reason },
            BuyError::Unavailable(why) => Failure::Other(ProcessError::Retry(why)),
        })?;
        let t = &bought.transaction;
        let slip = self.slip(p);
        let (slip_pdf, slip_pages) = slip::render(&self.brand, &slip);
        let (combined_pdf, combined_pages) = slip::combined(&bought.label_pdf, &self.brand, &slip)
            .map_err(|e| ProcessError::Failed(format!("combine label and slip: {e}")))?;
        let put = |kind, bytes: Vec<u8>, pages| {
            let name = documents::name(&p.order_id, &p.shipment_id, kind);
            async move {
                self.store
                    .put(&name, &bytes, pages)
                    .await
                    .map_err(ProcessError::Retry)
            }
        };
        let label = put(Kind::Label, bought.label_pdf.clone(), 1).await?;
        let packing_slip = put(Kind::PackingSlip, slip_pdf, slip_pages).await?;
        let combined = put(Kind::Combined, combined_pdf, combined_pages).await?;
        let rate = t.rate.as_ref();
        let cost = rate
            .and_then(|r| r.amount.parse::<Decimal>().ok())
            .unwrap_or(p.rate.amount);
        let currency = rate
            .and_then(|r| Currency::new(&r.currency).ok())
            .unwrap_or(p.rate.currency);
        let labeled_at = t
            .object_created
            .parse::<jiff::Timestamp>()
            .map(|ts| ts.as_millisecond())
            .unwrap_or(p.planned_at);
        Ok(Labeled {
            refund_id: None,
            transaction_id: t.object_id.clone(),
            record: LabeledShipment {
                event_id: String::new(),
                shipment_id: p.shipment_id.clone(),
                order_id: p.order_id.clone(),
                carrier: p.carrier.clone(),
                service: p.service.clone(),
                tracking_number: t.tracking_number.clone(),
                tracking_url: Some(t.tracking_url_provider.clone()).filter(|u| !u.is_empty()),
                label_cost: Money::new(cost, currency),
                idempotency_key: key.to_string(),
                label,
                packing_slip,
                combined: Some(combined),
                labeled_at,
                lines: p.lines.clone(),
                status: LabelStatus::Labeled,
            },
        })
    }
}

impl LabelJob {
    /// A cancelled plan: its label, if one was bought, is refunded and the
    /// labeled record emitted again as VOIDED (stored, so a replay voids
    /// nothing twice). Nothing bought (the purchase was refused): nothing
    /// to void, nothing emitted.
    fn void(
        &mut self,
        p: &PlannedShipment,
        held: Option<Labeled>,
        state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let Some(mut l) = held else {
            return Ok(());
        };
        if l.record.status != LabelStatus::Voided {
            let key = format!("void-{}", l.record.idempotency_key);
            let handle = tokio::runtime::Handle::current();
            let refund = tokio::task::block_in_place(|| {
                handle.block_on(self.api.void(&l.transaction_id, &key))
            });
            match refund {
                Ok(id) => l.refund_id = Some(id),
                // A label the API will not refund (already used, too old)
                // is recorded voided all the same: it must not ship; the
                // money is the operator's to claim.
                Err(BuyError::Refused { code, reason }) => {
                    tracing::warn!(shipment_id = %p.shipment_id, code, reason, "label not refunded; voided here");
                }
                Err(BuyError::Unavailable(why)) => return Err(ProcessError::Retry(why)),
            }
            l.record.status = LabelStatus::Voided;
            state.put_json(LABELS_TABLE, p.shipment_id.as_bytes(), &l)?;
            self.counts.voided += 1;
            metrics::counter!("conveyor_labels_voided_total", "carrier" => l.record.carrier.clone())
                .increment(1);
        } else {
            self.counts.replayed += 1;
        }
        let mut record = l.record;
        record.event_id = event_id(&p.event_id, 0);
        out.push(Output::avro(
            self.output.clone(),
            p.order_id.clone(),
            record,
        ));
        Ok(())
    }
}

impl Processor for LabelJob {
    type In = Avro<PlannedShipment>;

    fn process(
        &mut self,
        input: &Avro<PlannedShipment>,
        rec: &InRecord,
        state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let p = &input.0;
        let held: Option<Labeled> = state.get_json(LABELS_TABLE, p.shipment_id.as_bytes())?;
        if p.status == PlanStatus::Cancelled {
            return self.void(p, held, state, out);
        }
        let labeled = match held {
            Some(l) => {
                self.counts.replayed += 1;
                l
            }
            None => {
                let key = idempotency_key(&p.shipment_id);
                let ahead = self
                    .ahead
                    .remove(&p.shipment_id)
                    .filter(|a| a.event_id == p.event_id);
                let result = match ahead.map(|a| a.outcome) {
                    Some(AheadOutcome::Bought(l)) => Ok(*l),
                    Some(AheadOutcome::Refused { code, reason }) => {
                        Err(Failure::Refused { code, reason })
                    }
                    None => {
                        let handle = tokio::runtime::Handle::current();
                        tokio::task::block_in_place(|| handle.block_on(self.label(p, &key)))
                    }
                };
                let l = match result {
                    Ok(l) => l,
                    Err(Failure::Refused { code, reason }) => {
                        self.counts.refused += 1;
                        metrics::counter!("conveyor_label_refused_total").increment(1);
                        out.extend(exceptions::outputs(
                            &self.sinks,
                            rec,
                            &Problem {
                                stage: LABEL,
                                order_id: &p.order_id,
                                shipment_id: Some(&p.shipment_id),
                                input_event_id: &p.event_id,
                                code: &code,
                                reason: &reason,
                            },
                        ));
                        return Ok(());
                    }
                    Err(Failure::Other(e)) => return Err(e),
                };
                state.put_json(LABELS_TABLE, p.shipment_id.as_bytes(), &l)?;
                self.counts.bought += 1;
                metrics::counter!("conveyor_labels_bought_total", "carrier" => p.carrier.clone())
                    .increment(1);
                l
            }
        };
        let mut record = labeled.record;
        record.event_id = event_id(&p.event_id, 0);
        out.push(Output::avro(
            self.output.clone(),
            p.order_id.clone(),
            record,
        ));
        Ok(())
    }
    const PREPARES: bool = true;

    /// Buys ahead, concurrently, for the batch's shipments that have no
    /// label in the store (see the module docs). A shipment is bought once
    /// however often it is in the batch; cancelled plans and shipments the
    /// store holds (replays) buy nothing; a retryable failure is left to
    /// `process`.
    fn prepare<'a>(
        &'a mut self,
        batch: &'a [(&'a Avro<PlannedShipment>, &'a InRecord)],
        state: Committed<'a>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            self.ahead.clear();
            let mut seen = HashSet::new();
            let todo: Vec<&PlannedShipment> = batch
                .iter()
                .filter(|(input, rec)| {
                    let p = &input.0;
                    p.status != PlanStatus::Cancelled
                        && seen.insert(p.shipment_id.as_str())
                        && matches!(
                            state.get(rec.partition, LABELS_TABLE, p.shipment_id.as_bytes()),
                            Ok(None)
                        )
                })
                .map(|(input, _)| &input.0)
                .collect();
            // One purchase gains nothing from going ahead.
            if todo.len() < 2 || self.config.concurrency < 2 {
                return;
            }
            let this = &*self;
            let mut todo = todo.into_iter();
            let mut running = futures::stream::FuturesUnordered::new();
            let mut done = Vec::new();
            loop {
                while running.len() < this.config.concurrency {
                    let Some(p) = todo.next() else { break };
                    running.push(this.buy_ahead(p));
                }
                match running.next().await {
                    Some(d) => done.push(d),
                    None => break,
                }
            }
            drop(running);
            for (shipment_id, event_id, result) in done {
                let outcome = match result {
                    Ok(l) => AheadOutcome::Bought(Box::new(l)),
                    Err(Failure::Refused { code, reason }) => {
                        AheadOutcome::Refused { code, reason }
                    }
                    Err(Failure::Other(_)) => continue,
                };
                self.ahead.insert(shipment_id, Ahead { event_id, outcome });
            }
        })
    }
}
