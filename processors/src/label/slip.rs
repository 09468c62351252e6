//! The packing slip: a 4 x 6 inch PDF (the label printer's stock, so the
//! combined label + slip prints in one job) with the merchant's name and
//! message, the order number and date, a Code 128 barcode of the order
//! number for the packing station's scanner, the ship-to address, and the
//! lines (SKU, name, bin location, quantity), then the gift message.
//!
//! Long orders flow onto further pages ("continued", page i of n); the
//! totals, gift message and merchant message always end the last page.
//! Rendering is a pure function of its input, and the bytes are
//! reproducible ([`super::pdf::finish`]).

use conveyor_schemas::records::Address;

use super::barcode;
use super::pdf::{self, fit, Page, Weight, FOUR_BY_SIX};

/// The merchant's branding on every slip (`[label]` in the config).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Branding {
    pub name: String,
    /// A line for the customer at the end of the slip.
    pub message: Option<String>,
}

/// One line of the slip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlipLine {
    pub sku: String,
    pub name: String,
    pub bin: Option<String>,
    pub quantity: i32,
}

/// What a slip shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slip {
    pub order_number: String,
    /// `YYYY-MM-DD`.
    pub order_date: String,
    pub shipment_id: String,
    /// `usps ground_advantage`, when known.
    pub service: Option<String>,
    pub ship_to: Address,
    pub lines: Vec<SlipLine>,
    pub gift_message: Option<String>,
}

const M: f32 = 14.0; // margin
const ROW: f32 = 12.0; // table row height
const FOOTER_Y: f32 = 14.0;
const TABLE_BOTTOM: f32 = 34.0; // rows stay above this
const TAIL: f32 = 74.0; // what the closing block needs below the last row

// Table columns: x of SKU, item, bin; qty right edge.
const C_SKU: f32 = M;
const C_ITEM: f32 = M + 78.0;
const C_BIN: f32 = M + 206.0;
const C_QTY: f32 = 288.0 - M;

/// The slip's bytes and page count.
pub fn render(brand: &Branding, slip: &Slip) -> (Vec<u8>, usize) {
    let pages = pages(brand, slip);
    let n = pages.len();
    (
        pdf::finish(&format!("Packing slip {}", slip.order_number), pages),
        n,
    )
}

/// The carrier's label followed by the slip: one PDF to print; its bytes
/// and page count.
pub fn combined(
    label_pdf: &[u8],
    brand: &Branding,
    slip: &Slip,
) -> Result<(Vec<u8>, usize), String> {
    let pages = pages(brand, slip);
    let n = pages.len() + 1;
    let title = format!("Label and packing slip {}", slip.order_number);
    Ok((pdf::append(label_pdf, &title, pages)?, n))
}

/// The slip's pages.
pub fn pages(brand: &Branding, slip: &Slip) -> Vec<Page> {
    let (w, h) = FOUR_BY_SIX;
    let mut pages = Vec::new();
    let mut page = Page::new(FOUR_BY_SIX);
    let mut y = first_page_header(&mut page, brand, slip, w, h);
    table_header(&mut page, y);
    y -= ROW + 2.0;
    for line in &slip.lines {
        if y < TABLE_BOTTOM {
            pages.push(page);
            page = Page::new(FOUR_BY_SIX);
            y = continued_header(&mut page, slip, h);
            table_header(&mut page, y);
            y -= ROW + 2.0;
        }
        row(&mut page, y, line);
        y -= ROW;
    }
    if y - TAIL < TABLE_BOTTOM - ROW {
        pages.push(page);
        page = Page::new(FOUR_BY_SIX);
        y = continued_header(&mut page, slip, h) - 4.0;
    }
    closing(&mut page, brand, slip, y, w);
    pages.push(page);
    let n = pages.len();
    for (i, p) in pages.iter_mut().enumerate() {
        p.text(
            M,
            FOOTER_Y,
            6.5,
            Weight::Regular,
            &fit(&slip.shipment_id, 180.0, 6.5, Weight::Regular),
        );
        p.text_right(
            w - M,
            FOOTER_Y,
            6.5,
            Weight::Regular,
            &format!("Page {} of {n}", i + 1),
        );
    }
    pages
}

