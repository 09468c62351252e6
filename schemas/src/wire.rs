//! Avro binary encoding for conveyor's own record types, written out by
//! hand for speed: no schema walk, no name lookups, no intermediate values.
//!
//! It is used only when a record's writer schema is the type's own schema
//! (the hot path: the same binary wrote it). Records written with any other
//! version go through apache-avro's schema resolution instead. Tests check,
//! for every record type, that these bytes equal apache-avro's encoding and
//! that apache-avro's bytes decode to the same value, so the two paths
//! cannot drift apart.
//!
//! The encoding (Avro 1.11 spec): `int`/`long` are zig-zag varints; strings
//! and bytes are a long length then the bytes; unions are the branch index
//! then the value (every union here is `["null", T]`); arrays and maps are
//! blocks of `count, items...` ended by a 0 count (a negative count is
//! followed by the block's byte size); records are their fields in order;
//! enums are the symbol index.

use std::collections::BTreeMap;

/// Malformed input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(msg.into()))
}

/// A type with an Avro binary form.
pub trait AvroBinary: Sized {
    /// Appends the encoding; fails only for values the schema cannot hold.
    fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError>;
    fn read(input: &mut &[u8]) -> Result<Self, WireError>;
}

pub fn write_long(v: i64, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

pub fn read_long(input: &mut &[u8]) -> Result<i64, WireError> {
    // Fast path: one-byte varints (lengths, indexes, small numbers).
    if let Some((&b, rest)) = input.split_first() {
        if b < 0x80 {
            *input = rest;
            let z = u64::from(b);
            return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    let mut z: u64 = 0;
    let mut shift = 0;
    loop {
        let Some((&b, rest)) = input.split_first() else {
            return err("unexpected end of input in a varint");
        };
        *input = rest;
        if shift == 63 && b > 1 {
            return err("varint overflows 64 bits");
        }
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
        shift += 7;
        if shift > 63 {
            return err("varint longer than 10 bytes");
        }
    }
}

fn read_len(input: &mut &[u8], what: &str) -> Result<usize, WireError> {
    let n = read_long(input)?;
    let n = usize::try_from(n).map_err(|_| WireError(format!("negative {what} length {n}")))?;
    if n > input.len() {
        return err(format!("{what} of {n} bytes but only {} left", input.len()));
    }
    Ok(n)
}

pub fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    write_long(b.len() as i64, out);
    out.extend_from_slice(b);
}

pub fn read_bytes<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], WireError> {
    let n = read_len(input, "bytes")?;
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

impl AvroBinary for i64 {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        write_long(*self, out);
        Ok(())
    }
    fn read(input: &mut &[u8]) -> Result<Self, WireError> {
        read_long(input)
    }
}

impl AvroBinary for i32 {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        write_long(i64::from(*self), out);
        Ok(())
    }
    fn read(input: &mut &[u8]) -> Result<Self, WireError> {
        let v = read_long(input)?;
        i32::try_from(v).map_err(|_| WireError(format!("int out of range: {v}")))
    }
}

impl AvroBinary for bool {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        out.push(u8::from(*self));
        Ok(())
    }
    fn read(input: &mut &[u8]) -> Result<Self, WireError> {
        let Some((&b, rest)) = input.split_first() else {
            return err("unexpected end of input in a boolean");
        };
        *input = rest;
        match b {
            0 => Ok(false),
            1 => Ok(true),
            _ => err(format!("invalid boolean byte {b}")),
        }
    }
}

impl AvroBinary for String {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        write_bytes(self.as_bytes(), out);
        Ok(())
    }
    fn read(input: &mut &[u8]) -> Result<Self, WireError> {
        let b = read_bytes(input)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|e| WireError(format!("string is not UTF-8: {e}")))
    }
}

/// `["null", T]`.
impl<T: AvroBinary> AvroBinary for Option<T> {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        match self {
            None => {
                out.push(0);
                Ok(())
            }
            Some(v) => {
                out.push(2); // zig-zag of branch index 1
                v.write(out)
            }
        }
    }
    fn read(input: &mut &[u8]) -> Result<Self, WireError> {
        match read_long(input)? {
            0 => Ok(None),
            1 => T::read(input).map(Some),
            i => err(format!("union branch {i} does not exist in [\"null\", T]")),
        }
    }
}

