//! Field parsers shared by the channel mappers: exact money, timestamps to
//! UTC millis, ISO country and region codes, postal codes. Every parser
//! returns a [`Rejection`] that names the field and the value it refused.

use std::str::FromStr;

use conveyor_schemas::records::money::check_amount;
use conveyor_schemas::records::{Currency, Money};
use rust_decimal::Decimal;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::Rejection;

/// An exact amount from its decimal text ("19.99", "-0.5", "1e2" is refused).
pub fn money_str(field: &str, text: &str, currency: Currency) -> Result<Money, Rejection> {
    let t = text.trim();
    let amount = Decimal::from_str_exact(t)
        .map_err(|_| Rejection::new(format!("{field}: `{text}` is not a decimal amount")))?;
    check_amount(&amount).map_err(|e| Rejection::new(format!("{field}: {e}")))?;
    Ok(Money::new(amount.normalize(), currency))
}

/// An amount sent as a JSON string or number. Numbers are read from their
/// shortest decimal text, so `19.99` stays 19.99 and never becomes a float
/// sum.
pub fn money_json(field: &str, v: &Value, currency: Currency) -> Result<Money, Rejection> {
    match v {
        Value::String(s) => money_str(field, s, currency),
        Value::Number(n) => money_str(field, &n.to_string(), currency),
        Value::Null => Ok(Money::zero(currency)),
        other => Err(Rejection::new(format!(
            "{field}: expected an amount, got {other}"
        ))),
    }
}

/// An optional amount: absent or null is zero.
pub fn money_opt(field: &str, v: Option<&Value>, currency: Currency) -> Result<Money, Rejection> {
    match v {
        None => Ok(Money::zero(currency)),
        Some(v) => money_json(field, v, currency),
    }
}

/// An amount in the currency's minor units (cents for USD, yen for JPY).
pub fn money_minor(minor: i64, currency: Currency) -> Money {
    Money::new(
        Decimal::new(minor, minor_unit_exponent(currency)).normalize(),
        currency,
    )
}

