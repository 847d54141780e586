//! Partial filters compared as the server compares them when it decides
//! whether two indexes are one: the same documents in the forms it holds
//! equal. Pure logic, no I/O.

use mongodb::bson::{Bson, Document};

use super::compare::same_value;

/// Whether two partial filters select the same documents in the forms the
/// server holds equal: `{a: 5}` as `{a: {$eq: 5}}`, several operators on
/// one field as one each, and a top-level `$and` as its clauses, in any
/// order. Filters equal only by logic the server does not apply either
/// (`$in` of one value, ranges that meet) stay different, as there.
pub(crate) fn same_filter(a: &Document, b: &Document) -> bool {
    let (mut a, mut b) = (clauses(a), clauses(b));
    a.sort_by_cached_key(|clause| clause.to_string());
    b.sort_by_cached_key(|clause| clause.to_string());
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(a, b)| same_value(&Bson::Document(a.clone()), &Bson::Document(b.clone())))
}

/// `filter` as one clause per field and operator: `{field: {$op: value}}`.
fn clauses(filter: &Document) -> Vec<Document> {
    let mut clauses = Vec::new();
    for (field, value) in filter {
        match (field.as_str(), value) {
            ("$and", Bson::Array(parts)) => {
                for part in parts {
                    match part {
                        Bson::Document(part) => clauses.extend(self::clauses(part)),
                        other => clauses.push(Document::from_iter([(field.clone(), other.clone())])),
                    }
                }
            }
            (top, _) if top.starts_with('$') => {
                clauses.push(Document::from_iter([(field.clone(), value.clone())]));
            }
            (_, Bson::Document(operators))
                if operators.keys().all(|op| op.starts_with('$')) && !operators.is_empty() =>
            {
                for (op, operand) in operators {
                    let operator = Document::from_iter([(op.clone(), operand.clone())]);
                    clauses.push(Document::from_iter([(field.clone(), Bson::Document(operator))]));
                }
            }
            _ => {
                let equal = Document::from_iter([("$eq".to_owned(), value.clone())]);
                clauses.push(Document::from_iter([(field.clone(), Bson::Document(equal))]));
            }
        }
    }
    clauses
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn partial_filters_are_the_same_in_the_forms_the_server_holds_equal() {
        let written = doc! { "a": { "$gt": 0, "$lt": 10 }, "b": "blah" };
        let reordered = doc! { "$and": [{ "b": "blah" }, { "a": { "$lt": 10 } }, { "a": { "$gt": 0 } }] };
        assert!(same_filter(&written, &reordered));
        assert!(same_filter(&doc! { "a": 5 }, &doc! { "a": { "$eq": 5 } }));
        assert!(same_filter(&doc! { "a": 5_i64 }, &doc! { "a": 5.0 }));
        assert!(!same_filter(&doc! { "a": 5 }, &doc! { "a": { "$gt": 5 } }));
        assert!(!same_filter(&written, &doc! { "a": { "$gt": 0 } }));
        // A document value is an equality on the whole document.
        assert!(!same_filter(&doc! { "a": { "b": 1 } }, &doc! { "a.b": 1 }));
    }
}