/// The item count of the next block of an array or map (0 = the end).
fn next_block(input: &mut &[u8]) -> Result<usize, WireError> {
    let mut count = read_long(input)?;
    if count < 0 {
        count = count
            .checked_neg()
            .ok_or_else(|| WireError("invalid block count".into()))?;
        read_long(input)?; // block size in bytes, not needed
    }
    // Every item takes at least one byte: a count larger than what is left
    // is corrupt (and must not drive an allocation).
    if count as u64 > input.len() as u64 {
        return err(format!(
            "block of {count} items but only {} bytes left",
            input.len()
        ));
    }
    Ok(count as usize)
}

/// `{"type": "array"}`.
impl<T: AvroBinary> AvroBinary for Vec<T> {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        if !self.is_empty() {
            write_long(self.len() as i64, out);
            for v in self {
                v.write(out)?;
            }
        }
        out.push(0);
        Ok(())
    }
    fn read(input: &mut &[u8]) -> Result<Self, WireError> {
        let mut v = Vec::new();
        loop {
            let n = next_block(input)?;
            if n == 0 {
                return Ok(v);
            }
            // Bounded: a hostile count must not reserve count x size_of::<T>().
            v.reserve(n.min(64));
            for _ in 0..n {
                v.push(T::read(input)?);
            }
        }
    }
}

/// `{"type": "map", "values": "string"}`.
impl AvroBinary for BTreeMap<String, String> {
    fn write(&self, out: &mut Vec<u8>) -> Result<(), WireError> {
        if !self.is_empty() {
            write_long(self.len() as i64, out);
            for (k, v) in self {
                write_bytes(k.as_bytes(), out);
                write_bytes(v.as_bytes(), out);
            }
        }
        out.push(0);
        Ok(())
    }
    fn read(input: &mut &[u8]) -> Result<Self, WireError> {
        let mut m = BTreeMap::new();
        loop {
            let n = next_block(input)?;
            if n == 0 {
                return Ok(m);
            }
            for _ in 0..n {
                let k = String::read(input)?;
                let v = String::read(input)?;
                m.insert(k, v);
            }
        }
    }
}

/// Field adapters for `bytes` fields (a `Vec<u8>` is otherwise an array).
pub mod bytes {
    use super::*;
    pub fn write(v: &[u8], out: &mut Vec<u8>) -> Result<(), WireError> {
        write_bytes(v, out);
        Ok(())
    }
    pub fn read(input: &mut &[u8]) -> Result<Vec<u8>, WireError> {
        read_bytes(input).map(<[u8]>::to_vec)
    }
}

/// `["null", "bytes"]`.
pub mod bytes_opt {
    use super::*;
    pub fn write(v: &Option<Vec<u8>>, out: &mut Vec<u8>) -> Result<(), WireError> {
        match v {
            None => out.push(0),
            Some(b) => {
                out.push(2);
                write_bytes(b, out)
            }
        }
        Ok(())
    }
    pub fn read(input: &mut &[u8]) -> Result<Option<Vec<u8>>, WireError> {
        match read_long(input)? {
            0 => Ok(None),
            1 => read_bytes(input).map(|b| Some(b.to_vec())),
            i => err(format!(
                "union branch {i} does not exist in [\"null\", \"bytes\"]"
            )),
        }
    }
}

