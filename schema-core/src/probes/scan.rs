//! `collection_scan`: a backfill whose filter no index serves, read from
//! `explain`.
//!
//! `explain` of the walk's first read as the walk sends it (the filter,
//! the sort on `_id`, the batch's limit, the simple collation), at
//! `queryPlanner` verbosity (the plan only, nothing run), says which plan
//! the server would choose. A `COLLSCAN` stage anywhere in the winning
//! plan, or the whole `_id` index walked with the filter tested on each
//! document fetched, means no index serves the filter: the backfill reads
//! every document of the collection to find those it changes. The
//! finding's count is the collection's estimated size
//! (`estimatedDocumentCount`, from its metadata): the documents the walk
//! visits. Only the first read is explained: the later ones add
//! `_id > last`, whose range the planner may prefer to the filter's index
//! once the walk is under way.
//!
//! The plan is found where each server writes it: the classic engine's
//! `queryPlanner.winningPlan`, a tree of `inputStage` and `inputStages`;
//! the slot-based engine's (7.0 and later)
//! `queryPlanner.winningPlan.queryPlan`, the same tree; through a `mongos`,
//! each shard's `winningPlan` in `queryPlanner.winningPlan.shards`; and,
//! for a collection that is a view (a time series among them), the plan of
//! the pipeline's first stage, `stages[0].$cursor`, or each shard's in
//! `shards`. A reply with none of these shapes is inconclusive, never
//! clean.

use mongodb::bson::{Bson, Document, doc};

use super::Probe;
use crate::assess::preflight::{Code, Observed};

/// What `explain` says when its reply has no plan this crate can read.
const UNKNOWN_SHAPE: &str = "explain's reply has no winning plan this version knows";

/// Whether a backfill of `collection` over `filter` reads every document,
/// from the plan of its first read (`read`, the fields of its `find`).
pub(super) async fn probe(
    probe: &Probe,
    collection: &str,
    filter: &Document,
    read: &Document,
) -> Option<Observed> {
    let inconclusive =
        |reason: String| Observed::inconclusive(Code::CollectionScan, collection, None, reason);
    let message = if filter.is_empty() {
        // Every document is the backfill's: no index would spare a read.
        "it has no filter: it reads every one, whatever the indexes; run it when the load allows"
    } else {
        let mut find = doc! { "find": collection };
        find.extend(read.clone());
        let explain = doc! { "explain": find, "verbosity": "queryPlanner" };
        let reply = match probe.command(explain).await {
            Ok(reply) => reply,
            Err(reason) => return Some(inconclusive(format!("`explain` could not say: {reason}"))),
        };
        match scans(&reply) {
            None => return Some(inconclusive(UNKNOWN_SHAPE.to_owned())),
            Some(false) => return None,
            Some(true) => {
                "no index serves its filter, so it reads every one; add an index on the filter's \
                 fields first, or accept it"
            }
        }
    };
    match probe.estimated(collection).await {
        Ok(count) => Some(Observed::found(
            Code::CollectionScan,
            collection,
            None,
            count,
            format!("the backfill visits the {count} documents of `{collection}`: {message}"),
            Vec::new(),
        )),
        Err(reason) => Some(inconclusive(format!(
            "the backfill reads every document of the collection, and how many there are could \
             not be read: {reason}"
        ))),
    }
}

/// Whether the winning plan in `reply` (an `explain` of a `find`) scans
/// the collection; `None` when the reply has no plan of a known shape.
fn scans(reply: &Document) -> Option<bool> {
    if let Ok(planner) = reply.get_document("queryPlanner") {
        return plan(planner.get_document("winningPlan").ok()?);
    }
    // A view's pipeline: its first stage reads the collection.
    if let Ok(stages) = reply.get_array("stages") {
        let cursor = stages.first()?.as_document()?.get_document("$cursor").ok()?;
        return scans(cursor);
    }
    // A view's pipeline through a `mongos`: each shard's part.
    if let Ok(shards) = reply.get_document("shards") {
        return any(shards.values().map(|shard| scans(shard.as_document()?)));
    }
    None
}

