//! The sync-back job on the stream runtime (docs/syncback.md): keyed by
//! order (`shipments.labeled`), store `syncback.synced` (shipment id ->
//! what the channel confirmed), output `shipments.synced`.
//!
//! Per labeled shipment:
//! - held in the store: the same record is emitted again, the channel is
//!   not called (a replay tells the channel nothing twice);
//! - a channel sync-back covers: the channel is told ([`super::Channels`],
//!   which first asks what the channel already holds), the answer is
//!   stored with the time it came and emitted (CONFIRMED or
//!   ALREADY_CONFIRMED). A crash between the channel's answer and the
//!   store's commit re-runs the call; the channel then already holds the
//!   tracking number and nothing is created twice;
//! - another channel (CSV), or one left out of `[syncback] channels`:
//!   NOT_SYNCED, emitted and not stored (turning sync-back on and replaying
//!   tells the channel);
//! - refused by the channel (unknown order, units fulfilled elsewhere, a
//!   cancelled order): an exception and a dead letter
//!   ([`conveyor_processors::exceptions`]), nothing stored;
//! - channel unreachable or failing: the runtime retries the record later,
//!   never skips it;
//! - VOIDED (route cancelled the plan, label refunded the label): if the
//!   channel was told, the tracking is taken back (Shopify cancels the
//!   fulfillment: WITHDRAWN; the other channels have no call for it: an
//!   exception for an operator); if it was not, NOT_SYNCED, stored, so a
//!   replay of the labeled record tells nothing.
//!
//! Calls run on the job's worker thread (`block_in_place`), one parcel at
//! a time per partition, so one order's parcels go out in order.

use std::sync::Arc;

use conveyor_processors::exceptions::{self, Problem, Sinks};
use conveyor_runtime::guarded::{CallError, Refusal};
use conveyor_runtime::kafka::InRecord;
use conveyor_schemas::records::{LabelStatus, LabeledShipment, SyncOutcome, SyncedShipment};
use conveyor_stream::{event_id, Avro, Output, ProcessError, Processor, State};

use super::{Channels, Parcel, Pushed};

/// Job name (consumer group `<prefix>.syncback`, DLQ stage, metrics label).
pub const SYNCBACK: &str = "syncback";
/// State table: shipment id -> [`SyncedShipment`] (event id cleared).
pub const SYNCED_TABLE: &str = "synced";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub confirmed: u64,
    pub already: u64,
    pub not_synced: u64,
    pub refused: u64,
    pub replayed: u64,
    pub withdrawn: u64,
}

pub struct SyncJob {
    pub channels: Arc<Channels>,
    pub output: String,
    pub sinks: Sinks,
    pub counts: Counts,
}

