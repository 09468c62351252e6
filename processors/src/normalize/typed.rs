//! Typed-payload helpers the Amazon, TikTok Shop and eBay mappers share:
//! [`Obj`] (an object and only an object), [`Text`] (a string borrowed from
//! the payload unless escaped), scalar readers, exact money arithmetic
//! with the field named in every rejection, and service-level priorities.

use std::borrow::Cow;
use std::fmt::{self, Display};
use std::marker::PhantomData;

use conveyor_schemas::records::money::check_amount;
use conveyor_schemas::records::{Currency, Money, Priority};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::fields::{self, Scalar};
use super::Rejection;

/// What an [`Obj`] expects, for the rejection when it is something else.
pub(crate) trait Expecting {
    const WHAT: &'static str;
}

/// A JSON object read as `T`, and only an object: a derived struct on its
/// own would also read a JSON array, positionally. For the lists whose
/// entries must be objects (order items, line items).
#[repr(transparent)]
pub(crate) struct Obj<T>(pub T);

impl<T> Obj<T> {
    pub(super) fn unwrap_all(v: Vec<Obj<T>>) -> Vec<T> {
        // Collected in place: Obj<T> has T's layout.
        v.into_iter().map(|o| o.0).collect()
    }
}

impl<'de, T: Deserialize<'de> + Expecting> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Expecting> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(T::WHAT)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A JSON string, borrowed from the payload unless it has escapes.
///
/// For text fields as `Option<Text<'a>>`: serde borrows a `Cow<'a, str>`
/// only when it is a field's exact type (`#[serde(borrow)]` makes it use
/// `borrow_cow_str`); an `Option<Cow<'a, str>>` is always copied into a
/// new String, whatever the attributes say.
#[derive(Debug, Default)]
pub(crate) struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'a>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// Trimmed, non-empty text; absent, null and "" are None.
pub(crate) fn t<'s>(v: &'s Option<Text<'_>>) -> Option<&'s str> {
    v.as_ref().map(|x| x.0.trim()).filter(|s| !s.is_empty())
}

/// A scalar's text when it was sent as a string (trimmed, non-empty):
/// numbers and booleans are None, as for a field documented as a string.
pub(crate) fn s<'s>(v: &'s Scalar<'_>) -> Option<&'s str> {
    match v {
        Scalar::Text(x) => Some(x.trim()).filter(|x| !x.is_empty()),
        _ => None,
    }
}

/// A scalar as flat text for `extras`/`properties` (strings, numbers,
/// booleans); null and "" are None.
pub(crate) fn flat(v: &Scalar<'_>) -> Option<String> {
    match v {
        Scalar::Bool(b) => Some(bool_text(*b)),
        other => other.owned(),
    }
}

/// "true" or "false", without the formatting machinery.
pub(crate) fn bool_text(b: bool) -> String {
    if b { "true" } else { "false" }.to_string()
}

/// A boolean sent as JSON `true`/`false` or as the text "true"/"false".
pub(crate) fn flag(v: &Scalar<'_>) -> Option<bool> {
    match v {
        Scalar::Bool(b) => Some(*b),
        Scalar::Text(x) if x.trim().eq_ignore_ascii_case("true") => Some(true),
        Scalar::Text(x) if x.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// An amount sent as a decimal string or a JSON number (null is zero, ""
/// is refused as before): exact, never through a float sum.
pub(crate) fn money(field: &str, v: &Scalar<'_>, cur: Currency) -> Result<Decimal, Rejection> {
    match v {
        Scalar::Null => Ok(Decimal::ZERO),
        Scalar::Text(x) => Ok(fields::money_str(field, x, cur)?.amount),
        Scalar::Number(x) => Ok(fields::money_str(field, x, cur)?.amount),
        Scalar::Bool(b) => Err(Rejection::new(format!(
            "{field}: expected an amount, got {b}"
        ))),
    }
}

/// An amount object's currency `code` (field `key` of `what`): the order's
/// currency `cur`, else refused.
pub(crate) fn same_currency(
    what: &str,
    key: &str,
    code: &str,
    cur: Currency,
) -> Result<(), Rejection> {
    if code == cur.as_str() {
        return Ok(());
    }
    let c = fields::currency(key, code).map_err(|e| within(what, e))?;
    if c != cur {
        return Err(Rejection::new(format!(
            "{what} is in {c} but the order is in {cur}"
        )));
    }
    Ok(())
}

/// A rejection about a field of the part at `path` ("OrderItems[2]" +
/// "ItemPrice: ..." is "OrderItems[2].ItemPrice: ..."). Only called on
/// the error path, so the success path formats nothing.
pub(crate) fn within(path: impl Display, e: Rejection) -> Rejection {
    Rejection(format!("{path}.{}", e.0))
}

// Exact arithmetic shared with the tiktok and ebay mappers. Every amount a
// mapper reads is below 10^20 (fields::money_str checks it), but sums and
// products of hostile input can still overflow a Decimal, which panics:
// these refuse instead.

/// An overflowed (None) result as a rejection naming the field.
pub(crate) fn checked(field: &str, d: Option<Decimal>) -> Result<Decimal, Rejection> {
    d.ok_or_else(|| Rejection::new(format!("{field}: amounts add up beyond any real order")))
}

/// A computed amount as Money, refused when it does not fit the wire.
pub(crate) fn to_money(field: &str, d: Decimal, cur: Currency) -> Result<Money, Rejection> {
    check_amount(&d).map_err(|e| Rejection::new(format!("{field}: {e}")))?;
    Ok(Money::new(d.normalize(), cur))
}

/// The unit price of `quantity` units costing `total` together: exact when
/// it has at most 4 decimal places (the wire scale), else rounded half-even
/// to 4 places (then `true`). A quantity below 1 keeps `total` (finish
/// refuses such lines anyway).
pub(crate) fn per_unit(
    field: &str,
    total: Decimal,
    quantity: i32,
) -> Result<(Decimal, bool), Rejection> {
    if quantity <= 1 {
        return Ok((total, false));
    }
    let q = Decimal::from(quantity);
    let unit = checked(field, total.checked_div(q))?;
    let at_scale = unit.round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven);
    let exact = at_scale.checked_mul(q) == Some(total);
    Ok((at_scale.normalize(), !exact))
}

/// Priority from a carrier service code or level name ("UPSNextDayAir",
/// "USPSPriority", "FedEx2Day", "Std US D2D Dom", "Expedited").
pub(crate) fn priority_of_code(text: &str) -> Priority {
    let t: String = text
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    const OVERNIGHT: [&str; 6] = [
        "overnight",
        "nextday",
        "sameday",
        "oneday",
        "1day",
        "nextbusinessday",
    ];
    const EXPEDITED: [&str; 10] = [
        "expedited",
        "express",
        "priority",
        "secondday",
        "2ndday",
        "twoday",
        "2day",
        "3rdday",
        "threeday",
        "3day",
    ];
    if OVERNIGHT.iter().any(|k| t.contains(k)) {
        Priority::Overnight
    } else if EXPEDITED.iter().any(|k| t.contains(k)) {
        Priority::Expedited
    } else {
        Priority::Standard
    }
}