/// ISO 4217 minor-unit exponent.
pub fn minor_unit_exponent(c: Currency) -> u32 {
    match c.as_str() {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// A currency code, case-insensitively ("usd" is USD).
pub fn currency(field: &str, code: &str) -> Result<Currency, Rejection> {
    let up = code.trim().to_ascii_uppercase();
    let c = Currency::new(&up).map_err(|e| Rejection::new(format!("{field}: {e}")))?;
    if !is_iso_currency(c.as_str()) {
        return Err(Rejection::new(format!(
            "{field}: `{code}` is not an ISO 4217 currency"
        )));
    }
    Ok(c)
}

fn is_iso_currency(code: &str) -> bool {
    const CODES: &[&str] = &[
        "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
        "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
        "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
        "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
        "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
        "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
        "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
        "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
        "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
        "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
        "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
        "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWL",
    ];
    CODES.binary_search(&code).is_ok()
}

/// An RFC 3339 / ISO 8601 timestamp with an offset ("2024-01-10T11:00:00-05:00",
/// "2019-07-30T20:27:58.000Z") as UTC millis.
pub fn timestamp(field: &str, text: &str) -> Result<i64, Rejection> {
    let t = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|e| {
        Rejection::new(format!(
            "{field}: `{text}` is not an RFC 3339 timestamp with an offset ({e})"
        ))
    })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Unix seconds as millis.
pub fn unix_seconds(field: &str, secs: i64) -> Result<i64, Rejection> {
    // Between 2000 and 2100: anything else is a unit mix-up (millis sent as
    // seconds) that would corrupt every date downstream.
    if !(946_684_800..4_102_444_800).contains(&secs) {
        return Err(Rejection::new(format!(
            "{field}: {secs} is not a plausible Unix time in seconds"
        )));
    }
    Ok(secs * 1000)
}

/// A timestamp as UTC text (for messages and CSV).
pub fn format_ms(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// An ISO 3166-1 alpha-2 country code from a code (any case, alpha-2 or
/// the common alpha-3) or an English name.
pub fn country_code(text: &str) -> Option<String> {
    let t = text.trim();
    if t.len() == 2 {
        let up = t.to_ascii_uppercase();
        return ALPHA2.binary_search(&up.as_str()).is_ok().then_some(up);
    }
    COUNTRY_ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(t))
        .map(|(_, code)| code.to_string())
}

const ALPHA2: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// Alpha-3 codes and English names channels are known to send.
const COUNTRY_ALIASES: &[(&str, &str)] = &[
    ("USA", "US"),
    ("united states", "US"),
    ("united states of america", "US"),
    ("CAN", "CA"),
    ("canada", "CA"),
    ("GBR", "GB"),
    ("UK", "GB"),
    ("united kingdom", "GB"),
    ("great britain", "GB"),
    ("DEU", "DE"),
    ("germany", "DE"),
    ("FRA", "FR"),
    ("france", "FR"),
    ("AUS", "AU"),
    ("australia", "AU"),
    ("MEX", "MX"),
    ("mexico", "MX"),
    ("JPN", "JP"),
    ("japan", "JP"),
    ("ESP", "ES"),
    ("spain", "ES"),
    ("ITA", "IT"),
    ("italy", "IT"),
    ("NLD", "NL"),
    ("netherlands", "NL"),
    ("IRL", "IE"),
    ("ireland", "IE"),
    ("NZL", "NZ"),
    ("new zealand", "NZ"),
    ("PRI", "PR"),
    ("puerto rico", "PR"),
];

/// A region code for countries whose carriers need one (US states and
/// territories, Canadian provinces): the code itself or the English name.
/// Other countries keep the text as sent.
pub fn region_code(country: &str, text: &str) -> Result<Option<String>, Rejection> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let table = match country {
        "US" => US_STATES,
        "CA" => CA_PROVINCES,
        _ => return Ok(Some(t.to_string())),
    };
    let up = t.to_ascii_uppercase();
    table
        .iter()
        .find(|(code, name)| *code == up || name.eq_ignore_ascii_case(t))
        .map(|(code, _)| Some(code.to_string()))
        .ok_or_else(|| Rejection::new(format!("address: `{t}` is not a region of {country}")))
}

const US_STATES: &[(&str, &str)] = &[
    ("AL", "Alabama"),
    ("AK", "Alaska"),
    ("AZ", "Arizona"),
    ("AR", "Arkansas"),
    ("CA", "California"),
    ("CO", "Colorado"),
    ("CT", "Connecticut"),
    ("DE", "Delaware"),
    ("DC", "District of Columbia"),
    ("FL", "Florida"),
    ("GA", "Georgia"),
    ("HI", "Hawaii"),
    ("ID", "Idaho"),
    ("IL", "Illinois"),
    ("IN", "Indiana"),
    ("IA", "Iowa"),
    ("KS", "Kansas"),
    ("KY", "Kentucky"),
    ("LA", "Louisiana"),
    ("ME", "Maine"),
    ("MD", "Maryland"),
    ("MA", "Massachusetts"),
    ("MI", "Michigan"),
    ("MN", "Minnesota"),
    ("MS", "Mississippi"),
    ("MO", "Missouri"),
    ("MT", "Montana"),
    ("NE", "Nebraska"),
    ("NV", "Nevada"),
    ("NH", "New Hampshire"),
    ("NJ", "New Jersey"),
    ("NM", "New Mexico"),
    ("NY", "New York"),
    ("NC", "North Carolina"),
    ("ND", "North Dakota"),
    ("OH", "Ohio"),
    ("OK", "Oklahoma"),
    ("OR", "Oregon"),
    ("PA", "Pennsylvania"),
    ("RI", "Rhode Island"),
    ("SC", "South Carolina"),
    ("SD", "South Dakota"),
    ("TN", "Tennessee"),
    ("TX", "Texas"),
    ("UT", "Utah"),
    ("VT", "Vermont"),
    ("VA", "Virginia"),
    ("WA", "Washington"),
    ("WV", "West Virginia"),
    ("WI", "Wisconsin"),
    ("WY", "Wyoming"),
    ("AS", "American Samoa"),
    ("GU", "Guam"),
    ("MP", "Northern Mariana Islands"),
    ("PR", "Puerto Rico"),
    ("VI", "U.S. Virgin Islands"),
    ("AA", "Armed Forces Americas"),
    ("AE", "Armed Forces Europe"),
    ("AP", "Armed Forces Pacific"),
];

const CA_PROVINCES: &[(&str, &str)] = &[
    ("AB", "Alberta"),
    ("BC", "British Columbia"),
    ("MB", "Manitoba"),
    ("NB", "New Brunswick"),
    ("NL", "Newfoundland and Labrador"),
    ("NS", "Nova Scotia"),
    ("NT", "Northwest Territories"),
    ("NU", "Nunavut"),
    ("ON", "Ontario"),
    ("PE", "Prince Edward Island"),
    ("QC", "Quebec"),
    ("SK", "Saskatchewan"),
    ("YT", "Yukon"),
];

/// A postal code in its country's canonical form: US ZIP or ZIP+4, Canadian
/// `A1A 1A1`, upper case elsewhere. Refuses codes that cannot be right for
/// countries whose format is fixed.
pub fn postal_code(country: &str, text: &str) -> Result<String, Rejection> {
    let t = text.trim().to_ascii_uppercase();
    let bad = || {
        Rejection::new(format!(
            "address: `{text}` is not a postal code of {country}"
        ))
    };
    match country {
        "US" | "PR" | "GU" | "VI" | "AS" | "MP" => {
            let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
            let only_zip_chars = t
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == ' ');
            match digits.len() {
                5 if only_zip_chars => Ok(digits),
                9 if only_zip_chars => Ok(format!("{}-{}", &digits[..5], &digits[5..])),
                // ZIPs starting with 0 lose their leading zero in spreadsheets.
                4 if only_zip_chars && !t.contains('-') => Ok(format!("0{digits}")),
                _ => Err(bad()),
            }
        }
        "CA" => {
            let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
            let b = compact.as_bytes();
            let ok = b.len() == 6
                && b.iter().enumerate().all(|(i, c)| {
                    if i % 2 == 0 {
                        c.is_ascii_alphabetic()
                    } else {
                        c.is_ascii_digit()
                    }
                });
            if ok {
                Ok(format!("{} {}", &compact[..3], &compact[3..]))
            } else {
                Err(bad())
            }
        }
        _ if t.is_empty() => Err(bad()),
        _ => Ok(t),
    }
}

