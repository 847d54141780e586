//! Names this process: which host and process applied a migration or holds
//! the schema lock.

use mongodb::bson::oid::ObjectId;

/// Who this process is, for records and the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// The host name, from the environment or the kernel.
    pub(crate) host: String,
    pub(crate) pid: u32,
    /// `host:pid:random`, unique across hosts, processes and managers:
    /// the random part tells two managers of one process apart.
    pub(crate) id: String,
}

impl Owner {
    /// A fresh identity for this process.
    pub(crate) fn new() -> Owner {
        let host = host_name();
        let pid = std::process::id();
        // An ObjectId mixes a per-process random value with a counter, so
        // its hex is unique without a random-number dependency.
        let id = format!("{host}:{pid}:{}", ObjectId::new().to_hex());
        Owner { host, pid, id }
    }

    /// `host:pid`, as stored in records' `applied_by`.
    pub(crate) fn process(&self) -> String {
        format!("{}:{}", self.host, self.pid)
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}
