//! CSV import (`conveyor import csv FILE --channel NAME --mapping FILE`):
//! order exports from POS systems and marketplaces (TCGplayer, BinderPOS,
//! a spreadsheet of manual orders) into `orders.raw.csv`.
//!
//! A [`Mapping`] (TOML) names the file's columns for each field; rows that
//! share an order number are one order (lines in file order). The whole file
//! is checked before anything is published, and a report lists every bad
//! row with its line number and what is wrong. Nothing is half-imported:
//! with a bad row the import publishes nothing (or, with
//! `--skip-bad-orders`, every order none of whose rows is bad).
//!
//! Each order is published as one raw record whose payload is a JSON
//! document ([`FORMAT`]): the mapped fields (dates already in RFC 3339 with
//! the mapping's offset) and the order's rows exactly as they are in the
//! file. Event ids derive from the file's content hash and the order
//! number, so importing the same file twice changes nothing downstream, and
//! a corrected file re-imported updates the orders it changed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::format_description::OwnedFormatItem;
use time::{PrimitiveDateTime, UtcOffset};

use conveyor_schemas::records::{RawOrder, RawSource};

/// The payload format name normalize's csv mapper reads.
pub const FORMAT: &str = "conveyor.csv.v1";

/// What a mapping file says.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// Field separator (one character).
    #[serde(default = "comma")]
    pub delimiter: char,
    /// Currency of every amount when the file has no currency column.
    #[serde(default)]
    pub currency: Option<String>,
    /// Offset of dates written without one, e.g. "-05:00".
    #[serde(default = "utc")]
    pub utc_offset: String,
    /// Extra date formats (the `time` crate's syntax, e.g.
    /// "[month]/[day]/[year] [hour]:[minute]"); RFC 3339, "YYYY-MM-DD
    /// HH:MM:SS", "YYYY-MM-DD" and "MM/DD/YYYY" are always tried.
    #[serde(default)]
    pub date_formats: Vec<String>,
    /// Country of addresses without a country column (ISO code).
    #[serde(default)]
    pub default_country: Option<String>,
    pub columns: Columns,
}

fn comma() -> char {
    ','
}
fn utc() -> String {
    "+00:00".into()
}

/// Column names in the file, per field. Required: order_number, created_at,
/// sku, quantity, unit_price.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Columns {
    pub order_number: String,
    pub created_at: String,
    pub sku: String,
    pub quantity: String,
    pub unit_price: String,
    pub updated_at: Option<String>,
    pub name: Option<String>,
    pub line_discount: Option<String>,
    pub line_tax: Option<String>,
    pub currency: Option<String>,
    pub status: Option<String>,
    pub customer_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub ship_name: Option<String>,
    pub company: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub shipping: Option<String>,
    pub shipping_method: Option<String>,
    pub note: Option<String>,
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub order_number: Option<String>,
    pub problems: Vec<String>,
}

/// The outcome of reading a file.
#[derive(Debug, Default)]
pub struct Prepared {
    pub orders: Vec<RawOrder>,
    pub rows: u64,
    pub bad: Vec<BadRow>,
    /// Orders left out because one of their rows is bad.
    pub skipped_orders: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    #[error("mapping {0}: {1}")]
    Mapping(String, String),
    #[error("{file}: {message}")]
    Csv { file: String, message: String },
}

impl Mapping {
    pub fn load(path: &Path) -> Result<Mapping, ImportError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ImportError::Read(path.display().to_string(), e))?;
        toml::from_str(&text)
            .map_err(|e| ImportError::Mapping(path.display().to_string(), e.to_string()))
    }
}

struct Dates {
    offset: UtcOffset,
    formats: Vec<OwnedFormatItem>,
}

impl Dates {
    fn new(m: &Mapping) -> Result<Dates, String> {
        let offset = UtcOffset::parse(
            &m.utc_offset,
            &time::format_description::parse_owned::<2>(
                "[offset_hour sign:mandatory]:[offset_minute]",
            )
            .map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("utc_offset `{}`: {e} (write it like -05:00)", m.utc_offset))?;
        let mut formats = Vec::new();
        for f in m.date_formats.iter().map(String::as_str).chain([
            "[year]-[month]-[day] [hour]:[minute]:[second]",
            "[year]-[month]-[day] [hour]:[minute]",
            "[year]-[month]-[day]",
            "[month]/[day]/[year] [hour]:[minute]:[second]",
            "[month]/[day]/[year] [hour]:[minute]",
            "[month]/[day]/[year]",
        ]) {
            formats.push(
                time::format_description::parse_owned::<2>(f)
                    .map_err(|e| format!("date format `{f}`: {e}"))?,
            );
        }
        Ok(Dates { offset, formats })
    }