fn first_page_header(p: &mut Page, brand: &Branding, slip: &Slip, w: f32, h: f32) -> f32 {
    let mut y = h - M - 10.0;
    p.text(
        M,
        y,
        13.0,
        Weight::Bold,
        &fit(&brand.name, 190.0, 13.0, Weight::Bold),
    );
    p.text_right(w - M, y + 2.0, 7.0, Weight::Bold, "PACKING SLIP");
    y -= 18.0;
    p.text(
        M,
        y,
        10.0,
        Weight::Bold,
        &fit(
            &format!("Order {}", slip.order_number),
            170.0,
            10.0,
            Weight::Bold,
        ),
    );
    p.text_right(w - M, y, 8.0, Weight::Regular, &slip.order_date);
    // The barcode, shrunk to the page width when the number is long.
    y -= 38.0;
    let avail = w - 2.0 * M;
    if let Some(width) = barcode::width(&slip.order_number, 1.0) {
        let module = (avail / width).min(1.4);
        barcode::draw(p, &slip.order_number, M, y, module, 30.0);
    }
    y -= 10.0;
    p.text(M + 10.0, y, 6.5, Weight::Regular, &slip.order_number);
    y -= 16.0;
    p.text(M, y, 7.0, Weight::Bold, "SHIP TO");
    if let Some(s) = &slip.service {
        p.text_right(
            w - M,
            y,
            7.0,
            Weight::Regular,
            &fit(s, 120.0, 7.0, Weight::Regular),
        );
    }
    let a = &slip.ship_to;
    let city = format!(
        "{}, {} {}",
        a.city,
        a.region.as_deref().unwrap_or(""),
        a.postal_code
    );
    let lines = [
        Some(a.name.as_str()),
        a.company.as_deref(),
        Some(a.line1.as_str()),
        a.line2.as_deref(),
        Some(city.as_str()),
        Some(a.country.as_str()),
    ];
    for l in lines.into_iter().flatten().filter(|l| !l.trim().is_empty()) {
        y -= 10.5;
        p.text(
            M,
            y,
            9.0,
            Weight::Regular,
            &fit(l, avail, 9.0, Weight::Regular),
        );
    }
    y - 18.0
}

fn continued_header(p: &mut Page, slip: &Slip, h: f32) -> f32 {
    let y = h - M - 10.0;
    p.text(
        M,
        y,
        10.0,
        Weight::Bold,
        &fit(
            &format!("Order {} (continued)", slip.order_number),
            250.0,
            10.0,
            Weight::Bold,
        ),
    );
    y - 22.0
}

fn table_header(p: &mut Page, y: f32) {
    p.text(C_SKU, y, 7.0, Weight::Bold, "SKU");
    p.text(C_ITEM, y, 7.0, Weight::Bold, "ITEM");
    p.text(C_BIN, y, 7.0, Weight::Bold, "BIN");
    p.text_right(C_QTY, y, 7.0, Weight::Bold, "QTY");
    p.rule(M, y - 3.5, 288.0 - M, y - 3.5, 0.6);
}

fn row(p: &mut Page, y: f32, l: &SlipLine) {
    p.text(
        C_SKU,
        y,
        7.5,
        Weight::Regular,
        &fit(&l.sku, C_ITEM - C_SKU - 4.0, 7.5, Weight::Regular),
    );
    p.text(
        C_ITEM,
        y,
        7.5,
        Weight::Regular,
        &fit(&l.name, C_BIN - C_ITEM - 4.0, 7.5, Weight::Regular),
    );
    p.text(
        C_BIN,
        y,
        7.5,
        Weight::Regular,
        &fit(l.bin.as_deref().unwrap_or("-"), 40.0, 7.5, Weight::Regular),
    );
    p.text_right(C_QTY, y, 8.0, Weight::Bold, &l.quantity.to_string());
}

