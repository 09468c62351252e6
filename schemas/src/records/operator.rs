//! Operator actions: what an operator did about an exception in the
//! operator console (topic `operator.actions`), its audit log.

use serde::{Deserialize, Serialize};

use crate::wire::{avro_enum, avro_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionKind {
    /// The failed record re-published to its source topic (after an edit,
    /// if the operator made one).
    Retry,
    /// The order or shipment cancelled.
    Cancel,
    /// Marked resolved; nothing re-published.
    Resolve,
}

impl ActionKind {
    /// The schema's symbol (`RETRY`, `CANCEL`, `RESOLVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Retry => "RETRY",
            ActionKind::Cancel => "CANCEL",
            ActionKind::Resolve => "RESOLVE",
        }
    }
}

/// One submitted console action. A re-submission of the same form is the
/// same record: `event_id` = `action_id`, and every field identical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorAction {
    pub event_id: String,
    pub action_id: String,
    pub exception_id: String,
    pub order_id: String,
    pub shipment_id: Option<String>,
    pub kind: ActionKind,
    pub actor: String,
    pub role: String,
    pub reason: String,
    /// What the console did; names fields, never their values (no PII).
    pub detail: String,
    pub at: i64,
}

avro_enum!(ActionKind {
    Retry,
    Cancel,
    Resolve
});
avro_record!(OperatorAction {
    event_id,
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
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Record;
    use crate::wire::AvroBinary;

    #[test]
    fn the_hand_written_encoding_is_avros() {
        for i in 0..3 {
            let a = crate::samples::operator_action(i, 1_795_737_600_000);
            let mut mine = Vec::new();
            a.write(&mut mine).unwrap();
            let schema = OperatorAction::schema();
            let theirs = apache_avro::writer::datum::GenericDatumWriter::builder(schema)
                .build()
                .unwrap()
                .write_ser_to_vec(&a)
                .unwrap();
            assert_eq!(mine, theirs, "{a:?}");
            let back = OperatorAction::read(&mut mine.as_slice()).unwrap();
            assert_eq!(back, a);
            let by_avro: OperatorAction =
                apache_avro::reader::datum::GenericDatumReader::builder(schema)
                    .build()
                    .unwrap()
                    .read_deser(&mut std::io::Cursor::new(&mine))
                    .unwrap();
            assert_eq!(by_avro, a);
        }
    }

    #[test]
    fn kinds_name_their_symbols() {
        for k in [ActionKind::Retry, ActionKind::Cancel, ActionKind::Resolve] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
