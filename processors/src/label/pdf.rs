//! A small drawing surface over printpdf for the documents label renders
//! (packing slips, the simulator's shipping labels): text in the PDF
//! built-in Helvetica, filled rectangles and rules, pages in points from
//! the bottom-left corner, and byte-for-byte reproducible output.
//!
//! Reproducible: printpdf writes two random strings as the trailer `/ID`
//! (PDF 32000 §14.4 only asks that it identify the file). [`finish`]
//! replaces them, same length, with a hash of everything before the
//! trailer, so the same document renders to the same bytes and the same
//! SHA-256 on every run and machine (G2: a re-rendered document after a
//! crash is identical to the first).

use printpdf::{
    BuiltinFont, Color, Line, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem,
};
use sha2::{Digest, Sha256};

/// Points per millimetre.
pub const PT_PER_MM: f32 = 72.0 / 25.4;
/// A 4 x 6 inch page (thermal label printers), in points.
pub const FOUR_BY_SIX: (f32, f32) = (288.0, 432.0);

/// One page being drawn.
pub struct Page {
    width: f32,
    height: f32,
    ops: Vec<Op>,
}

/// Font weight of a text run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Regular,
    Bold,
}

impl Page {
    pub fn new((width, height): (f32, f32)) -> Page {
        Page {
            width,
            height,
            ops: Vec::new(),
        }
    }

    pub fn width(&self) -> f32 {
        self.width
    }

    pub fn height(&self) -> f32 {
        self.height
    }

    /// `text` with its baseline starting at (x, y).
    pub fn text(&mut self, x: f32, y: f32, size: f32, weight: Weight, text: &str) {
        let font = match weight {
            Weight::Regular => BuiltinFont::Helvetica,
            Weight::Bold => BuiltinFont::HelveticaBold,
        };
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::Builtin(font),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point { x: Pt(x), y: Pt(y) },
            },
            Op::ShowText {
                items: vec![TextItem::Text(printable(text))],
            },
            Op::EndTextSection,
        ]);
    }

    /// `text` right-aligned to end at x (approximate width, see [`width_of`]).
    pub fn text_right(&mut self, x: f32, y: f32, size: f32, weight: Weight, text: &str) {
        let w = width_of(text, size, weight);
        self.text(x - w, y, size, weight, text);
    }

    /// A filled black rectangle.
    pub fn fill(&mut self, x: f32, y: f32, width: f32, height: f32) {
        self.ops.push(Op::DrawRectangle {
            rectangle: Rect {
                x: Pt(x),
                y: Pt(y),
                width: Pt(width),
                height: Pt(height),
                mode: Some(PaintMode::Fill),
                winding_order: None,
            },
        });
    }

    /// A straight rule from (x1, y1) to (x2, y2).
    pub fn rule(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, thickness: f32) {
        let p = |x, y| LinePoint {
            p: Point { x: Pt(x), y: Pt(y) },
            bezier: false,
        };
        self.ops.extend([
            Op::SetOutlineThickness { pt: Pt(thickness) },
            Op::SetOutlineColor {
                col: Color::Rgb(Rgb::new(0.0, 0.0, 0.0, None)),
            },
            Op::DrawLine {
                line: Line {
                    points: vec![p(x1, y1), p(x2, y2)],
                    is_closed: false,
                },
            },
        ]);
    }

    /// A rectangle's outline.
    pub fn frame(&mut self, x: f32, y: f32, width: f32, height: f32, thickness: f32) {
        self.rule(x, y, x + width, y, thickness);
        self.rule(x + width, y, x + width, y + height, thickness);
        self.rule(x + width, y + height, x, y + height, thickness);
        self.rule(x, y + height, x, y, thickness);
    }

    fn into_pdf_page(self) -> PdfPage {
        PdfPage::new(
            Mm(self.width / PT_PER_MM),
            Mm(self.height / PT_PER_MM),
            self.ops,
        )
    }
}

/// Approximate width in points of `text` in Helvetica: the average glyph
/// is about half an em wide (bold a little more). Used to truncate and
/// right-align; conservative for digits and capitals.
pub fn width_of(text: &str, size: f32, weight: Weight) -> f32 {
    let em = match weight {
        Weight::Regular => 0.52,
        Weight::Bold => 0.57,
    };
    text.chars().count() as f32 * size * em
}

/// `text` cut to fit `width` points, with an ellipsis when cut.
pub fn fit(text: &str, width: f32, size: f32, weight: Weight) -> String {
    if width_of(text, size, weight) <= width {
        return text.to_string();
    }
    let keep = ((width / (size * 0.55)) as usize).saturating_sub(1);
    let mut s: String = text.chars().take(keep).collect();
    s.push_str("...");
    s
}

