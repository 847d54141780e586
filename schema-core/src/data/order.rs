//! MongoDB's sort order of `_id` values, under the simple (binary)
//! collation, pure: how the walk checks that each batch came back in order.
//!
//! A server that returns a batch out of `_id` order (one that sorts some
//! values another way, or a collection whose default collation is not
//! binary) would make `_id > last` skip documents without a word. So every
//! batch's `_id`s must increase strictly, and start after the last one
//! done; where they do not, the walk stops instead of skipping.
//!
//! The order is the server's: first the type bracket (numbers, then
//! strings, then documents, binary data, ObjectIds, booleans, dates,
//! timestamps, then JavaScript code; see [`super::walk`]), then within it
//! numbers by value across their widths (`NaN` first), strings and code by
//! their UTF-8 bytes, documents field by field, binary data by length,
//! subtype and bytes, and the rest by value.

use std::cmp::Ordering;

use mongodb::bson::{Bson, Document};

use super::walk;
use crate::stored::checkpoint::bson_type;
use crate::support::convert;

/// Where a batch broke the order, without the values: the place in the
/// batch of the `_id` that came too late (counted from 1), and the BSON
/// types of the one before it (the last one done, at place 1) and of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OutOfOrder {
    pub(crate) place: usize,
    pub(crate) before: &'static str,
    pub(crate) after: &'static str,
}

/// Checks that `ids` increase strictly and all come after `last`. Pairs the
/// order cannot tell apart (a decimal128, or a type no `_id` has) pass.
pub(crate) fn check(last: Option<&Bson>, ids: &[Bson]) -> Result<(), OutOfOrder> {
    let mut previous = last;
    for (index, id) in ids.iter().enumerate() {
        if let Some(before) = previous
            && compare(before, id).is_some_and(|order| order != Ordering::Less)
        {
            return Err(OutOfOrder {
                place: index + 1,
                before: bson_type(before),
                after: bson_type(id),
            });
        }
        previous = Some(id);
    }
    Ok(())
}