/// Whether a winning plan scans the collection: a `mongos`'s (each
/// shard's), the slot-based engine's (its `queryPlan`) or the classic
/// engine's tree.
fn plan(winning: &Document) -> Option<bool> {
    if let Ok(shards) = winning.get_array("shards") {
        return any(shards.iter().map(|shard| {
            let shard = shard.as_document()?;
            plan(shard.get_document("winningPlan").ok()?)
        }));
    }
    if let Ok(query_plan) = winning.get_document("queryPlan") {
        return stage(query_plan);
    }
    stage(winning)
}

/// Whether `node` or any stage under it reads every document: a
/// `COLLSCAN`, or the `_id` index walked whole with the filter tested on
/// each document fetched (the walk's sort on `_id` makes that plan likely);
/// `None` when one has no stage name.
fn stage(node: &Document) -> Option<bool> {
    let name = node.get_str("stage").ok()?;
    if name == "COLLSCAN" {
        return Some(true);
    }
    if name == "FETCH" && node.contains_key("filter") && below_filters(node).is_some_and(walks_the_id_index) {
        return Some(true);
    }
    let mut children = Vec::new();
    for field in ["inputStage", "outerStage", "innerStage"] {
        match node.get(field) {
            Some(Bson::Document(child)) => children.push(child),
            Some(_) => return None,
            None => {}
        }
    }
    match node.get("inputStages") {
        Some(Bson::Array(inputs)) => {
            for input in inputs {
                children.push(input.as_document()?);
            }
        }
        Some(_) => return None,
        None => {}
    }
    if children.is_empty() {
        return Some(false);
    }
    any(children.into_iter().map(stage))
}

/// The stage under `node`, past a shard's filter of documents it does not
/// own (a `SHARDING_FILTER` may stand between a `FETCH` and its scan).
fn below_filters(node: &Document) -> Option<&Document> {
    let mut below = node.get_document("inputStage").ok()?;
    while below.get_str("stage") == Ok("SHARDING_FILTER") {
        below = below.get_document("inputStage").ok()?;
    }
    Some(below)
}

/// Whether `node` scans the whole `_id` index: its bounds, when the plan
/// shows them, from one end to the other (a filter that bounds `_id`
/// narrows them, and is served).
fn walks_the_id_index(node: &Document) -> bool {
    let over_id = node.get_str("indexName") == Ok("_id_")
        || node
            .get_document("keyPattern")
            .is_ok_and(|keys| keys.len() == 1 && keys.contains_key("_id"));
    let whole = match node
        .get_document("indexBounds")
        .ok()
        .and_then(|bounds| bounds.get_array("_id").ok())
    {
        Some(ranges) => {
            ranges.len() == 1 && matches!(ranges[0].as_str(), Some("[MinKey, MaxKey]" | "[MaxKey, MinKey]"))
        }
        None => true,
    };
    node.get_str("stage") == Ok("IXSCAN") && over_id && whole
}

