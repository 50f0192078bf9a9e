//! Rows in ClickHouse's `RowBinary` format: each value little-endian in its stored type, strings
//! and arrays prefixed with their length as a LEB128 varint, `Nullable` with a null byte. The
//! cells were converted to the column's declared (logical) type on arrival; here they are written
//! as the type the server stores ([`super::types::physical`]).

use datafiles::ChType;

use crate::ingest::value::{Cell, nanos_per_unit};

fn varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Why a cell could not be written.
fn mismatch(cell: &Cell, ty: &ChType) -> String {
    format!("value {cell:?} does not fit stored type {ty}")
}

/// Appends `cell` (converted as `logical`) to `out`, written as `stored`.
pub fn write(out: &mut Vec<u8>, cell: &Cell, logical: &ChType, stored: &ChType) -> Result<(), String> {
    let logical = match logical {
        ChType::LowCardinality(inner) | ChType::SimpleAggregateFunction { ty: inner, .. } => inner,
        other => other,
    };
    let stored = match stored {
        ChType::LowCardinality(inner) | ChType::SimpleAggregateFunction { ty: inner, .. } => inner.as_ref(),
        other => other,
    };
    match (stored, cell) {
        (ChType::Nullable(inner), Cell::Null) => {
            let _ = inner;
            out.push(1);
            Ok(())
        }
        (ChType::Nullable(inner), c) => {
            out.push(0);
            let logical_inner = match logical {
                ChType::Nullable(l) => l.as_ref(),
                other => other,
            };
            write(out, c, logical_inner, inner)
        }
        (ChType::String, Cell::Str(s)) => {
            bytes(out, s.as_bytes());
            Ok(())
        }
        (ChType::String, Cell::Bytes(b)) => {
            bytes(out, b);
            Ok(())
        }
        (ChType::FixedString(n), Cell::Bytes(b)) => {
            let mut b = b.clone();
            b.resize(*n as usize, 0);
            out.extend_from_slice(&b);
            Ok(())
        }
        (ChType::FixedString(n), Cell::Str(s)) => {
            let mut b = s.as_bytes().to_vec();
            b.resize(*n as usize, 0);
            out.extend_from_slice(&b);
            Ok(())
        }
        (ChType::Int { bits, .. }, Cell::Int(v)) if *bits <= 64 => {
            out.extend_from_slice(&v.to_le_bytes()[..usize::from(*bits / 8)]);
            Ok(())
        }
        (ChType::Int { bits, .. }, Cell::UInt(v)) if *bits <= 64 => {
            out.extend_from_slice(&v.to_le_bytes()[..usize::from(*bits / 8)]);
            Ok(())
        }
        (ChType::Int { bits: 8, signed: false }, Cell::Bool(b)) => {
            out.push(u8::from(*b));
            Ok(())
        }
        (ChType::Int { bits: 128, .. }, Cell::Wide(v)) => {
            out.extend_from_slice(&v.to_le_bytes());
            Ok(())
        }
        (ChType::Int { bits: 256, signed }, Cell::Huge(text)) => {
            out.extend_from_slice(&wide256(text, *signed).ok_or_else(|| mismatch(cell, stored))?);
            Ok(())
        }
        (ChType::Float32, Cell::Float(f)) => {
            out.extend_from_slice(&(*f as f32).to_le_bytes());
            Ok(())
        }
        (ChType::Float64, Cell::Float(f)) => {
            out.extend_from_slice(&f.to_le_bytes());
            Ok(())
        }
        (ChType::Decimal { precision, .. }, Cell::Wide(v)) => {
            match precision {
                0..=9 => out.extend_from_slice(&(*v as i32).to_le_bytes()),
                10..=18 => out.extend_from_slice(&(*v as i64).to_le_bytes()),
                _ => out.extend_from_slice(&v.to_le_bytes()),
            }
            Ok(())
        }
        (ChType::Decimal { .. }, Cell::Huge(text)) => {
            out.extend_from_slice(&wide256(text, true).ok_or_else(|| mismatch(cell, stored))?);
            Ok(())
        }
        (ChType::Bool, Cell::Bool(b)) => {
            out.push(u8::from(*b));
            Ok(())
        }
        (ChType::Date, Cell::Days(d)) => {
            out.extend_from_slice(&(u16::try_from(*d).unwrap_or(if *d < 0 { 0 } else { u16::MAX })).to_le_bytes());
            Ok(())
        }
        (ChType::Date32, Cell::Days(d)) => {
            out.extend_from_slice(&d.to_le_bytes());
            Ok(())
        }
        (ChType::DateTime { .. }, Cell::Time(t)) => {
            let secs = match logical {
                ChType::DateTime64 { precision, .. } => t.div_euclid(1_000_000_000 / nanos_per_unit(*precision)),
                _ => *t,
            };
            out.extend_from_slice(&(u32::try_from(secs).unwrap_or(if secs < 0 { 0 } else { u32::MAX })).to_le_bytes());
            Ok(())
        }
        (ChType::DateTime64 { precision, .. }, Cell::Time(t)) => {
            // The cell counts Arrow units (s, ms, µs or ns); the server counts 10^-precision s.
            let unit_nanos = match logical {
                ChType::DateTime64 { precision: p, .. } => nanos_per_unit(*p),
                _ => 1_000_000_000,
            };
            let tick_nanos = 10i128.pow(9u32.saturating_sub(u32::from(*precision)));
            let ticks = i128::from(*t) * i128::from(unit_nanos) / tick_nanos;
            out.extend_from_slice(&(ticks as i64).to_le_bytes());
            Ok(())
        }
        (ChType::Uuid, Cell::Bytes(b)) if b.len() == 16 => {
            // Two UInt64s, the high half first, each little-endian.
            let mut hi = [0u8; 8];
            let mut lo = [0u8; 8];
            hi.copy_from_slice(&b[..8]);
            lo.copy_from_slice(&b[8..]);
            out.extend_from_slice(&u64::from_be_bytes(hi).to_le_bytes());
            out.extend_from_slice(&u64::from_be_bytes(lo).to_le_bytes());
            Ok(())
        }
        (ChType::Ipv4, Cell::UInt(v)) => {
            out.extend_from_slice(&(*v as u32).to_le_bytes());
            Ok(())
        }
        (ChType::Ipv6, Cell::Bytes(b)) if b.len() == 16 => {
            out.extend_from_slice(b);
            Ok(())
        }
        (ChType::Enum { bits, values }, Cell::Str(label)) => {
            let code =
                values.iter().find(|(l, _)| l == label).map(|(_, c)| *c).ok_or_else(|| mismatch(cell, stored))?;
            if *bits == 8 {
                out.push(code as i8 as u8);
            } else {
                out.extend_from_slice(&code.to_le_bytes());
            }
            Ok(())
        }
        (ChType::Array(inner), Cell::List(items)) => {
            varint(out, items.len() as u64);
            let logical_inner = match logical {
                ChType::Array(l) => l.as_ref(),
                other => other,
            };
            items.iter().try_for_each(|c| write(out, c, logical_inner, inner))
        }
        (ChType::Map(k, v), Cell::Map(pairs)) => {
            varint(out, pairs.len() as u64);
            let (lk, lv) = match logical {
                ChType::Map(lk, lv) => (lk.as_ref(), lv.as_ref()),
                _ => (k.as_ref(), v.as_ref()),
            };
            for (key, value) in pairs {
                write(out, key, lk, k)?;
                write(out, value, lv, v)?;
            }
            Ok(())
        }
        (ChType::Tuple(items), Cell::Tuple(cells)) if items.len() == cells.len() => {
            let logical_items: Vec<&ChType> = match logical {
                ChType::Tuple(l) => l.iter().map(|(_, t)| t).collect(),
                _ => items.iter().map(|(_, t)| t).collect(),
            };
            for ((cell, (_, t)), l) in cells.iter().zip(items).zip(logical_items) {
                write(out, cell, l, t)?;
            }
            Ok(())
        }
        _ => Err(mismatch(cell, stored)),
    }
}