impl SyncJob {
    pub fn new(channels: Arc<Channels>, output: String, sinks: Sinks) -> SyncJob {
        SyncJob {
            channels,
            output,
            sinks,
            counts: Counts::default(),
        }
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Processor for SyncJob {
    type In = Avro<LabeledShipment>;

    fn process(
        &mut self,
        input: &Avro<LabeledShipment>,
        rec: &InRecord,
        state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<(), ProcessError> {
        let l = &input.0;
        let held = state.get_json::<SyncedShipment>(SYNCED_TABLE, l.shipment_id.as_bytes())?;
        if l.status == LabelStatus::Voided {
            if let Some(mut r) = self.voided(l, held, rec, state, out)? {
                r.event_id = event_id(&l.event_id, 0);
                out.push(Output::avro(self.output.clone(), l.order_id.clone(), r));
            }
            return Ok(());
        }
        let emit = |mut r: SyncedShipment, out: &mut Vec<Output>| {
            r.event_id = event_id(&l.event_id, 0);
            out.push(Output::avro(self.output.clone(), l.order_id.clone(), r));
        };
        if let Some(held) = held {
            self.counts.replayed += 1;
            emit(held, out);
            return Ok(());
        }
        let parcel = Parcel::from_labeled(l).map_err(ProcessError::Invalid)?;
        let handle = tokio::runtime::Handle::current();
        let result = tokio::task::block_in_place(|| handle.block_on(self.channels.push(&parcel)));
        let (outcome, reference, note) = match result {
            None => {
                self.counts.not_synced += 1;
                let r = record(
                    &parcel,
                    SyncOutcome::NotSynced,
                    None,
                    Some(format!(
                        "sync-back does not cover channel `{}` ([syncback] channels)",
                        parcel.channel
                    )),
                    rec.timestamp_ms.unwrap_or(0),
                );
                emit(r, out);
                return Ok(());
            }
            Some(Ok(Pushed::Confirmed(r))) => (SyncOutcome::Confirmed, r, None),
            Some(Ok(Pushed::AlreadyConfirmed(r))) => (
                SyncOutcome::AlreadyConfirmed,
                r,
                Some("the channel held this tracking number already".to_string()),
            ),
            Some(Err(CallError::Unavailable(why))) => return Err(ProcessError::Retry(why)),
            Some(Err(CallError::Refused(r))) => {
                self.refused(l, rec, &r, out);
                return Ok(());
            }
        };
        match outcome {
            SyncOutcome::AlreadyConfirmed => self.counts.already += 1,
            _ => self.counts.confirmed += 1,
        }
        metrics::counter!("conveyor_syncback_total", "channel" => parcel.channel.clone(), "outcome" => format!("{outcome:?}"))
            .increment(1);
        let r = record(&parcel, outcome, Some(reference), note, now_ms());
        state.put_json(SYNCED_TABLE, l.shipment_id.as_bytes(), &r)?;
        emit(r, out);
        Ok(())
    }
}

impl SyncJob {
    /// A refusal: an exception and a dead letter for `l`.
    fn refused(&mut self, l: &LabeledShipment, rec: &InRecord, r: &Refusal, out: &mut Vec<Output>) {
        self.counts.refused += 1;
        out.extend(exceptions::outputs(
            &self.sinks,
            rec,
            &Problem {
                stage: SYNCBACK,
                order_id: &l.order_id,
                shipment_id: Some(&l.shipment_id),
                input_event_id: &l.event_id,
                code: &r.code,
                reason: &r.reason,
            },
        ));
    }

    /// A voided label: take the tracking back if the channel has it.
    /// `Some(record)` to emit.
    fn voided(
        &mut self,
        l: &LabeledShipment,
        held: Option<SyncedShipment>,
        rec: &InRecord,
        state: &mut State<'_>,
        out: &mut Vec<Output>,
    ) -> Result<Option<SyncedShipment>, ProcessError> {
        let parcel = Parcel::from_labeled(l).map_err(ProcessError::Invalid)?;
        let told = match held {
            Some(h)
                if h.outcome == SyncOutcome::Withdrawn || h.outcome == SyncOutcome::NotSynced =>
            {
                self.counts.replayed += 1;
                return Ok(Some(h));
            }
            Some(h) => h,
            None => {
                let r = record(
                    &parcel,
                    SyncOutcome::NotSynced,
                    None,
                    Some("the label was voided before the channel was told".into()),
                    rec.timestamp_ms.unwrap_or(0),
                );
                state.put_json(SYNCED_TABLE, l.shipment_id.as_bytes(), &r)?;
                self.counts.not_synced += 1;
                return Ok(Some(r));
            }
        };
        let reference = told.channel_reference.clone().unwrap_or_default();
        let handle = tokio::runtime::Handle::current();
        let result = tokio::task::block_in_place(|| {
            handle.block_on(self.channels.withdraw(&parcel, &reference))
        });
        match result {
            Ok(()) => {
                self.counts.withdrawn += 1;
                metrics::counter!("conveyor_syncback_total", "channel" => parcel.channel.clone(), "outcome" => "Withdrawn")
                    .increment(1);
                let r = record(
                    &parcel,
                    SyncOutcome::Withdrawn,
                    Some(reference),
                    Some("the label was voided; the channel's fulfillment was cancelled".into()),
                    now_ms(),
                );
                state.put_json(SYNCED_TABLE, l.shipment_id.as_bytes(), &r)?;
                Ok(Some(r))
            }
            Err(CallError::Unavailable(why)) => Err(ProcessError::Retry(why)),
            Err(CallError::Refused(r)) => {
                self.refused(l, rec, &r, out);
                Ok(None)
            }
        }
    }
}

fn record(
    p: &Parcel,
    outcome: SyncOutcome,
    channel_reference: Option<String>,
    note: Option<String>,
    synced_at: i64,
) -> SyncedShipment {
    SyncedShipment {
        event_id: String::new(),
        shipment_id: p.shipment_id.clone(),
        order_id: p.order_id.clone(),
        channel: p.channel.clone(),
        external_order_id: p.external_order_id.clone(),
        carrier: p.carrier.clone(),
        tracking_number: p.tracking_number.clone(),
        outcome,
        channel_reference,
        note,
        synced_at,
    }
}
