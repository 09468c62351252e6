//! Money: an exact decimal amount with its currency, encoded as an Avro
//! `decimal(24, 4)` (big-endian two's-complement bytes of the unscaled
//! value). Never a float.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Fractional digits of every amount on the wire.
pub const SCALE: u32 = 4;
/// Total digits of every amount on the wire.
pub const PRECISION: u32 = 24;
/// 10^PRECISION: every unscaled value's magnitude stays below it.
const LIMIT: u128 = 10u128.pow(PRECISION);
/// 10^k for k in 0..=SCALE.
const POW10: [i128; SCALE as usize + 1] = [1, 10, 100, 1_000, 10_000];

/// An exact amount of money in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    #[serde(with = "decimal_bytes")]
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Self { amount, currency }
    }

    /// `cents` hundredths of `currency`.
    pub fn from_cents(cents: i64, currency: Currency) -> Self {
        Self::new(Decimal::new(cents, 2), currency)
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::new(Decimal::ZERO, currency)
    }
}

/// An ISO 4217 currency code: three ASCII capital letters. On the wire it is
/// an Avro `string`; anything else is refused when decoded.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");
    pub const GBP: Currency = Currency(*b"GBP");
    pub const CAD: Currency = Currency(*b"CAD");

    /// Parses a code such as `USD`.
    pub fn new(code: &str) -> Result<Currency, String> {
        Self::from_bytes(code.as_bytes())
    }

    pub fn from_bytes(b: &[u8]) -> Result<Currency, String> {
        match b {
            [x, y, z] if b.iter().all(u8::is_ascii_uppercase) => Ok(Currency([*x, *y, *z])),
            _ => Err(format!(
                "currency `{}` is not an ISO 4217 code (three capital letters)",
                String::from_utf8_lossy(b)
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII capitals are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl std::str::FromStr for Currency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Currency::new(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Currency, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Currency::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Avro binary: the amount as decimal bytes, then the currency.
impl crate::wire::AvroBinary for Money {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), crate::wire::WireError> {
        let unscaled = check_amount(&self.amount).map_err(crate::wire::WireError)?;
        let bytes = unscaled.to_be_bytes();
        crate::wire::write_bytes(&bytes[minimal_start(&bytes, unscaled)..], out);
        crate::wire::write_bytes(&self.currency.0, out);
        Ok(())
    }
    fn read(input: &mut &[u8]) -> Result<Self, crate::wire::WireError> {
        let b = crate::wire::read_bytes(input)?;
        Ok(Money {
            amount: decimal_from_bytes(b).map_err(crate::wire::WireError)?,
            currency: Currency::from_bytes(crate::wire::read_bytes(input)?)
                .map_err(crate::wire::WireError)?,
        })
    }
}

/// The largest magnitude that fits `decimal(24, 4)`: 10^20 - 10^-4.
pub fn max_amount() -> Decimal {
    Decimal::from_i128_with_scale(LIMIT as i128 - 1, SCALE)
}

/// Errors turning a decimal into wire bytes.
pub fn check_amount(d: &Decimal) -> Result<i128, String> {
    if d.scale() <= SCALE {
        // Exact: scale up by a power of ten (no rounding possible).
        let unscaled = d.mantissa() * POW10[(SCALE - d.scale()) as usize];
        if unscaled.unsigned_abs() >= LIMIT {
            return Err(format!(
                "amount {d} does not fit decimal({PRECISION}, {SCALE})"
            ));
        }
        return Ok(unscaled);
    }
    if d.round_dp(SCALE) != *d {
        return Err(format!(
            "amount {d} has more than {SCALE} fractional digits; round it explicitly first"
        ));
    }
    let mut scaled = *d;
    scaled.rescale(SCALE);
    let unscaled = scaled.mantissa();
    if unscaled.unsigned_abs() >= LIMIT {
        return Err(format!(
            "amount {d} does not fit decimal({PRECISION}, {SCALE})"
        ));
    }
    Ok(unscaled)
}

/// Serde adapter: `Decimal` <-> Avro decimal bytes at [`SCALE`].
pub mod decimal_bytes {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        let unscaled = check_amount(d).map_err(serde::ser::Error::custom)?;
        s.serialize_bytes(&to_twos_complement(unscaled))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("decimal bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Decimal, E> {
                decimal_from_bytes(v).map_err(E::custom)
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Decimal, E> {
                self.visit_bytes(&v)
            }
            // Formats without a bytes type (JSON) write bytes as a sequence.
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Decimal, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(8));
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                self.visit_bytes(&bytes)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Decimal wire bytes (at [`SCALE`]) to a `Decimal`, refusing values outside
/// `decimal(PRECISION, SCALE)` instead of panicking on them.
pub fn decimal_from_bytes(b: &[u8]) -> Result<Decimal, String> {
    let unscaled = from_twos_complement(b)?;
    if unscaled.unsigned_abs() >= LIMIT {
        return Err(format!(
            "decimal {unscaled}e-{SCALE} does not fit decimal({PRECISION}, {SCALE})"
        ));
    }
    Decimal::try_from_i128_with_scale(unscaled, SCALE).map_err(|e| e.to_string())
}

/// Minimal big-endian two's-complement bytes of `v`.
pub fn to_twos_complement(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    bytes[minimal_start(&bytes, v)..].to_vec()
}

/// Index of the first byte of the minimal encoding within `v.to_be_bytes()`:
/// leading bytes that only repeat the sign are dropped.
fn minimal_start(_bytes: &[u8; 16], v: i128) -> usize {
    // Redundant sign bits, keeping one: whole bytes of them can go.
    let sign_bits = if v < 0 {
        (!v).leading_zeros()
    } else {
        v.leading_zeros()
    };
    (((sign_bits - 1) / 8) as usize).min(15)
}

/// Big-endian two's-complement bytes to an integer (at most 16 bytes).
pub fn from_twos_complement(b: &[u8]) -> Result<i128, String> {
    if b.is_empty() {
        return Ok(0);
    }
    if b.len() > 16 {
        return Err(format!(
            "decimal of {} bytes does not fit 128 bits",
            b.len()
        ));
    }
    let fill = if b[0] & 0x80 != 0 { 0xff } else { 0x00 };
    let mut buf = [fill; 16];
    buf[16 - b.len()..].copy_from_slice(b);
    Ok(i128::from_be_bytes(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn twos_complement_examples() {
        assert_eq!(to_twos_complement(0), [0]);
        assert_eq!(to_twos_complement(127), [0x7f]);
        assert_eq!(to_twos_complement(128), [0x00, 0x80]);
        assert_eq!(to_twos_complement(-1), [0xff]);
        assert_eq!(to_twos_complement(-128), [0x80]);
        assert_eq!(to_twos_complement(-129), [0xff, 0x7f]);
    }

    #[test]
    fn known_wire_vectors() {
        use crate::wire::AvroBinary;
        let enc = |m: Money| {
            let mut out = Vec::new();
            m.write(&mut out).unwrap();
            out
        };
        // 1.00 = 10000e-4 = 0x2710; length 2 zig-zags to 4; "USD" length 3 to 6.
        assert_eq!(
            enc(Money::from_cents(100, Currency::USD)),
            [4, 0x27, 0x10, 6, b'U', b'S', b'D']
        );
        // -1.00 = -10000e-4 = 0xd8f0.
        assert_eq!(
            enc(Money::from_cents(-100, Currency::EUR)),
            [4, 0xd8, 0xf0, 6, b'E', b'U', b'R']
        );
        // 0 is one zero byte.
        assert_eq!(enc(Money::zero(Currency::GBP)), [2, 0, 6, b'G', b'B', b'P']);
    }

    #[test]
    fn hostile_decimals_are_errors_not_panics() {
        let mut min = vec![0x80];
        min.extend([0u8; 15]);
        assert!(decimal_from_bytes(&min).is_err(), "i128::MIN");
        assert!(decimal_from_bytes(&[0x7f; 16]).is_err(), "beyond 96 bits");
        assert!(
            decimal_from_bytes(&[0x01; 17]).is_err(),
            "more than 16 bytes"
        );
        assert!(serde_json::from_str::<Money>(r#"{"amount":[127,255,255,255,255,255,255,255,255,255,255,255,255,255,255,255],"currency":"USD"}"#).is_err());
    }

    #[test]
    fn currency_codes_are_checked() {
        assert_eq!(Currency::new("USD"), Ok(Currency::USD));
        assert!(Currency::new("usd").is_err());
        assert!(Currency::new("US").is_err());
        assert!(Currency::new("€UR").is_err());
        let m: Money = serde_json::from_str(r#"{"amount":[1],"currency":"EUR"}"#).unwrap();
        assert_eq!(m.currency, Currency::EUR);
        assert!(serde_json::from_str::<Money>(r#"{"amount":[1],"currency":"euro"}"#).is_err());
    }

    #[test]
    fn rejects_what_would_lose_precision() {
        assert!(check_amount(&Decimal::new(12345, 5)).is_err());
        assert!(check_amount(&Decimal::new(12340, 5)).is_ok());
        assert!(check_amount(&(max_amount() + Decimal::new(1, 4))).is_err());
        assert!(check_amount(&max_amount()).is_ok());
    }

    proptest! {
        #[test]
        fn any_amount_in_cents_fits(cents in any::<i64>()) {
            prop_assert_eq!(check_amount(&Decimal::new(cents, 2)), Ok(i128::from(cents) * 100));
        }

        #[test]
        fn fast_and_general_scaling_agree(m in any::<i64>(), scale in 0u32..=8) {
            let d = Decimal::new(m, scale);
            let mut r = d;
            r.rescale(SCALE);
            let general = (r == d || d.round_dp(SCALE) == d).then(|| r.mantissa());
            prop_assert_eq!(check_amount(&d).ok(), general.filter(|u| u.abs() < 10i128.pow(PRECISION)));
        }

        #[test]
        fn bytes_round_trip(v in any::<i64>(), w in any::<i64>()) {
            let x = (i128::from(v) << 32) ^ i128::from(w);
            prop_assert_eq!(from_twos_complement(&to_twos_complement(x)).unwrap(), x);
        }
    }
}