    /// RFC 3339 text of a date cell.
    fn parse(&self, text: &str) -> Result<String, String> {
        let t = text.trim();
        if conveyor_processors::normalize::fields::timestamp("", t).is_ok() {
            return Ok(t.to_string());
        }
        for f in &self.formats {
            if let Ok(dt) = PrimitiveDateTime::parse(t, f) {
                return dt
                    .assume_offset(self.offset)
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|e| e.to_string());
            }
            if let Ok(d) = time::Date::parse(t, f) {
                return d
                    .midnight()
                    .assume_offset(self.offset)
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|e| e.to_string());
            }
        }
        Err(format!("`{t}` is not a date in any configured format"))
    }
}

/// Reads `bytes` (the file `file_name`) with `mapping` into raw orders of
/// `source` (the channel name analysts see, e.g. "tcgplayer").
pub fn prepare(
    bytes: &[u8],
    file_name: &str,
    source: &str,
    mapping: &Mapping,
    received_at: i64,
    skip_bad_orders: bool,
) -> Result<Prepared, ImportError> {
    let csv_err = |message: String| ImportError::Csv {
        file: file_name.to_string(),
        message,
    };
    let dates = Dates::new(mapping).map_err(|e| ImportError::Mapping(file_name.into(), e))?;
    let delimiter = u8::try_from(mapping.delimiter).map_err(|_| {
        ImportError::Mapping(
            file_name.into(),
            "delimiter must be one ASCII character".into(),
        )
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| csv_err(format!("no header row: {e}")))?
        .clone();
    let index: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim(), i))
        .collect();
    let c = &mapping.columns;
    let col = |field: &str, name: &Option<String>| -> Result<Option<usize>, ImportError> {
        match name {
            None => Ok(None),
            Some(n) => index.get(n.as_str()).copied().map(Some).ok_or_else(|| {
                ImportError::Mapping(
                    file_name.into(),
                    format!(
                        "column `{n}` (for {field}) is not in the file's header: {}",
                        headers.iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            }),
        }
    };
    let req = |field: &str, name: &String| {
        Some(name.clone()).filter(|n| !n.is_empty()).ok_or_else(|| {
            ImportError::Mapping(file_name.into(), format!("columns.{field} is required"))
        })
    };
    let cols = ColumnIdx {
        order_number: col("order_number", &Some(req("order_number", &c.order_number)?))?
            .unwrap_or(0),
        created_at: col("created_at", &Some(req("created_at", &c.created_at)?))?.unwrap_or(0),
        sku: col("sku", &Some(req("sku", &c.sku)?))?.unwrap_or(0),
        quantity: col("quantity", &Some(req("quantity", &c.quantity)?))?.unwrap_or(0),
        unit_price: col("unit_price", &Some(req("unit_price", &c.unit_price)?))?.unwrap_or(0),
        optional: [
            ("updated_at", &c.updated_at),
            ("name", &c.name),
            ("line_discount", &c.line_discount),
            ("line_tax", &c.line_tax),
            ("currency", &c.currency),
            ("status", &c.status),
            ("customer_name", &c.customer_name),
            ("email", &c.email),
            ("phone", &c.phone),
            ("ship_name", &c.ship_name),
            ("company", &c.company),
            ("line1", &c.line1),
            ("line2", &c.line2),
            ("city", &c.city),
            ("region", &c.region),
            ("postal_code", &c.postal_code),
            ("country", &c.country),
            ("shipping", &c.shipping),
            ("shipping_method", &c.shipping_method),
            ("note", &c.note),
        ]
        .into_iter()
        .map(|(f, n)| Ok((f, col(f, n)?)))
        .collect::<Result<Vec<_>, ImportError>>()?
        .into_iter()
        .filter_map(|(f, i)| i.map(|i| (f, i)))
        .collect(),
    };

    let file_hash: String = Sha256::digest(bytes)
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut groups: Vec<(String, Vec<Row>)> = Vec::new();
    let mut by_number: HashMap<String, usize> = HashMap::new();
    let mut out = Prepared::default();
    let mut record = csv::StringRecord::new();
    let mut prev: Option<(u64, u64)> = None; // (line, byte start)
    let mut pending: Option<(u64, u64, csv::StringRecord)> = None;
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|e| csv_err(format!("unreadable CSV: {e}")))?;
        let here = reader.position().byte();
        if let Some((line, start, rec)) = pending.take() {
            let text =
                String::from_utf8_lossy(&bytes[start as usize..(here as usize).min(bytes.len())])
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
            out.rows += 1;
            let row = map_row(&rec, &cols, &dates, mapping, line, text);
            let number = row.number.clone();
            match &number {
                Some(n) => {
                    let at = *by_number.entry(n.clone()).or_insert_with(|| {
                        groups.push((n.clone(), Vec::new()));
                        groups.len() - 1
                    });
                    groups[at].1.push(row);
                }
                None => out.bad.push(BadRow {
                    line,
                    order_number: None,
                    problems: row.problems,
                }),
            }
        }
        if !more {
            break;
        }
        let pos = record.position().cloned();
        let (line, start) = pos
            .map(|p| (p.line(), p.byte()))
            .unwrap_or(prev.unwrap_or((0, 0)));
        prev = Some((line, start));
        pending = Some((line, start, record.clone()));
    }

    for (number, rows) in groups {
        let mut problems: Vec<BadRow> = rows
            .iter()
            .filter(|r| !r.problems.is_empty())
            .map(|r| BadRow {
                line: r.line,
                order_number: Some(number.clone()),
                problems: r.problems.clone(),
            })
            .collect();
        // Order-level fields must agree across an order's rows.
        for field in ORDER_FIELDS {
            let values: Vec<&str> = rows
                .iter()
                .filter_map(|r| r.get(field))
                .filter(|v| !v.is_empty())
                .collect();
            if values.windows(2).any(|w| w[0] != w[1]) {
                problems.push(BadRow {
                    line: rows.last().map_or(0, |r| r.line),
                    order_number: Some(number.clone()),
                    problems: vec![format!(
                        "rows of order {number} disagree on {field}: {}",
                        values.join(" / ")
                    )],
                });
            }
        }
        if !problems.is_empty() {
            out.bad.extend(problems);
            out.skipped_orders.push(number);
            continue;
        }
        out.orders.push(raw_order(
            &number,
            &rows,
            source,
            file_name,
            &file_hash,
            mapping,
            received_at,
        ));
    }
    out.bad.sort_by_key(|b| b.line);
    if !out.bad.is_empty() && !skip_bad_orders {
        out.orders.clear();
    }
    Ok(out)
}

