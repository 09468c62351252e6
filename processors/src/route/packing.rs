//! Packing: which box a shipment's units go in, and what the parcel weighs.
//!
//! Every unit is taken as its catalog box (length x width x height, sides
//! sorted longest first so orientation does not matter). A box fits when
//! (1) the largest unit fits in it side by side, sorted longest first,
//! (2) the units' total volume is at most [`FILL`] of the box's volume
//! (room for dunnage and imperfect stacking), and (3) the units plus the
//! box's tare weigh at most its `max_weight_grams`. The packer picks the
//! smallest fitting box by volume (ties: by id), so the same lines and
//! boxes always give the same parcel.
//!
//! When no configured box fits, the parcel is a `custom` one: the units
//! stacked (longest length, widest width, heights summed), so rating sees
//! its real size and weight and a carrier's limits exclude it honestly
//! rather than it being rated as a box it cannot fit in.

use conveyor_runtime::routing::BoxConfig;
use conveyor_schemas::records::Parcel;

/// Share of a box's volume the units may fill.
pub const FILL: f64 = 0.8;
/// What a unit with no dimensions in the catalog is taken to measure (a
/// small padded envelope's content), in mm.
pub const DEFAULT_DIMS: [u32; 3] = [150, 100, 50];

/// One unit's size and weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Sides in mm, longest first.
    pub dims: [u32; 3],
    pub grams: u32,
}

impl Unit {
    pub fn new(l: u32, w: u32, h: u32, grams: u32) -> Unit {
        let mut dims = [l, w, h];
        dims.sort_unstable_by(|a, b| b.cmp(a));
        Unit { dims, grams }
    }

    fn volume(&self) -> f64 {
        self.dims.iter().map(|&d| f64::from(d)).product()
    }
}

fn sorted(b: &BoxConfig) -> [u32; 3] {
    let mut d = [b.length_mm, b.width_mm, b.height_mm];
    d.sort_unstable_by(|a, b| b.cmp(a));
    d
}

fn box_volume(b: &BoxConfig) -> f64 {
    f64::from(b.length_mm) * f64::from(b.width_mm) * f64::from(b.height_mm)
}

/// Packs `units` (one entry per unit, not per line) into the smallest box
/// of `boxes` that fits, or a custom parcel.
pub fn pack(units: &[Unit], boxes: &[BoxConfig]) -> Parcel {
    let grams: u64 = units.iter().map(|u| u64::from(u.grams)).sum();
    let volume: f64 = units.iter().map(Unit::volume).sum();
    let largest = units.iter().fold([0u32; 3], |m, u| {
        let mut d = [
            m[0].max(u.dims[0]),
            m[1].max(u.dims[1]),
            m[2].max(u.dims[2]),
        ];
        d.sort_unstable_by(|a, b| b.cmp(a));
        d
    });
    let best = boxes
        .iter()
        .filter(|b| {
            let inner = sorted(b);
            (0..3).all(|i| largest[i] <= inner[i])
                && volume <= box_volume(b) * FILL
                && grams + u64::from(b.tare_grams) <= u64::from(b.max_weight_grams)
        })
        .min_by(|a, b| {
            box_volume(a)
                .total_cmp(&box_volume(b))
                .then(a.id.cmp(&b.id))
        });
    match best {
        Some(b) => Parcel {
            box_type: b.id.clone(),
            weight_grams: clamp(grams + u64::from(b.tare_grams)),
            length_mm: clamp(u64::from(b.length_mm)),
            width_mm: clamp(u64::from(b.width_mm)),
            height_mm: clamp(u64::from(b.height_mm)),
        },
        None => {
            let height: u64 = units.iter().map(|u| u64::from(u.dims[2])).sum();
            Parcel {
                box_type: "custom".into(),
                weight_grams: clamp(grams),
                length_mm: clamp(u64::from(largest[0])),
                width_mm: clamp(u64::from(largest[1])),
                height_mm: clamp(height),
            }
        }
    }
}

fn clamp(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxes() -> Vec<BoxConfig> {
        conveyor_runtime::routing::sample().boxes
    }

    #[test]
    fn the_smallest_box_that_fits_by_size_volume_and_weight() {
        // One booster box (14 x 9 x 4 cm, 400 g): the mailer.
        let booster = Unit::new(140, 90, 40, 400);
        assert_eq!(pack(&[booster], &boxes()).box_type, "mailer-s");
        // Four of them: 2,016 cm3 > 80% of the mailer (1,472 cm3), fits box-s
        // (80% of 4,140 = 3,312 cm3).
        let p = pack(&[booster; 4], &boxes());
        assert_eq!((p.box_type.as_str(), p.weight_grams), ("box-s", 1600 + 120));
        // A long item decides by its longest side: 300 mm does not fit box-s.
        let poster = Unit::new(40, 300, 40, 200);
        assert_eq!(pack(&[poster], &boxes()).box_type, "box-m");
        // Heavy but small: 2,100 g is over the mailer's 2,000 g.
        let brick = Unit::new(100, 50, 30, 2100);
        assert_eq!(pack(&[brick], &boxes()).box_type, "box-s");
    }

    #[test]
    fn what_fits_nowhere_is_a_custom_stack_of_its_units() {
        let crate_ = Unit::new(900, 400, 300, 12_000);
        let p = pack(&[crate_, crate_], &boxes());
        assert_eq!(
            p,
            Parcel {
                box_type: "custom".into(),
                weight_grams: 24_000,
                length_mm: 900,
                width_mm: 400,
                height_mm: 600,
            }
        );
    }
}