/// Implements [`AvroBinary`] for a record: its fields, in schema order.
/// `field as adapter` uses `wire::bytes` or `wire::bytes_opt`.
#[macro_export]
macro_rules! avro_record {
    ($t:ident { $($f:ident $(as $w:ident)?),* $(,)? }) => {
        impl $crate::wire::AvroBinary for $t {
            fn write(&self, out: &mut Vec<u8>) -> Result<(), $crate::wire::WireError> {
                $( $crate::avro_record!(@write out, self.$f $(, $w)?)?; )*
                Ok(())
            }
            fn read(input: &mut &[u8]) -> Result<Self, $crate::wire::WireError> {
                // Struct expression fields are evaluated in source order.
                Ok($t { $( $f: $crate::avro_record!(@read input $(, $w)?), )* })
            }
        }
    };
    (@write $out:ident, $v:expr) => { $crate::wire::AvroBinary::write(&$v, $out) };
    (@write $out:ident, $v:expr, $w:ident) => { $crate::wire::$w::write(&$v, $out) };
    (@read $in:ident) => { $crate::wire::AvroBinary::read($in)? };
    (@read $in:ident, $w:ident) => { $crate::wire::$w::read($in)? };
}

/// Implements [`AvroBinary`] for an enum: its symbols, in schema order.
#[macro_export]
macro_rules! avro_enum {
    ($t:ident { $($v:ident),* $(,)? }) => {
        impl $crate::wire::AvroBinary for $t {
            fn write(&self, out: &mut Vec<u8>) -> Result<(), $crate::wire::WireError> {
                // Fails to compile if the list misses a variant.
                match *self {
                    $($t::$v)|* => {}
                }
                const ALL: &[$t] = &[$($t::$v),*];
                let i = ALL.iter().position(|x| x == self).unwrap_or(0);
                $crate::wire::write_long(i as i64, out);
                Ok(())
            }
            fn read(input: &mut &[u8]) -> Result<Self, $crate::wire::WireError> {
                const ALL: &[$t] = &[$($t::$v),*];
                let i = $crate::wire::read_long(input)?;
                usize::try_from(i)
                    .ok()
                    .and_then(|i| ALL.get(i).copied())
                    .ok_or_else(|| $crate::wire::WireError(format!("{} has no symbol #{i}", stringify!($t))))
            }
        }
    };
}

pub use crate::{avro_enum, avro_record};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn longs_round_trip(v in any::<i64>()) {
            let mut out = Vec::new();
            write_long(v, &mut out);
            let mut input = out.as_slice();
            prop_assert_eq!(read_long(&mut input).unwrap(), v);
            prop_assert!(input.is_empty());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            use crate::records::*;
            let mut input = bytes.as_slice();
            let _ = <Vec<BTreeMap<String, String>>>::read(&mut input);
            let mut input = bytes.as_slice();
            let _ = <Option<Vec<i64>>>::read(&mut input);
            let mut input = bytes.as_slice();
            let _ = Money::read(&mut input);
            let mut input = bytes.as_slice();
            let _ = OrderEvent::read(&mut input);
            let mut input = bytes.as_slice();
            let _ = PlannedShipment::read(&mut input);
            let mut input = bytes.as_slice();
            let _ = DlqRecord::read(&mut input);
        }

        #[test]
        fn corrupted_orders_never_panic(i in 0u64..50, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut bytes = Vec::new();
            crate::samples::order_event(i, 0).write(&mut bytes).unwrap();
            for (at, v) in flips {
                let n = bytes.len();
                bytes[at % n] = v;
            }
            let _ = crate::records::OrderEvent::read(&mut bytes.as_slice());
        }
    }

    #[test]
    fn zigzag_matches_the_spec() {
        let enc = |v: i64| {
            let mut o = Vec::new();
            write_long(v, &mut o);
            o
        };
        assert_eq!(enc(0), [0]);
        assert_eq!(enc(-1), [1]);
        assert_eq!(enc(1), [2]);
        assert_eq!(enc(-64), [0x7f]);
        assert_eq!(enc(64), [0x80, 0x01]);
    }

    #[test]
    fn truncated_and_hostile_input_is_an_error() {
        assert!(String::read(&mut &[0x0a, b'a'][..]).is_err());
        assert!(<Vec<i64>>::read(&mut &[0xfe, 0xff, 0xff, 0xff, 0x0f][..]).is_err());
        assert!(bool::read(&mut &[2][..]).is_err());
        assert!(<Option<i64>>::read(&mut &[4][..]).is_err());
        assert!(read_long(&mut &[0xff; 11][..]).is_err());
    }
}
