//! The forge deploy script (through `Deployment::deploy`, what `zkcohort chain up` and the demo
//! run) and the development parameters: the committed verifiers are built from them, so the
//! script refuses them on a chain that is not the local one (anvil `--chain-id 5` here) unless
//! `ZKCOHORT_ALLOW_DEV_PARAMS=1`, deploys them on 31337, and takes the deployer's key from its
//! environment, never from its command line.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use alloy::{
    primitives::{Address, B256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use zkcohort::chain::{Deployment, LocalNode, ANVIL_DEV_KEYS};

const ALLOW: &str = "ZKCOHORT_ALLOW_DEV_PARAMS";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A deployment file path of its own for this node (removed when dropped).
struct Out(PathBuf);

impl Out {
    fn new(node: &LocalNode, tag: &str) -> Self {
        let port = node.url.rsplit(':').next().unwrap();
        Out(root()
            .join("deployments")
            .join(format!("test-deploy-{tag}-{port}.json")))
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

async fn nonce(url: &str, who: Address) -> u64 {
    ProviderBuilder::new()
        .connect_http(url.parse().unwrap())
        .get_transaction_count(who)
        .await
        .unwrap()
}

/// Every manifest entry records its params; the committed ones are the dev params.
#[test]
fn the_committed_verifiers_record_their_params() {
    let dir = root().join("contracts/verifiers");
    let manifest: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&fs::read(dir.join("verifiers.json")).unwrap()).unwrap();
    assert!(!manifest.is_empty());
    for (name, entry) in &manifest {
        let params = &entry["params"];
        assert_eq!(params["kind"], "dev-insecure", "{name}: {entry}");
        let sha = params["sha256"].as_str().unwrap();
        assert!(sha.starts_with("0x") && sha.len() == 66, "{name}: {sha}");
        let k = params["k"].as_u64().unwrap();
        let circuit_id = entry["circuit_id"].as_str().unwrap();
        assert!(circuit_id.ends_with(&format!("-k{k}")), "{name}: k {k}");
        let source = fs::read_to_string(dir.join(format!("{name}.sol"))).unwrap();
        let line = source.lines().nth(2).unwrap();
        assert!(
            line.starts_with("// KZG params: dev-insecure")
                && line.contains(sha)
                && line.contains("INSECURE"),
            "{name}: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_param_verifiers_are_refused_off_the_local_chain_unless_allowed() {
    let root = root();
    let work = tempfile::tempdir().unwrap();
    let node = LocalNode::start_with_chain_id(&root, None, &work.path().join("anvil.log"), Some(5))
        .unwrap();
    let key: B256 = ANVIL_DEV_KEYS[0].parse().unwrap();
    let deployer = PrivateKeySigner::from_bytes(&key).unwrap().address();
    let out = Out::new(&node, "chain5");

    let err = Deployment::deploy_with_env(
        &root,
        &node.url,
        &key,
        &out.0,
        &[(ALLOW, None), ("MARKET_OWNER", None)],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("refusing to deploy verifiers built from INSECURE development KZG parameters")
            && err.contains("on chain 5")
            && err.contains("AggregateVerifierN48")
            && err.contains("ZKCOHORT_ALLOW_DEV_PARAMS=1"),
        "{err}"
    );
    assert!(!out.0.exists(), "no deployment written");
    assert_eq!(nonce(&node.url, deployer).await, 0, "nothing was broadcast");

    // Another value than 1 is no override.
    let err = Deployment::deploy_with_env(&root, &node.url, &key, &out.0, &[(ALLOW, Some("yes"))])
        .unwrap_err()
        .to_string();
    assert!(err.contains("development KZG parameters"), "{err}");
    assert_eq!(nonce(&node.url, deployer).await, 0);

    // Off the local chain the owner must be named, and not be the deploying key.
    for owner in [None, Some(deployer.to_string())] {
        let err = Deployment::deploy_with_env(
            &root,
            &node.url,
            &key,
            &out.0,
            &[(ALLOW, Some("1")), ("MARKET_OWNER", owner.as_deref())],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "the markets' owner must be set in MARKET_OWNER and differ from the deploying key"
            ),
            "{err}"
        );
        assert_eq!(nonce(&node.url, deployer).await, 0);
    }
    let multisig = Address::repeat_byte(0x5a);
    let d = Deployment::deploy_with_env(
        &root,
        &node.url,
        &key,
        &out.0,
        &[
            (ALLOW, Some("1")),
            ("MARKET_OWNER", Some(&multisig.to_string())),
        ],
    )
    .unwrap();
    assert_eq!(d.chain_id, 5);
    assert_eq!(d.owner, multisig, "the named owner, not the deployer");
    assert!(!d.verifiers.is_empty());
    assert!(nonce(&node.url, deployer).await > 0);
}

/// On the local chain the dev verifiers deploy (as `chain up` and the demo do), the owner is
/// the deployer unless `MARKET_OWNER` says otherwise, and the key is never on forge's command
/// line (`/proc/<pid>/cmdline` is world-readable, `environ` is not).
#[tokio::test(flavor = "multi_thread")]
async fn local_chain_deploys_with_the_key_in_the_environment_only() {
    let root = root();
    let work = tempfile::tempdir().unwrap();
    let node = LocalNode::start(&root, None, &work.path().join("anvil.log")).unwrap();
    let key: B256 = ANVIL_DEV_KEYS[0].parse().unwrap();
    let deployer = PrivateKeySigner::from_bytes(&key).unwrap().address();
    let out = Out::new(&node, "local");

    // Watch this process's children while forge runs.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        let secret = hex::encode(key);
        std::thread::spawn(move || {
            let (mut saw_forge, mut leaked) = (false, Vec::new());
            let me = std::process::id().to_string();
            while !done.load(Ordering::Relaxed) {
                for entry in fs::read_dir("/proc").unwrap().flatten() {
                    let dir = entry.path();
                    let parent = fs::read_to_string(dir.join("stat")).ok().and_then(|s| {
                        // pid (comm) state ppid ...
                        let after = s.rsplit_once(')')?.1.to_owned();
                        after.split_whitespace().nth(1).map(str::to_owned)
                    });
                    if parent.as_deref() != Some(me.as_str()) {
                        continue;
                    }
                    let Ok(cmdline) = fs::read(dir.join("cmdline")) else {
                        continue;
                    };
                    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    saw_forge |= cmdline.contains("script/Deploy.s.sol");
                    if cmdline.to_lowercase().contains(&secret) {
                        leaked.push(cmdline);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (saw_forge, leaked)
        })
    };
    let d = Deployment::deploy_with_env(
        &root,
        &node.url,
        &key,
        &out.0,
        &[(ALLOW, None), ("MARKET_OWNER", None)],
    );
    done.store(true, Ordering::Relaxed);
    let (saw_forge, leaked) = watcher.join().unwrap();
    let d = d.unwrap();
    assert!(saw_forge, "the watcher saw forge run");
    assert!(leaked.is_empty(), "the key on a command line: {leaked:?}");
    assert_eq!(d.chain_id, 31337);
    assert_eq!(d.owner, deployer, "the owner defaults to the deployer");

    let owner = PrivateKeySigner::random().address();
    let d = Deployment::deploy_with_env(
        &root,
        &node.url,
        &key,
        &out.0,
        &[(ALLOW, None), ("MARKET_OWNER", Some(&owner.to_string()))],
    )
    .unwrap();
    assert_eq!(d.owner, owner, "MARKET_OWNER names the owner");
}