/// The string at `v[key]`, absent, null and "" all being None.
pub fn opt_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// An integer sent as a JSON number or a numeric string.
pub fn int(field: &str, v: Option<&Value>) -> Result<i64, Rejection> {
    match v {
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| Rejection::new(format!("{field}: {n} is not an integer"))),
        Some(Value::String(s)) => i64::from_str(s.trim())
            .map_err(|_| Rejection::new(format!("{field}: `{s}` is not an integer"))),
        Some(Value::Null) | None => Err(Rejection::new(format!("{field} is missing"))),
        Some(other) => Err(Rejection::new(format!(
            "{field}: expected an integer, got {other}"
        ))),
    }
}

/// A JSON id (number or string) as text.
pub fn id_text(v: Option<&Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact_and_refuses_junk() {
        let m = money_str("price", "19.99", Currency::USD).unwrap();
        assert_eq!(m.amount.to_string(), "19.99");
        let j: Value = serde_json::from_str("0.1").unwrap();
        assert_eq!(
            money_json("p", &j, Currency::USD)
                .unwrap()
                .amount
                .to_string(),
            "0.1"
        );
        assert!(money_str("price", "abc", Currency::USD).is_err());
        assert!(money_str("price", "1.23456", Currency::USD).is_err());
        assert_eq!(money_minor(1999, Currency::USD).amount.to_string(), "19.99");
        let jpy = currency("c", "jpy").unwrap();
        assert_eq!(money_minor(1999, jpy).amount.to_string(), "1999");
        assert!(currency("c", "XXQ").is_err());
    }

    #[test]
    fn timestamps_keep_their_offsets() {
        assert_eq!(
            timestamp("t", "2024-01-10T11:00:00-05:00").unwrap(),
            timestamp("t", "2024-01-10T16:00:00Z").unwrap()
        );
        assert_eq!(timestamp("t", "1970-01-01T00:00:01.5Z").unwrap(), 1500);
        assert!(timestamp("t", "2024-01-10 11:00").is_err());
        assert!(unix_seconds("t", 1_700_000_000_000).is_err());
        assert_eq!(format_ms(1500), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn addresses_to_iso_codes() {
        assert_eq!(country_code("us").as_deref(), Some("US"));
        assert_eq!(country_code("United States").as_deref(), Some("US"));
        assert_eq!(country_code("USA").as_deref(), Some("US"));
        assert_eq!(country_code("Narnia"), None);
        assert_eq!(
            region_code("US", "new york").unwrap().as_deref(),
            Some("NY")
        );
        assert_eq!(region_code("CA", "QC").unwrap().as_deref(), Some("QC"));
        assert!(region_code("US", "Ontario").is_err());
        assert_eq!(
            region_code("DE", "Bayern").unwrap().as_deref(),
            Some("Bayern")
        );
        assert_eq!(postal_code("US", "2134").unwrap(), "02134");
        assert_eq!(postal_code("US", "94103 1234").unwrap(), "94103-1234");
        assert!(postal_code("US", "ABCDE").is_err());
        assert_eq!(postal_code("CA", "k1a0b1").unwrap(), "K1A 0B1");
        assert_eq!(postal_code("GB", "sw1a 1aa").unwrap(), "SW1A 1AA");
    }

    #[derive(Debug, serde::Deserialize)]
    struct Probe {
        #[allow(dead_code)]
        id: u64,
    }

    #[test]
    fn typed_names_the_field_and_refuses_trailing_bytes() {
        assert!(typed::<Probe>("x", br#"{"id": 1}"#).is_ok());
        let e = typed::<Probe>("x", br#"{"id": "one"}"#).unwrap_err();
        assert!(e.0.contains("id"), "{}", e.0);
        let e = typed::<Probe>("x", br#"{"id": 1} garbage"#).unwrap_err();
        assert!(e.0.contains("after the JSON object"), "{}", e.0);
        let e = typed::<Probe>("x", b"true").unwrap_err();
        assert!(e.0.contains("x payload"), "{}", e.0);
        // A derived struct would read `[1]` positionally as {"id": 1}.
        let e = typed::<Probe>("x", b" [1]").unwrap_err();
        assert!(e.0.contains("not a JSON object"), "{}", e.0);
    }
}

/// A JSON scalar as sent, borrowed from the payload when possible: typed
/// mappers deserialize amounts and ids into it so that `"19.99"`, `19.99`
/// and `1999` are all accepted without a DOM, and an amount keeps its
/// decimal text (never an f64 sum).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Scalar<'a> {
    #[default]
    Null,
    Text(std::borrow::Cow<'a, str>),
    /// A JSON number's decimal text (shortest form for floats).
    Number(String),
    Bool(bool),
}

impl<'a> Scalar<'a> {
    /// The text of a string or number; None for null, "" and booleans.
    pub fn text(&self) -> Option<&str> {
        match self {
            Scalar::Text(t) => Some(t.trim()).filter(|s| !s.is_empty()),
            Scalar::Number(n) => Some(n.as_str()),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }

    /// An amount; null or absent is zero.
    pub fn money(&self, field: &str, currency: Currency) -> Result<Money, Rejection> {
        match self {
            Scalar::Null => Ok(Money::zero(currency)),
            Scalar::Bool(b) => Err(Rejection::new(format!(
                "{field}: expected an amount, got {b}"
            ))),
            _ => match self.text() {
                Some(t) => money_str(field, t, currency),
                None => Ok(Money::zero(currency)),
            },
        }
    }

    /// An integer (number or numeric string).
    pub fn int(&self, field: &str) -> Result<i64, Rejection> {
        match self {
            Scalar::Null => Err(Rejection::new(format!("{field} is missing"))),
            Scalar::Bool(b) => Err(Rejection::new(format!(
                "{field}: expected an integer, got {b}"
            ))),
            _ => {
                let t = self.text().unwrap_or_default();
                i64::from_str(t)
                    .map_err(|_| Rejection::new(format!("{field}: `{t}` is not an integer")))
            }
        }
    }

    /// A boolean sent as true/false or "true"/"false".
    pub fn bool(&self) -> Option<bool> {
        match self {
            Scalar::Bool(b) => Some(*b),
            Scalar::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn owned(&self) -> Option<String> {
        self.text().map(String::from)
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Text(std::borrow::Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Text(std::borrow::Cow::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Number(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Number(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar<'a>, E> {
                // serde_json's own shortest round-trip text of the number.
                Ok(Scalar::Number(
                    serde_json::Number::from_f64(v)
                        .map_or_else(|| v.to_string(), |n| n.to_string()),
                ))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_unit<E>(self) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Scalar<'a>, E> {
                Ok(Scalar::Null)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Scalar<'a>, D::Error> {
                d.deserialize_any(self)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Deserializes a typed payload, borrowing from `bytes`; a mismatch names
/// the path of the field (e.g. `line_items[2].quantity: invalid type: map,
/// expected a string, number, boolean or null`).
pub fn typed<'a, T: serde::Deserialize<'a>>(
    channel: &str,
    bytes: &'a [u8],
) -> Result<T, Rejection> {
    // UTF-8 is checked once for the whole payload (a fast scan), so the
    // parser does not validate each string it borrows again.
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Rejection::new(format!("{channel} payload is not UTF-8 text: {e}")))?;
    // Every channel sends an object; a derived struct would also read an
    // array, field by field in order, and make a confusing reason of it.
    if !text.trim_start().starts_with('{') {
        return Err(Rejection::new(format!(
            "{channel} payload is not a JSON object"
        )));
    }
    // The fast path; only a refused payload pays for path tracking.
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Rejection::new(format!(
                "{channel} payload is not the expected JSON object: {inner}"
            ))
        } else {
            Rejection::new(format!("{channel} payload: {path}: {inner}"))
        }
    })?;
    // What made the fast path fail may be past the value: trailing bytes.
    de.end().map_err(|e| {
        Rejection::new(format!(
            "{channel} payload has bytes after the JSON object: {e}"
        ))
    })?;
    Ok(value)
}

/// Fields typed mappers skip past without building anything (nested
/// objects and arrays conveyor does not read are ignored by serde anyway;
/// this is for values whose type varies).
pub type Ignored = serde::de::IgnoredAny;
