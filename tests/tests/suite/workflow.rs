//! The GitHub Actions workflow that runs the test suite against real
//! MongoDB servers (`.github/workflows/mongodb.yml`) has the shape it is
//! meant to have: it is triggered, its matrix covers MongoDB 6.0, 7.0 and
//! 8.0 both standalone and as a replica set, and it runs the README's test
//! command. Checked here because the workflow itself only runs on GitHub.

use saphyr::{LoadableYamlNode, Yaml};

const WORKFLOW: &str = include_str!("../../../.github/workflows/mongodb.yml");

/// The value under `key` of the mapping `node`, or a message saying where
/// it is missing.
fn get<'a, 'input>(node: &'a Yaml<'input>, key: &str, at: &str) -> &'a Yaml<'input> {
    node.as_mapping_get(key)
        .unwrap_or_else(|| panic!("mongodb.yml: `{at}` has no `{key}`"))
}

/// The strings of the sequence `node`; other scalars do not count, so an
/// unquoted `6.0`, which YAML reads as a number, is caught.
fn strings<'a>(node: &'a Yaml<'_>, at: &str) -> Vec<&'a str> {
    node.as_vec()
        .unwrap_or_else(|| panic!("mongodb.yml: `{at}` is not a list"))
        .iter()
        .map(|item| {
            item.as_str()
                .unwrap_or_else(|| panic!("mongodb.yml: `{at}` holds {item:?}, not a string"))
        })
        .collect()
}

fn workflow() -> Yaml<'static> {
    let mut documents = Yaml::load_from_str(WORKFLOW).expect("mongodb.yml is YAML");
    assert_eq!(documents.len(), 1, "mongodb.yml holds one document");
    documents.remove(0)
}

#[test]
fn the_workflow_is_triggered_by_pushes_and_pull_requests() {
    let workflow = workflow();
    // YAML 1.2 reads `on` as a string key; YAML 1.1 parsers would read true.
    let on = get(&workflow, "on", "the workflow");
    for trigger in ["push", "pull_request"] {
        assert!(on.contains_mapping_key(trigger), "mongodb.yml: no `on.{trigger}`");
    }
}

#[test]
fn a_job_runs_the_test_suite_on_every_version_and_topology() {
    let workflow = workflow();
    let jobs = get(&workflow, "jobs", "the workflow")
        .as_mapping()
        .expect("mongodb.yml: `jobs` is a mapping");
    let runs_tests = |job: &Yaml<'_>| {
        job.as_mapping_get("steps")
            .and_then(Yaml::as_vec)
            .is_some_and(|steps| {
                steps.iter().any(|step| {
                    step.as_mapping_get("run")
                        .and_then(Yaml::as_str)
                        .is_some_and(|run| run.contains("scripts/with-mongodb cargo test --workspace"))
                })
            })
    };
    let (name, job) = jobs
        .iter()
        .find(|(_, job)| runs_tests(job))
        .expect("mongodb.yml: no step runs `scripts/with-mongodb cargo test --workspace`");
    let name = name.as_str().unwrap_or("the test job");

    let matrix = get(get(job, "strategy", name), "matrix", "strategy");
    let versions = strings(get(matrix, "mongodb", "matrix"), "matrix.mongodb");
    for version in ["6.0", "7.0", "8.0"] {
        assert!(
            versions.contains(&version),
            "mongodb.yml: MongoDB {version} is not in {versions:?}"
        );
    }
    let topologies = strings(get(matrix, "topology", "matrix"), "matrix.topology");
    for topology in ["standalone", "replica-set"] {
        assert!(
            topologies.contains(&topology),
            "mongodb.yml: `{topology}` is not in {topologies:?}"
        );
    }

    // The replica set is started with `--replSet` and initiated, and the
    // tests are pointed at the server.
    let script: String = get(job, "steps", name)
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|step| step.as_mapping_get("run").and_then(Yaml::as_str))
        .collect::<Vec<_>>()
        .join("\n");
    for needed in [
        "--replSet rs0",
        "rs.initiate(",
        "MONGODB_URI=",
        "mongo:${{ matrix.mongodb }}",
    ] {
        assert!(script.contains(needed), "mongodb.yml: no step has `{needed}`");
    }
}
