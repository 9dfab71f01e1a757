//! `RiakClient::new`, which `archive_open` calls with the `riak_cluster`
//! option's strings (from ejabberd's configuration or the legacy
//! `clicktochat.conf`): node validation, no I/O.
#![no_main]

use clicktochat_core::riak::{RiakClient, RiakConfig, RiakError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let nodes: Vec<String> = String::from_utf8_lossy(data)
        .split('\n')
        .map(str::to_owned)
        .collect();
    match RiakClient::new(RiakConfig {
        nodes: nodes.clone(),
        ..RiakConfig::default()
    }) {
        Ok(_) => {
            for node in &nodes {
                let (host, port) = node.rsplit_once(':').expect("a node has a port");
                assert!(!host.is_empty(), "{node:?}");
                assert!(port.parse::<u16>().is_ok_and(|p| p != 0), "{node:?}");
            }
        }
        Err(RiakError::BadNode { node, .. }) => assert!(nodes.contains(&node)),
        Err(other) => panic!("{other:?}"),
    }
});
