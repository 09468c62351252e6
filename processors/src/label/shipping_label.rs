//! A 4 x 6 inch shipping label in the common carrier layout: service band,
//! ship-from, ship-to in large type, the tracking number as a Code 128
//! barcode with its digits, weight and reference. The carrier simulator
//! renders what it sells with this; real carriers send their own.

use super::api::ApiAddress;
use super::barcode;
use super::pdf::{self, fit, Page, Weight, FOUR_BY_SIX};

/// What a label shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelContent {
    pub carrier: String,
    pub service: String,
    pub tracking_number: String,
    pub from: ApiAddress,
    pub to: ApiAddress,
    /// e.g. `2.3 lb`.
    pub weight: String,
    /// The shipment id the merchant sent as metadata.
    pub reference: String,
}

const M: f32 = 12.0;

/// The label's PDF bytes (one page, reproducible).
pub fn render(c: &LabelContent) -> Vec<u8> {
    let (w, h) = FOUR_BY_SIX;
    let full = w - 2.0 * M - 8.0;
    let mut p = Page::new(FOUR_BY_SIX);
    p.frame(M / 2.0, M / 2.0, w - M, h - M, 1.2);
    // Service band: carrier, weight, service.
    let mut y = h - M - 24.0;
    p.text(M + 4.0, y, 20.0, Weight::Bold, &c.carrier.to_uppercase());
    p.text_right(w - M - 4.0, y, 10.0, Weight::Bold, &c.weight);
    y -= 15.0;
    let service = c.service.to_uppercase().replace('_', " ");
    p.text(
        M + 4.0,
        y,
        10.0,
        Weight::Bold,
        &fit(&service, full, 10.0, Weight::Bold),
    );
    y -= 8.0;
    p.rule(M / 2.0, y, w - M / 2.0, y, 1.2);
    // From.
    y -= 11.0;
    for l in address_lines(&c.from).iter().take(4) {
        p.text(
            M + 4.0,
            y,
            7.0,
            Weight::Regular,
            &fit(l, full, 7.0, Weight::Regular),
        );
        y -= 8.5;
    }
    // To.
    y -= 8.0;
    p.text(M + 4.0, y, 8.0, Weight::Bold, "SHIP TO:");
    y -= 16.0;
    for l in address_lines(&c.to).iter().take(6) {
        p.text(
            M + 24.0,
            y,
            12.0,
            Weight::Bold,
            &fit(l, full - 20.0, 12.0, Weight::Bold),
        );
        y -= 15.0;
    }
    y -= 4.0;
    p.rule(M / 2.0, y, w - M / 2.0, y, 1.2);
    // Routing: the destination ZIP in large type, for sorting by eye.
    y -= 34.0;
    p.text(M + 4.0, y, 28.0, Weight::Bold, &format!("ZIP {}", c.to.zip));
    y -= 12.0;
    p.rule(M / 2.0, y, w - M / 2.0, y, 1.2);
    // Tracking number: barcode and digits.
    y -= 14.0;
    let heading = format!("{} TRACKING #", c.carrier.to_uppercase());
    p.text(M + 4.0, y, 8.0, Weight::Bold, &heading);
    y -= 76.0;
    if let Some(width) = barcode::width(&c.tracking_number, 1.0) {
        let module = ((w - 2.0 * M) / width).min(1.6);
        let x = (w - width * module) / 2.0;
        barcode::draw(&mut p, &c.tracking_number, x, y, module, 68.0);
    }
    y -= 14.0;
    let digits = group(&c.tracking_number);
    let tw = pdf::width_of(&digits, 10.0, Weight::Bold);
    p.text((w - tw) / 2.0, y, 10.0, Weight::Bold, &digits);
    y -= 8.0;
    p.rule(M / 2.0, y, w - M / 2.0, y, 1.2);
    let reference = format!("Ref: {}", c.reference);
    p.text(
        M + 4.0,
        M + 6.0,
        6.5,
        Weight::Regular,
        &fit(&reference, full, 6.5, Weight::Regular),
    );
    pdf::finish(&format!("Label {}", c.tracking_number), vec![p])
}

fn address_lines(a: &ApiAddress) -> Vec<String> {
    let mut out = vec![a.name.clone()];
    out.extend(a.company.clone());
    out.push(a.street1.clone());
    out.extend(a.street2.clone());
    out.push(
        format!("{} {} {}", a.city, a.state, a.zip)
            .trim()
            .to_string(),
    );
    out.into_iter().filter(|l| !l.trim().is_empty()).collect()
}

/// `9400111206213859446262` -> `9400 1112 0621 3859 4462 62`.
fn group(s: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A sample label (tests, `conveyor bench label`).
pub fn sample() -> LabelContent {
    let a = |name: &str, street: &str, city: &str, state: &str, zip: &str| ApiAddress {
        name: name.into(),
        company: None,
        street1: street.into(),
        street2: None,
        city: city.into(),
        state: state.into(),
        zip: zip.into(),
        country: "US".into(),
        phone: None,
    };
    LabelContent {
        carrier: "usps".into(),
        service: "ground_advantage".into(),
        tracking_number: "9400111206213859446262".into(),
        from: a("Card Corner - Edison, NJ", "", "Edison", "NJ", "08817"),
        to: a("Ada Lovelace", "1 Penn Plz", "New York", "NY", "10001"),
        weight: "1 lb".into(),
        reference: "shopify:1001/nj-edison/1".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_one_reproducible_page() {
        let a = render(&sample());
        assert_eq!(a, render(&sample()));
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(group("123456789"), "1234 5678 9");
    }
}