const ORDER_FIELDS: &[&str] = &[
    "created_at",
    "updated_at",
    "currency",
    "status",
    "customer_name",
    "email",
    "phone",
    "ship_name",
    "company",
    "line1",
    "line2",
    "city",
    "region",
    "postal_code",
    "country",
    "shipping",
    "shipping_method",
    "note",
];

struct ColumnIdx {
    order_number: usize,
    created_at: usize,
    sku: usize,
    quantity: usize,
    unit_price: usize,
    optional: Vec<(&'static str, usize)>,
}

struct Row {
    line: u64,
    text: String,
    number: Option<String>,
    fields: BTreeMap<&'static str, String>,
    problems: Vec<String>,
}

impl Row {
    fn get(&self, f: &str) -> Option<&str> {
        self.fields.get(f).map(String::as_str)
    }
}

fn map_row(
    rec: &csv::StringRecord,
    c: &ColumnIdx,
    dates: &Dates,
    m: &Mapping,
    line: u64,
    text: String,
) -> Row {
    let cell = |i: usize| rec.get(i).map(str::trim).unwrap_or_default().to_string();
    let mut problems = Vec::new();
    let mut fields = BTreeMap::new();
    let number = Some(cell(c.order_number)).filter(|n| !n.is_empty());
    if number.is_none() {
        problems.push("order number is empty".to_string());
    }
    for (f, i) in &c.optional {
        fields.insert(*f, cell(*i));
    }
    match dates.parse(&cell(c.created_at)) {
        Ok(t) => {
            fields.insert("created_at", t);
        }
        Err(e) => problems.push(format!("created_at: {e}")),
    }
    if let Some(u) = fields.get("updated_at").cloned().filter(|u| !u.is_empty()) {
        match dates.parse(&u) {
            Ok(t) => {
                fields.insert("updated_at", t);
            }
            Err(e) => problems.push(format!("updated_at: {e}")),
        }
    }
    let sku = cell(c.sku);
    if sku.is_empty() {
        problems.push("sku is empty".into());
    }
    fields.insert("sku", sku);
    let qty = cell(c.quantity);
    match qty.parse::<i64>() {
        Ok(q) if q > 0 => {}
        Ok(q) => problems.push(format!("quantity {q} must be greater than 0")),
        Err(_) => problems.push(format!("quantity `{qty}` is not a whole number")),
    }
    fields.insert("quantity", qty);
    let currency = fields
        .get("currency")
        .filter(|c| !c.is_empty())
        .cloned()
        .or_else(|| m.currency.clone());
    match currency
        .as_deref()
        .map(|c| conveyor_processors::normalize::fields::currency("currency", c))
    {
        None => {
            problems.push("no currency: add a currency column or `currency` to the mapping".into())
        }
        Some(Err(e)) => problems.push(e.0),
        Some(Ok(cur)) => {
            fields.insert("currency", cur.to_string());
            for (f, v) in [
                ("unit_price", Some(cell(c.unit_price))),
                ("line_discount", fields.get("line_discount").cloned()),
                ("line_tax", fields.get("line_tax").cloned()),
                ("shipping", fields.get("shipping").cloned()),
            ] {
                let Some(v) = v.filter(|v| !v.is_empty()) else {
                    continue;
                };
                let cleaned = v.trim_start_matches('$').replace(',', "");
                match conveyor_processors::normalize::fields::money_str(f, &cleaned, cur) {
                    Ok(money) => {
                        fields.insert(f, money.amount.to_string());
                    }
                    Err(e) => problems.push(e.0),
                }
            }
        }
    }
    if fields.get("country").is_none_or(|c| c.is_empty()) {
        if let Some(d) = &m.default_country {
            fields.insert("country", d.clone());
        }
    }
    Row {
        line,
        text,
        number,
        fields,
        problems,
    }
}

fn raw_order(
    number: &str,
    rows: &[Row],
    source: &str,
    file: &str,
    file_hash: &str,
    _m: &Mapping,
    received_at: i64,
) -> RawOrder {
    let first = &rows[0];
    let f = |k: &str| first.get(k).filter(|v| !v.is_empty()).map(String::from);
    let created = f("created_at").unwrap_or_default();
    let doc = json!({
        "format": FORMAT,
        "source": source,
        "file": file,
        "order_number": number,
        "created_at": created,
        "updated_at": f("updated_at").unwrap_or_else(|| created.clone()),
        "currency": f("currency"),
        "status": f("status"),
        "customer": {"name": f("customer_name"), "email": f("email"), "phone": f("phone")},
        "ship_to": {
            "name": f("ship_name").or_else(|| f("customer_name")), "company": f("company"),
            "line1": f("line1"), "line2": f("line2"), "city": f("city"), "region": f("region"),
            "postal_code": f("postal_code"), "country": f("country"), "phone": f("phone"),
        },
        "shipping": f("shipping"),
        "shipping_method": f("shipping_method"),
        "note": f("note"),
        "lines": rows.iter().map(|r| json!({
            "line": r.line,
            "sku": r.get("sku"),
            "name": r.get("name"),
            "quantity": r.get("quantity").and_then(|q| q.parse::<i64>().ok()),
            "unit_price": r.get("unit_price"),
            "discount": r.get("line_discount").filter(|v| !v.is_empty()),
            "tax": r.get("line_tax").filter(|v| !v.is_empty()),
        })).collect::<Vec<Value>>(),
        "rows": rows.iter().map(|r| json!({"line": r.line, "text": r.text})).collect::<Vec<Value>>(),
    });
    let lines: Vec<String> = rows.iter().map(|r| r.line.to_string()).collect();
    RawOrder {
        event_id: format!("csv:{source}:{file_hash}:{number}"),
        channel: "csv".into(),
        external_order_id: format!("{source}:{number}"),
        external_order_number: Some(number.to_string()),
        source: RawSource::Import,
        topic_hint: Some(FORMAT.into()),
        received_at,
        content_type: "application/json".into(),
        payload: serde_json::to_vec(&doc).unwrap_or_default(),
        source_headers: BTreeMap::from([
            ("file".to_string(), file.to_string()),
            ("lines".to_string(), lines.join(",")),
            ("sha256".to_string(), file_hash.to_string()),
        ]),
    }
}

/// The bad-row report as text, one line per row.
pub fn render_report(bad: &[BadRow]) -> String {
    let mut s = String::new();
    for b in bad {
        s.push_str(&format!(
            "  line {:>5}{}: {}\n",
            b.line,
            b.order_number
                .as_deref()
                .map(|n| format!(" (order {n})"))
                .unwrap_or_default(),
            b.problems.join("; ")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const TCG_MAPPING: &str = r#"
currency = "USD"
utc_offset = "-05:00"
default_country = "US"
[columns]
order_number = "Order #"
created_at = "Order Date"
sku = "SKU"
name = "Product Name"
quantity = "Quantity"
unit_price = "Price"
ship_name = "Buyer Name"
line1 = "Address 1"
city = "City"
region = "State"
postal_code = "Zip"
shipping = "Shipping"
"#;

    pub const GOOD_AND_BAD: &str = "Order #,Order Date,Buyer Name,Address 1,City,State,Zip,SKU,Product Name,Quantity,Price,Shipping\n\
1001,11/20/2026 10:30,Ana Diaz,1 Elm St,Austin,TX,78701,DICE-CHX-7,Chessex Dice,2,$12.99,4.99\n\
1001,11/20/2026 10:30,Ana Diaz,1 Elm St,Austin,TX,78701,BINDER-9P,\"Binder, 9 pocket\",1,24.99,4.99\n\
1002,11/20/2026 11:00,Bo Li,2 Oak St,Portland,OR,97205,SLEEVE-DS-100,Sleeves,zero,10.99,4.99\n\
1003,not a date,Cy Ng,3 Pine St,Boston,MA,2134,DICE-CHX-7,Dice,1,12.99,0\n\
1004,11/21/2026,Di Ko,4 Ash St,Columbus,OH,43215,PKM-SV1-ETB,ETB,1,49.99,0\n";

    fn mapping() -> Mapping {
        toml::from_str(TCG_MAPPING).unwrap()
    }

    #[test]
    fn bad_rows_are_reported_with_lines_and_nothing_is_half_imported() {
        let p = prepare(
            GOOD_AND_BAD.as_bytes(),
            "x.csv",
            "tcgplayer",
            &mapping(),
            1,
            false,
        )
        .unwrap();
        assert_eq!(p.rows, 5);
        assert_eq!(p.bad.iter().map(|b| b.line).collect::<Vec<_>>(), [4, 5]);
        assert!(p.bad[0].problems[0].contains("quantity `zero`"));
        assert!(p.bad[1].problems[0].contains("created_at"));
        assert!(p.orders.is_empty(), "strict import publishes nothing");

        let p = prepare(
            GOOD_AND_BAD.as_bytes(),
            "x.csv",
            "tcgplayer",
            &mapping(),
            1,
            true,
        )
        .unwrap();
        assert_eq!(p.skipped_orders, ["1002", "1003"]);
        let ids: Vec<_> = p
            .orders
            .iter()
            .map(|o| o.external_order_id.as_str())
            .collect();
        assert_eq!(ids, ["tcgplayer:1001", "tcgplayer:1004"]);
        let doc: Value = serde_json::from_slice(&p.orders[0].payload).unwrap();
        assert_eq!(doc["lines"].as_array().unwrap().len(), 2);
        assert_eq!(doc["created_at"], "2026-11-20T10:30:00-05:00");
        assert_eq!(doc["lines"][0]["unit_price"], "12.99");
        assert_eq!(doc["rows"][1]["line"], 3);
        assert!(doc["rows"][1]["text"]
            .as_str()
            .unwrap()
            .contains("\"Binder, 9 pocket\""));
        assert_eq!(p.orders[0].source_headers["lines"], "2,3");
        // Same file, same ids: a re-import is a no-op downstream.
        let again = prepare(
            GOOD_AND_BAD.as_bytes(),
            "x.csv",
            "tcgplayer",
            &mapping(),
            2,
            true,
        )
        .unwrap();
        assert_eq!(again.orders[0].event_id, p.orders[0].event_id);
    }

    #[test]
    fn mapping_mistakes_name_the_column() {
        let mut m = mapping();
        m.columns.sku = "Item SKU".into();
        let e = prepare(GOOD_AND_BAD.as_bytes(), "x.csv", "t", &m, 1, false).unwrap_err();
        assert!(e.to_string().contains("column `Item SKU` (for sku)"));
    }

    #[test]
    fn rows_of_one_order_must_agree() {
        let csv = "Order #,Order Date,Buyer Name,Address 1,City,State,Zip,SKU,Product Name,Quantity,Price,Shipping\n\
1,2026-11-20,A,1 Elm,Austin,TX,78701,DICE-CHX-7,D,1,1.00,0\n\
1,2026-11-20,A,9 Other,Austin,TX,78701,DICE-CHX-7,D,1,1.00,0\n";
        let p = prepare(csv.as_bytes(), "x.csv", "t", &mapping(), 1, false).unwrap();
        assert!(p.bad[0].problems[0].contains("disagree on line1"));
    }
}