/// True when one of `answers` is, false when all are false; `None` when
/// one could not be read, or there is none to read.
fn any(answers: impl Iterator<Item = Option<bool>>) -> Option<bool> {
    let mut scans = None;
    for answer in answers {
        scans = Some(scans.unwrap_or(false) | answer?);
    }
    scans
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parts of an explain reply every shape shares around its plan.
    fn reply(planner: Document) -> Document {
        doc! {
            "explainVersion": "1",
            "queryPlanner": planner,
            "command": { "find": "events", "filter": { "kind": "a" }, "$db": "app" },
            "serverInfo": { "host": "db1.example", "port": 27017, "version": "6.0.19" },
            "ok": 1.0,
        }
    }

    fn classic(winning: Document) -> Document {
        reply(doc! {
            "namespace": "app.events",
            "indexFilterSet": false,
            "parsedQuery": { "kind": { "$eq": "a" } },
            "queryHash": "0C2CA4E2",
            "planCacheKey": "5D7A9F6E",
            "maxIndexedOrSolutionsReached": false,
            "maxIndexedAndSolutionsReached": false,
            "maxScansToExplodeReached": false,
            "winningPlan": winning,
            "rejectedPlans": [],
        })
    }

    fn collscan() -> Document {
        doc! { "stage": "COLLSCAN", "filter": { "kind": { "$eq": "a" } }, "direction": "forward" }
    }

    fn fetch_ixscan() -> Document {
        doc! {
            "stage": "FETCH",
            "inputStage": {
                "stage": "IXSCAN",
                "keyPattern": { "kind": 1 },
                "indexName": "kind_1",
                "isMultiKey": false,
                "direction": "forward",
                "indexBounds": { "kind": ["[\"a\", \"a\"]"] },
            },
        }
    }

    /// As 7.0 and later answer when the slot-based engine runs the query.
    fn sbe(query_plan: Document) -> Document {
        let mut reply = reply(doc! {
            "namespace": "app.events",
            "parsedQuery": { "kind": { "$eq": "a" } },
            "winningPlan": {
                "queryPlan": query_plan,
                "slotBasedPlan": { "slots": "$$RESULT=s5", "stages": "[2] filter {...}\n[1] scan s5 s6" },
            },
            "rejectedPlans": [],
        });
        reply.insert("explainVersion", "2");
        reply
    }

    fn sharded_reply(plan: Document) -> Document {
        sharded(vec![plan])
    }

    /// As a `mongos` answers, one plan per shard.
    fn sharded(plans: Vec<Document>) -> Document {
        let shards: Vec<Document> = plans
            .into_iter()
            .enumerate()
            .map(|(n, winning)| {
                doc! {
                    "shardName": format!("shard{n}"),
                    "connectionString": format!("shard{n}/s{n}.example:27018"),
                    "serverInfo": { "host": format!("s{n}.example"), "port": 27018 },
                    "namespace": "app.events",
                    "winningPlan": winning,
                    "rejectedPlans": [],
                }
            })
            .collect();
        let stage = if shards.len() == 1 {
            "SINGLE_SHARD"
        } else {
            "SHARD_MERGE"
        };
        reply(doc! { "mongosPlannerVersion": 1, "winningPlan": { "stage": stage, "shards": shards } })
    }

    #[test]
    fn the_classic_engines_plan_scans_or_uses_an_index() {
        assert_eq!(scans(&classic(collscan())), Some(true));
        assert_eq!(scans(&classic(fetch_ixscan())), Some(false));
        let id_hack = doc! { "stage": "IDHACK" };
        assert_eq!(scans(&classic(id_hack)), Some(false));
    }

    #[test]
    fn the_id_index_walked_whole_with_the_filter_on_each_document_reads_every_one() {
        // The walk sorts on `_id`: the planner may walk `_id_` and test the
        // filter on each document it fetches, under a LIMIT.
        let by_id = doc! {
            "stage": "LIMIT",
            "limitAmount": 1000,
            "inputStage": {
                "stage": "FETCH",
                "filter": { "kind": { "$eq": "a" } },
                "inputStage": {
                    "stage": "IXSCAN",
                    "keyPattern": { "_id": 1 },
                    "indexName": "_id_",
                    "direction": "forward",
                    "indexBounds": { "_id": ["[MinKey, MaxKey]"] },
                },
            },
        };
        assert_eq!(scans(&classic(by_id.clone())), Some(true));
        assert_eq!(scans(&sbe(by_id)), Some(true));
        // The filter's own index, fetched and then sorted on `_id`: served.
        let served = doc! {
            "stage": "SORT",
            "sortPattern": { "_id": 1 },
            "inputStage": fetch_ixscan(),
        };
        assert_eq!(scans(&classic(served)), Some(false));
        // The `_id` index fetched without a filter to test: every document
        // is the walk's anyway, and no filter asks for another index.
        let mut unfiltered = fetch_ixscan();
        unfiltered.insert(
            "inputStage",
            doc! { "stage": "IXSCAN", "keyPattern": { "_id": 1 }, "indexName": "_id_" },
        );
        assert_eq!(scans(&classic(unfiltered)), Some(false));
        // A filter that bounds `_id` narrows the scan: served.
        let bounded = doc! {
            "stage": "FETCH",
            "filter": { "kind": { "$eq": "a" } },
            "inputStage": {
                "stage": "IXSCAN",
                "keyPattern": { "_id": 1 },
                "indexName": "_id_",
                "indexBounds": { "_id": ["[100, 200)"] },
            },
        };
        assert_eq!(scans(&classic(bounded)), Some(false));
        // On a shard, past the filter of the documents it does not own.
        let sharded = doc! {
            "stage": "FETCH",
            "filter": { "kind": { "$eq": "a" } },
            "inputStage": {
                "stage": "SHARDING_FILTER",
                "inputStage": {
                    "stage": "IXSCAN",
                    "keyPattern": { "_id": 1 },
                    "indexName": "_id_",
                    "indexBounds": { "_id": ["[MinKey, MaxKey]"] },
                },
            },
        };
        assert_eq!(scans(&sharded_reply(sharded)), Some(true));
    }

    #[test]
    fn a_collscan_deep_in_the_tree_is_found() {
        // `$or` over two branches, one served by an index and one not.
        let or = doc! {
            "stage": "SUBPLAN",
            "inputStage": {
                "stage": "FETCH",
                "inputStage": { "stage": "OR", "inputStages": [fetch_ixscan(), collscan()] },
            },
        };
        assert_eq!(scans(&classic(or)), Some(true));
        let both_served = doc! { "stage": "OR", "inputStages": [fetch_ixscan(), fetch_ixscan()] };
        assert_eq!(scans(&classic(both_served)), Some(false));
    }

    #[test]
    fn the_slot_based_engines_plan_is_read_from_its_query_plan() {
        let scan = doc! { "stage": "COLLSCAN", "planNodeId": 1, "filter": {}, "direction": "forward" };
        assert_eq!(scans(&sbe(scan)), Some(true));
        let mut ixscan = fetch_ixscan();
        ixscan.insert("planNodeId", 2);
        assert_eq!(scans(&sbe(ixscan)), Some(false));
    }

    #[test]
    fn through_a_mongos_any_shard_scanning_is_a_scan() {
        assert_eq!(scans(&sharded(vec![fetch_ixscan()])), Some(false));
        assert_eq!(scans(&sharded(vec![fetch_ixscan(), collscan()])), Some(true));
        let slot_based = doc! { "queryPlan": collscan(), "slotBasedPlan": { "stages": "..." } };
        assert_eq!(scans(&sharded(vec![fetch_ixscan(), slot_based])), Some(true));
    }

    #[test]
    fn a_views_pipeline_is_read_from_its_first_stage() {
        let view = doc! {
            "explainVersion": "1",
            "stages": [
                { "$cursor": { "queryPlanner": { "namespace": "app.events", "winningPlan": collscan(), "rejectedPlans": [] } } },
                { "$_internalUnpackBucket": { "timeField": "t", "bucketMaxSpanSeconds": 3600 } },
            ],
            "ok": 1.0,
        };
        assert_eq!(scans(&view), Some(true));
        let through_mongos = doc! {
            "mergeType": "mongos",
            "splitPipeline": Bson::Null,
            "shards": {
                "shard0": { "host": "s0.example:27018", "stages": [{ "$cursor": { "queryPlanner": { "winningPlan": fetch_ixscan() } } }] },
                "shard1": { "host": "s1.example:27018", "queryPlanner": { "winningPlan": { "queryPlan": fetch_ixscan() } } },
            },
            "ok": 1.0,
        };
        assert_eq!(scans(&through_mongos), Some(false));
    }

    #[test]
    fn a_reply_of_another_shape_is_unknown_never_clean() {
        // The shape of a server that keeps its plans as a list of steps.
        let listed = reply(doc! {
            "plannerVersion": 1,
            "namespace": "app.events",
            "winningPlan": [{ "detail": "SCAN events" }],
            "rejectedPlans": [],
        });
        assert_eq!(scans(&listed), None);
        assert_eq!(scans(&doc! { "ok": 1.0 }), None);
        assert_eq!(scans(&classic(doc! { "detail": "SCAN events" })), None);
        let bad_child = doc! { "stage": "FETCH", "inputStage": "IXSCAN" };
        assert_eq!(scans(&classic(bad_child)), None);
        let nameless_child = doc! { "stage": "FETCH", "inputStage": { "indexName": "kind_1" } };
        assert_eq!(scans(&classic(nameless_child)), None);
        assert_eq!(scans(&sharded(Vec::new())), None, "no shard answered");
        let no_stages = doc! { "stages": [], "ok": 1.0 };
        assert_eq!(scans(&no_stages), None);
    }
}