/// How `a` sorts against `b` on the server, when this crate can tell.
pub(crate) fn compare(a: &Bson, b: &Bson) -> Option<Ordering> {
    let (bracket_a, bracket_b) = (walk::bracket(a)?, walk::bracket(b)?);
    if bracket_a != bracket_b {
        return Some(bracket_a.cmp(&bracket_b));
    }
    match (a, b) {
        (Bson::String(a) | Bson::Symbol(a), Bson::String(b) | Bson::Symbol(b)) => {
            Some(a.as_bytes().cmp(b.as_bytes()))
        }
        (Bson::Document(a), Bson::Document(b)) => compare_documents(a, b),
        (Bson::Binary(a), Bson::Binary(b)) => Some(
            a.bytes
                .len()
                .cmp(&b.bytes.len())
                .then_with(|| u8::from(a.subtype).cmp(&u8::from(b.subtype)))
                .then_with(|| a.bytes.cmp(&b.bytes)),
        ),
        (Bson::JavaScriptCode(a), Bson::JavaScriptCode(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Bson::ObjectId(a), Bson::ObjectId(b)) => Some(a.bytes().cmp(&b.bytes())),
        (Bson::Boolean(a), Bson::Boolean(b)) => Some(a.cmp(b)),
        (Bson::DateTime(a), Bson::DateTime(b)) => Some(a.timestamp_millis().cmp(&b.timestamp_millis())),
        (Bson::Timestamp(a), Bson::Timestamp(b)) => Some((a.time, a.increment).cmp(&(b.time, b.increment))),
        (Bson::MinKey, Bson::MinKey) | (Bson::MaxKey, Bson::MaxKey) => Some(Ordering::Equal),
        (Bson::Null | Bson::Undefined, Bson::Null | Bson::Undefined) => Some(Ordering::Equal),
        _ => compare_numbers(a, b),
    }
}

/// Documents compare field by field, in their order: each field's type
/// bracket, then its name, then its value; a document that is a prefix of
/// the other sorts first.
fn compare_documents(a: &Document, b: &Document) -> Option<Ordering> {
    for ((name_a, value_a), (name_b, value_b)) in a.iter().zip(b.iter()) {
        let order = walk::bracket(value_a)?
            .cmp(&walk::bracket(value_b)?)
            .then_with(|| name_a.as_bytes().cmp(name_b.as_bytes()));
        let order = match order {
            Ordering::Equal => compare(value_a, value_b)?,
            order => order,
        };
        if order != Ordering::Equal {
            return Some(order);
        }
    }
    Some(a.len().cmp(&b.len()))
}

/// A number as the server compares it: an integer exactly, a double as
/// itself (NaN below every other number).
enum Number {
    Integer(i64),
    Double(f64),
}

fn number(value: &Bson) -> Option<Number> {
    // Decimal128 has no arithmetic here: its order is not told.
    match convert::integer(value) {
        Some(n) => Some(Number::Integer(n)),
        None => value.as_f64().map(Number::Double),
    }
}

fn compare_numbers(a: &Bson, b: &Bson) -> Option<Ordering> {
    Some(match (number(a)?, number(b)?) {
        (Number::Integer(a), Number::Integer(b)) => a.cmp(&b),
        (Number::Double(a), Number::Double(b)) => compare_doubles(a, b),
        (Number::Integer(a), Number::Double(b)) => compare_integer_double(a, b),
        (Number::Double(a), Number::Integer(b)) => compare_integer_double(b, a).reverse(),
    })
}

fn compare_doubles(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// An integer against a double, exactly: no rounding of large integers.
fn compare_integer_double(integer: i64, double: f64) -> Ordering {
    if double.is_nan() {
        return Ordering::Greater;
    }
    // 2^63: every i64 is below it, and every i64 is at or above -2^63.
    const TWO_TO_63: f64 = 9_223_372_036_854_775_808.0;
    if double >= TWO_TO_63 {
        return Ordering::Less;
    }
    if double < -TWO_TO_63 {
        return Ordering::Greater;
    }
    let whole = double.trunc();
    // In range, so the conversion is exact.
    let whole_integer = whole as i64;
    integer.cmp(&whole_integer).then_with(|| {
        let fraction = double - whole;
        if fraction > 0.0 {
            Ordering::Less
        } else if fraction < 0.0 {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::oid::ObjectId;
    use mongodb::bson::spec::BinarySubtype;
    use mongodb::bson::{Binary, DateTime, Timestamp, doc};

    fn ints(values: &[i64]) -> Vec<Bson> {
        values.iter().map(|n| Bson::Int64(*n)).collect()
    }

    #[test]
    fn a_batch_in_order_after_the_last_passes() {
        assert_eq!(check(None, &ints(&[1, 2, 10, 100])), Ok(()));
        assert_eq!(check(Some(&Bson::Int32(0)), &ints(&[1, 2])), Ok(()));
        assert_eq!(check(None, &[]), Ok(()));
    }

    #[test]
    fn integers_sorted_as_text_are_out_of_order() {
        let as_text = ints(&[0, 1, 10, 100, 1000, 10000, 10001, 1001]);
        assert_eq!(
            check(None, &as_text),
            Err(OutOfOrder {
                place: 8,
                before: "long",
                after: "long"
            })
        );
    }

    #[test]
    fn a_batch_that_does_not_start_after_the_last_is_out_of_order() {
        let last = Bson::String("m".into());
        let ids = [Bson::String("a".into())];
        assert!(check(Some(&last), &ids).is_err());
        // Repeated: not strictly increasing.
        assert!(check(None, &ints(&[1, 1])).is_err());
    }

    #[test]
    fn numbers_compare_by_value_across_widths() {
        assert_eq!(compare(&Bson::Int32(2), &Bson::Double(2.5)), Some(Ordering::Less));
        assert_eq!(
            compare(&Bson::Double(3.0), &Bson::Int64(3)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare(&Bson::Double(f64::NAN), &Bson::Int32(-5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(&Bson::Int64(i64::MAX), &Bson::Double(9.3e18)),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(&Bson::Int64(-3), &Bson::Double(-2.5)),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn strings_compare_by_their_bytes_whatever_their_case() {
        // Binary order: upper case before lower case; a case-insensitive
        // collation would call these equal.
        assert_eq!(
            compare(&Bson::String("A".into()), &Bson::String("a".into())),
            Some(Ordering::Less)
        );
        assert_eq!(
            compare(&Bson::String("é".into()), &Bson::String("z".into())),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn brackets_come_first() {
        let order = [
            Bson::MinKey,
            Bson::Null,
            Bson::Int32(99),
            Bson::String("a".into()),
            Bson::Document(doc! { "a": 1 }),
            Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes: vec![1],
            }),
            Bson::ObjectId(ObjectId::new()),
            Bson::Boolean(false),
            Bson::DateTime(DateTime::from_millis(0)),
            Bson::Timestamp(Timestamp {
                time: 1,
                increment: 1,
            }),
            Bson::JavaScriptCode("f()".into()),
            Bson::MaxKey,
        ];
        assert_eq!(check(None, &order), Ok(()));
    }

    #[test]
    fn nan_is_the_first_number_and_only_once() {
        let numbers = [
            Bson::Double(f64::NAN),
            Bson::Double(f64::NEG_INFINITY),
            Bson::Int32(-5),
            Bson::Double(f64::INFINITY),
        ];
        assert_eq!(check(Some(&Bson::Null), &numbers), Ok(()));
        let out = check(Some(&Bson::Int32(1)), &[Bson::Double(f64::NAN)]).expect_err("NaN sorts first");
        assert_eq!(
            out,
            OutOfOrder {
                place: 1,
                before: "int",
                after: "double"
            }
        );
        assert!(check(Some(&Bson::Double(f64::NAN)), &[Bson::Double(f64::NAN)]).is_err());
    }

    #[test]
    fn code_compares_by_its_bytes() {
        let a = Bson::JavaScriptCode("a()".into());
        let b = Bson::JavaScriptCode("b()".into());
        assert_eq!(compare(&a, &b), Some(Ordering::Less));
        assert!(check(Some(&b), &[a]).is_err());
    }

    #[test]
    fn documents_compare_field_by_field() {
        let a = Bson::Document(doc! { "k": 1, "n": 2 });
        let b = Bson::Document(doc! { "k": 1, "n": 3 });
        let shorter = Bson::Document(doc! { "k": 1 });
        assert_eq!(compare(&a, &b), Some(Ordering::Less));
        assert_eq!(compare(&shorter, &a), Some(Ordering::Less));
        let by_name = Bson::Document(doc! { "a": 5 });
        assert_eq!(compare(&by_name, &shorter), Some(Ordering::Less));
    }

    #[test]
    fn what_cannot_be_compared_passes() {
        let decimal = Bson::Decimal128(mongodb::bson::Decimal128::from_bytes([0; 16]));
        assert_eq!(compare(&decimal, &Bson::Int32(1)), None);
        assert_eq!(check(None, &[Bson::Int32(5), decimal, Bson::Int32(1)]), Ok(()));
    }
}
