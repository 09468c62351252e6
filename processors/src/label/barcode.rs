//! Code 128 barcodes drawn as bars on a [`Page`]. The symbol encoding
//! (code set B, check digit, stop pattern) is the `barcoders` crate's;
//! this module sizes it: each module is `module` points wide, with the
//! ten-module quiet zone on both sides that scanners need.

use barcoders::sym::code128::Code128;

use super::pdf::Page;

/// Quiet zone on each side, in modules.
pub const QUIET: usize = 10;

/// The modules (1 = bar, 0 = space) of `data` in Code 128 set B (ASCII
/// 32..=126), or None when `data` has a character set B cannot encode or
/// is shorter than the symbology allows.
pub fn modules(data: &str) -> Option<Vec<u8>> {
    if data.is_empty() || !data.chars().all(|c| (' '..='~').contains(&c)) {
        return None;
    }
    // `Ɓ` (U+0181) selects code set B in barcoders' input syntax.
    Code128::new(format!("\u{181}{data}"))
        .ok()
        .map(|c| c.encode())
}

/// Width in points of `data`'s barcode with its quiet zones.
pub fn width(data: &str, module: f32) -> Option<f32> {
    modules(data).map(|m| (m.len() + 2 * QUIET) as f32 * module)
}

/// Draws `data`'s barcode with its lower-left corner (quiet zone
/// included) at (x, y); returns its width, or None (nothing drawn) when it
/// cannot be encoded.
pub fn draw(page: &mut Page, data: &str, x: f32, y: f32, module: f32, height: f32) -> Option<f32> {
    let m = modules(data)?;
    let mut i = 0;
    while i < m.len() {
        if m[i] == 1 {
            let run = m[i..].iter().take_while(|&&b| b == 1).count();
            page.fill(
                x + (QUIET + i) as f32 * module,
                y,
                run as f32 * module,
                height,
            );
            i += run;
        } else {
            i += 1;
        }
    }
    Some((m.len() + 2 * QUIET) as f32 * module)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes modules back to set-B text: the scan a reader would do.
    fn decode(m: &[u8]) -> String {
        // Each symbol is 11 modules; the stop is 13. Patterns by value.
        let widths = |s: &[u8]| -> Vec<usize> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < s.len() {
                let run = s[i..].iter().take_while(|&&b| b == s[i]).count();
                out.push(run);
                i += run;
            }
            out
        };
        // The Code 128 table (ISO/IEC 15417), values 0..=106 as bar/space widths.
        const T: [&str; 107] = [
            "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312",
            "132212", "221213", "221312", "231212", "112232", "122132", "122231", "113222",
            "123122", "123221", "223211", "221132", "221231", "213212", "223112", "312131",
            "311222", "321122", "321221", "312212", "322112", "322211", "212123", "212321",
            "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
            "231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121",
            "313121", "211331", "231131", "213113", "213311", "213131", "311123", "311321",
            "331121", "312113", "312311", "332111", "314111", "221411", "431111", "111224",
            "111422", "121124", "121421", "141122", "141221", "112214", "112412", "122114",
            "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
            "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112",
            "421211", "212141", "214121", "412121", "111143", "111341", "131141", "114113",
            "114311", "411113", "411311", "113141", "114131", "311141", "411131", "211412",
            "211214", "211232", "2331112",
        ];
        let mut values = Vec::new();
        let mut i = 0;
        while i + 11 <= m.len() {
            let w: String = widths(&m[i..i + 11])
                .iter()
                .map(|n| n.to_string())
                .collect();
            match T.iter().position(|t| *t == w) {
                Some(v) => values.push(v),
                None => break,
            }
            i += 11;
        }
        assert_eq!(values[0], 104, "starts in set B");
        let (data, check) = values[1..].split_at(values.len() - 2);
        let sum: usize = 104
            + data
                .iter()
                .enumerate()
                .map(|(k, v)| (k + 1) * v)
                .sum::<usize>();
        assert_eq!(sum % 103, check[0], "check symbol");
        data.iter().map(|&v| (v as u8 + 32) as char).collect()
    }

    #[test]
    fn an_order_number_encodes_and_scans_back() {
        for s in ["#1001", "shopify:5500992641006", "TCG-50003"] {
            let m = modules(s).unwrap();
            assert_eq!(decode(&m), s);
        }
        assert!(modules("Zoë").is_none());
        assert!(modules("").is_none());
    }
}