fn closing(p: &mut Page, brand: &Branding, slip: &Slip, y: f32, w: f32) {
    let mut y = y + 4.0;
    p.rule(M, y, w - M, y, 0.6);
    y -= 11.0;
    let units: i64 = slip.lines.iter().map(|l| i64::from(l.quantity)).sum();
    p.text(
        M,
        y,
        8.0,
        Weight::Bold,
        &format!("{} lines, {units} units", slip.lines.len()),
    );
    if let Some(g) = slip
        .gift_message
        .as_deref()
        .filter(|g| !g.trim().is_empty())
    {
        y -= 14.0;
        p.text(M, y, 7.0, Weight::Bold, "GIFT MESSAGE");
        for l in wrap(g, w - 2.0 * M, 8.0).into_iter().take(3) {
            y -= 10.0;
            p.text(M, y, 8.0, Weight::Regular, &l);
        }
    }
    if let Some(m) = brand.message.as_deref().filter(|m| !m.trim().is_empty()) {
        y -= 13.0;
        for l in wrap(m, w - 2.0 * M, 7.5).into_iter().take(2) {
            p.text(M, y, 7.5, Weight::Regular, &l);
            y -= 9.5;
        }
    }
}

/// Greedy word wrap to `width` points.
fn wrap(text: &str, width: f32, size: f32) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if pdf::width_of(&candidate, size, Weight::Regular) > width && !line.is_empty() {
            out.push(std::mem::take(&mut line));
            line = word.to_string();
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        out.push(line);
    }
    out.into_iter()
        .map(|l| fit(&l, width, size, Weight::Regular))
        .collect()
}

/// A sample order of `lines` lines (tests, `conveyor bench label`).
pub fn sample(lines: usize) -> Slip {
    Slip {
        order_number: "#1001".into(),
        order_date: "2026-11-23".into(),
        shipment_id: "shopify:1001/nj-edison/1".into(),
        service: Some("usps ground_advantage".into()),
        ship_to: Address {
            name: "Ada Lovelace".into(),
            company: Some("Analytical Engines Ltd".into()),
            line1: "1 Penn Plz".into(),
            line2: Some("Suite 300".into()),
            city: "New York".into(),
            region: Some("NY".into()),
            postal_code: "10001".into(),
            country: "US".into(),
            phone: None,
        },
        lines: (0..lines)
            .map(|i| SlipLine {
                sku: format!("SKU-{i:04}"),
                name: format!("Item number {i} with a fairly long product name"),
                bin: Some(format!("A-{:02}-{}", i % 40, i % 4 + 1)),
                quantity: (i % 3 + 1) as i32,
            })
            .collect(),
        gift_message: Some(
            "Happy birthday! Enjoy the cards, and may every draw be a good one.".into(),
        ),
    }
}

/// A sample merchant (tests, `conveyor bench label`).
pub fn sample_brand() -> Branding {
    Branding {
        name: "Card Corner".into(),
        message: Some(
            "Thank you for shopping with us. Returns within 30 days: cardcorner.example/returns"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_orders_fit_one_page_long_ones_flow_on() {
        assert_eq!(render(&sample_brand(), &sample(3)).1, 1);
        // 17 rows fit the first page and 29 each further one; the last
        // page keeps room for the totals, gift message and merchant's
        // message: 40 lines take two pages, 46 three.
        assert_eq!(render(&sample_brand(), &sample(40)).1, 2);
        assert_eq!(render(&sample_brand(), &sample(46)).1, 3);
        assert!(render(&sample_brand(), &sample(400)).1 > 10);
    }

    #[test]
    fn rendering_is_reproducible() {
        let (a, _) = render(&sample_brand(), &sample(40));
        let (b, _) = render(&sample_brand(), &sample(40));
        assert_eq!(a, b);
        let mut other = sample(40);
        other.order_number = "#1002".into();
        assert_ne!(render(&sample_brand(), &other).0, a);
    }

    #[test]
    fn the_combined_pdf_is_the_label_then_the_slip() {
        let label = super::super::shipping_label::render(&super::super::shipping_label::sample());
        let (a, n) = combined(&label, &sample_brand(), &sample(40)).unwrap();
        assert_eq!(n, 3);
        assert_eq!(a, combined(&label, &sample_brand(), &sample(40)).unwrap().0);
        let parsed =
            printpdf::PdfDocument::parse(&a, &Default::default(), &mut Vec::new()).unwrap();
        assert_eq!(parsed.pages.len(), 3);
    }

    #[test]
    fn wrapping_keeps_words_whole() {
        let l = wrap(
            "one two three four five six seven eight nine ten",
            60.0,
            8.0,
        );
        assert!(l.len() > 2, "{l:?}");
        assert_eq!(
            l.join(" "),
            "one two three four five six seven eight nine ten"
        );
    }
}