/// A 256-bit integer from its decimal text, little-endian two's complement.
fn wide256(text: &str, signed: bool) -> Option<[u8; 32]> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(d) if signed => (true, d),
        Some(_) => return None,
        None => (false, text),
    };
    let mut limbs = [0u64; 4];
    for b in digits.bytes() {
        let digit = u64::from(b.checked_sub(b'0').filter(|d| *d < 10)?);
        let mut carry = u128::from(digit);
        for limb in &mut limbs {
            let v = u128::from(*limb) * 10 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry != 0 {
            return None;
        }
    }
    if negative {
        let mut carry = 1u128;
        for limb in &mut limbs {
            let v = u128::from(!*limb) + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
    }
    let mut out = [0u8; 32];
    for (i, limb) in limbs.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(cell: Cell, logical: &str, stored: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, &cell, &ChType::parse(logical).unwrap(), &ChType::parse(stored).unwrap()).unwrap();
        out
    }

    #[test]
    fn values_are_written_as_stored() {
        assert_eq!(enc(Cell::Str("ab".into()), "LowCardinality(String)", "LowCardinality(String)"), b"\x02ab");
        assert_eq!(enc(Cell::UInt(300), "UInt16", "UInt16"), [44, 1]);
        assert_eq!(enc(Cell::Int(-1), "Int32", "Int32"), [255; 4]);
        assert_eq!(enc(Cell::Null, "Nullable(String)", "Nullable(String)"), [1]);
        assert_eq!(enc(Cell::Str("x".into()), "Nullable(String)", "Nullable(String)"), [0, 1, b'x']);
        // 2026-11-01 10:00:01.250 as DateTime64(3) stored as DateTime: whole seconds.
        let ms = 1_793_527_201_250i64;
        assert_eq!(enc(Cell::Time(ms), "DateTime64(3)", "DateTime('UTC')"), (1_793_527_201u32).to_le_bytes());
        assert_eq!(enc(Cell::Time(ms), "DateTime64(3)", "DateTime64(6, 'UTC')"), (ms * 1000).to_le_bytes());
        assert_eq!(enc(Cell::Bool(true), "Bool", "UInt8"), [1]);
        let list = Cell::List(vec![Cell::Str("a".into()), Cell::Str("b".into())]);
        assert_eq!(enc(list, "Array(String)", "Array(String)"), b"\x02\x01a\x01b");
        assert_eq!(enc(Cell::Str("b".into()), "Enum8('a' = 1, 'b' = 2)", "Enum8('a' = 1, 'b' = 2)"), [2]);
        let mut long = Vec::new();
        varint(&mut long, 300);
        assert_eq!(long, [0xac, 0x02]);
    }

    #[test]
    fn wide_integers() {
        assert_eq!(wide256("1", false).unwrap()[0], 1);
        assert_eq!(wide256("-1", true).unwrap(), [0xff; 32]);
        assert!(wide256("-1", false).is_none());
    }
}