/// The built-in fonts speak WinAnsi (Latin-1 and a few more): anything
/// else prints as `?` rather than as garbage.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\t' || c == '\n' {
                ' '
            } else if (c as u32) < 0x20 || (c as u32) > 0xFF {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// The document's bytes, reproducible (see the module docs).
pub fn finish(title: &str, pages: Vec<Page>) -> Vec<u8> {
    let mut doc = PdfDocument::new(title);
    doc.with_pages(pages.into_iter().map(Page::into_pdf_page).collect());
    let mut warnings = Vec::new();
    let mut bytes = doc.save(&PdfSaveOptions::default(), &mut warnings);
    fix_trailer_id(&mut bytes);
    bytes
}

/// One PDF of `first` (a PDF, e.g. the carrier's label, taken as it is)
/// followed by `pages`: the combined label + packing slip, printed in one
/// job. Merged at the object level (lopdf), so nothing of the carrier's
/// PDF is re-interpreted.
pub fn append(first: &[u8], title: &str, pages: Vec<Page>) -> Result<Vec<u8>, String> {
    let second = finish(title, pages);
    let err = |e: lopdf::Error| format!("merge PDFs: {e}");
    let mut a = lopdf::Document::load_mem(first).map_err(err)?;
    let mut b = lopdf::Document::load_mem(&second).map_err(err)?;
    b.renumber_objects_with(a.max_id + 1);
    let root_a = a
        .catalog()
        .and_then(|c| c.get(b"Pages"))
        .and_then(lopdf::Object::as_reference)
        .map_err(err)?;
    let root_b = b
        .catalog()
        .and_then(|c| c.get(b"Pages"))
        .and_then(lopdf::Object::as_reference)
        .map_err(err)?;
    let catalog_b = b
        .trailer
        .get(b"Root")
        .and_then(lopdf::Object::as_reference)
        .map_err(err)?;
    let added: Vec<lopdf::ObjectId> = b.get_pages().into_values().collect();
    for id in &added {
        b.get_dictionary_mut(*id)
            .map_err(err)?
            .set("Parent", lopdf::Object::Reference(root_a));
    }
    for (id, object) in std::mem::take(&mut b.objects) {
        if id != root_b && id != catalog_b {
            a.objects.insert(id, object);
        }
    }
    let pages = a.get_dictionary_mut(root_a).map_err(err)?;
    let count = pages
        .get(b"Count")
        .and_then(lopdf::Object::as_i64)
        .unwrap_or(0);
    pages
        .get_mut(b"Kids")
        .and_then(lopdf::Object::as_array_mut)
        .map_err(err)?
        .extend(added.iter().map(|id| lopdf::Object::Reference(*id)));
    pages.set("Count", lopdf::Object::Integer(count + added.len() as i64));
    a.max_id = a.max_id.max(b.max_id);
    let mut out = Vec::new();
    a.save_to(&mut out)
        .map_err(|e| format!("write merged PDF: {e}"))?;
    fix_trailer_id(&mut out);
    Ok(out)
}

/// Replaces the contents of the two strings of the trailer's `/ID` array
/// with hex of a hash of the bytes before the trailer, keeping lengths.
fn fix_trailer_id(bytes: &mut [u8]) {
    let Some(at) = find_last(bytes, b"/ID") else {
        return;
    };
    let digest = Sha256::digest(&bytes[..at]);
    let hex: Vec<u8> = digest
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect();
    let mut i = at;
    let mut strings = 0;
    while i < bytes.len() && strings < 2 {
        let close = match bytes[i] {
            b'(' => Some(b')'),
            b'<' => Some(b'>'),
            _ => None,
        };
        if let Some(close) = close {
            let start = i + 1;
            let Some(len) = bytes[start..].iter().position(|&b| b == close) else {
                return;
            };
            // Hex digits are valid in both a literal and a hex string.
            for (k, b) in bytes[start..start + len].iter_mut().enumerate() {
                *b = hex[(k + strings * 7) % hex.len()];
            }
            strings += 1;
            i = start + len;
        }
        i += 1;
    }
}

fn find_last(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_document_gives_the_same_bytes() {
        let draw = || {
            let mut p = Page::new(FOUR_BY_SIX);
            p.text(20.0, 400.0, 12.0, Weight::Bold, "Hello, Zoë");
            p.fill(20.0, 300.0, 2.0, 40.0);
            p.rule(10.0, 10.0, 200.0, 10.0, 0.5);
            finish("t", vec![p])
        };
        let (a, b) = (draw(), draw());
        assert!(a.starts_with(b"%PDF-"));
        assert_eq!(a, b);
        assert!(find_last(&a, b"/ID").is_some());
    }

    #[test]
    fn long_text_is_cut_and_other_scripts_print_as_question_marks() {
        let s = fit(
            "Scarlet & Violet Elite Trainer Box (Pokemon Center)",
            100.0,
            9.0,
            Weight::Regular,
        );
        assert!(
            s.ends_with("...") && width_of(&s, 9.0, Weight::Regular) <= 110.0,
            "{s}"
        );
        assert_eq!(fit("short", 100.0, 9.0, Weight::Regular), "short");
        assert_eq!(printable("李 Zoë\tx"), "? Zoë x");
    }
}
