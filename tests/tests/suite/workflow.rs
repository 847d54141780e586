//! The GitHub Actions workflow that runs the test suite against real
//! MongoDB servers (`.github/workflows/mongodb.yml`) has the shape it is
//! meant to have: it is triggered, its matrix covers MongoDB 6.0, 7.0 and
//! 8.0 both standalone and as a replica set, plus a replica set of three
//! members and a sharded cluster, it declares each job's topology in
//! `SCHEMA_TESTS_TOPOLOGY` (so no test skips for want of a real server),
//! and every topology starts its servers and runs tests. Checked here
//! because the workflow itself only runs on GitHub. Also what its run
//! relies on: a server's refusal of `buildInfo` is a failure, not the
//! emulator's answer.

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

/// The job that runs the README's test command, and its name.
fn test_job<'a>(workflow: &'a Yaml<'static>) -> (&'a str, &'a Yaml<'static>) {
    let jobs = get(workflow, "jobs", "the workflow")
        .as_mapping()
        .expect("mongodb.yml: `jobs` is a mapping");
    let (name, job) = jobs
        .iter()
        .find(|(_, job)| {
            steps(job).iter().any(|step| {
                step.as_mapping_get("run")
                    .and_then(Yaml::as_str)
                    .is_some_and(|run| run.contains("scripts/with-mongodb cargo test --workspace"))
            })
        })
        .expect("mongodb.yml: no step runs `scripts/with-mongodb cargo test --workspace`");
    (name.as_str().unwrap_or("the test job"), job)
}

fn steps<'a>(job: &'a Yaml<'static>) -> &'a [Yaml<'static>] {
    job.as_mapping_get("steps")
        .and_then(Yaml::as_vec)
        .map_or(&[], Vec::as_slice)
}

/// Whether `step` runs in the job of `topology`: it has no `if`, or its
/// `if` names that topology.
fn runs_on(step: &Yaml<'_>, topology: &str) -> bool {
    step.as_mapping_get("if")
        .and_then(Yaml::as_str)
        .is_none_or(|condition| condition.contains(&format!("'{topology}'")))
}

/// The `run` of `step`, or "".
fn run<'a>(step: &'a Yaml<'_>) -> &'a str {
    step.as_mapping_get("run")
        .and_then(Yaml::as_str)
        .unwrap_or_default()
}

#[test]
fn a_sharded_cluster_and_three_members_run_on_some_versions_and_every_job_declares_its_topology() {
    use schema_tests::server::{TOPOLOGY_VARIABLE, Topology};

    let workflow = workflow();
    let (name, job) = test_job(&workflow);
    let matrix = get(get(job, "strategy", name), "matrix", "strategy");

    // The extra topologies, each on a version of the matrix.
    let versions = strings(get(matrix, "mongodb", "matrix"), "matrix.mongodb");
    let mut topologies: Vec<&str> = strings(get(matrix, "topology", "matrix"), "matrix.topology");
    let include = get(matrix, "include", "matrix")
        .as_vec()
        .expect("mongodb.yml: `matrix.include` is a list");
    for entry in include {
        let version = get(entry, "mongodb", "matrix.include")
            .as_str()
            .expect("mongodb.yml: an included version is a string");
        assert!(
            versions.contains(&version),
            "mongodb.yml: {version} is not in {versions:?}"
        );
        topologies.push(
            get(entry, "topology", "matrix.include")
                .as_str()
                .expect("mongodb.yml: an included topology is a string"),
        );
    }
    for needed in ["replica-set-3", "sharded"] {
        assert!(
            topologies.contains(&needed),
            "mongodb.yml: no `{needed}` job: {topologies:?}"
        );
    }
    assert!(
        include.len() <= 4,
        "mongodb.yml: keep the extra jobs few: {} included",
        include.len()
    );

    // Every job declares its topology, one the tests know.
    let env = get(job, "env", name);
    assert_eq!(
        get(env, TOPOLOGY_VARIABLE, "env").as_str(),
        Some("${{ matrix.topology }}"),
        "mongodb.yml: the job does not declare its topology in {TOPOLOGY_VARIABLE}"
    );
    for topology in &topologies {
        assert!(
            Topology::parse(topology).is_some(),
            "mongodb.yml: `{topology}` is no topology the tests know"
        );
    }

    // Every topology starts its servers and runs tests.
    for topology in &topologies {
        let ran = |what: &str| {
            steps(job)
                .iter()
                .any(|step| runs_on(step, topology) && run(step).contains(what))
        };
        assert!(
            ran("docker run"),
            "mongodb.yml: nothing starts the `{topology}` servers"
        );
        assert!(
            ran("scripts/with-mongodb cargo test"),
            "mongodb.yml: no step tests the `{topology}` job"
        );
    }

    // The sharded cluster: a config server replica set, a shard replica
    // set, a mongos, the shard added; its job runs the tests of a real
    // server and the one that applies through the mongos.
    let sharded: String = steps(job)
        .iter()
        .filter(|step| step.as_mapping_get("if").is_some() && runs_on(step, "sharded"))
        .map(run)
        .collect::<Vec<_>>()
        .join("\n");
    for needed in [
        "--configsvr",
        "--shardsvr",
        "mongos --configdb",
        "sh.addShard(",
        "real_server::",
        "background::over_a_mongos_",
    ] {
        assert!(
            sharded.contains(needed),
            "mongodb.yml: the sharded job has no `{needed}`"
        );
    }
    // Three members, each named in the set and the URI; the election
    // runs by itself after the rest.
    let three: String = steps(job)
        .iter()
        .filter(|step| step.as_mapping_get("if").is_some() && runs_on(step, "replica-set-3"))
        .map(run)
        .collect::<Vec<_>>()
        .join("\n");
    let election = "background::a_real_election_during_a_background_migration_is_ridden_out";
    for needed in [
        "127.0.0.1:27017,127.0.0.1:27018,127.0.0.1:27019/?replicaSet=rs0",
        "{ _id: 2, host: \"127.0.0.1:27019\" }",
        &format!("--skip {election}"),
        &format!("--exact {election}"),
    ] {
        assert!(
            three.contains(needed),
            "mongodb.yml: the three-member job has no `{needed}`"
        );
    }

    // The tests it names exist.
    let background = include_str!("background.rs");
    for test in [
        "fn a_real_election_during_a_background_migration_is_ridden_out(",
        "fn over_a_mongos_",
    ] {
        assert!(background.contains(test), "background.rs has no `{test}`");
    }
}

/// What the workflow's run relies on: a server that refuses `buildInfo`
/// (missing privileges, a server in trouble) is not taken for the
/// emulator, which would have every real-server test skip and pass.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_refuses_build_info_fails_the_test_instead_of_counting_as_the_emulator() {
    use schema_tests::proxy::{Fault, FaultProxy, Match, Rule};

    let db = schema_tests::fresh_database("refused_build_info").await;
    let proxy = FaultProxy::in_front_of(&schema_tests::uri()).await;
    let proxied = proxy.database(&db).await;
    let refusal = proxy.add(Rule::new(
        Match::command("buildInfo"),
        Fault::error(13, "Unauthorized", "not authorized on admin to execute command"),
    ));
    let asked = tokio::spawn(async move { schema_tests::server::kind(&proxied).await }).await;
    assert!(refusal.hits() >= 1, "the proxy refused buildInfo");
    let panic = asked.expect_err("no kind is made of a refusal").into_panic();
    let message = panic.downcast_ref::<String>().map_or("", String::as_str);
    assert!(message.contains("did not answer"), "{message}");
    assert!(message.contains("Unauthorized"), "{message}");
}
