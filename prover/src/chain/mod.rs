//! The on-chain side: bindings to the registry and the two markets (alloy `sol!` over the ABIs
//! that forge exports to `prover/abi/`), deployment via the forge script, and a client per
//! role. Trial calls live in [`trials`]; proofs read back from transactions in [`calldata`].

mod calldata;
mod history;
mod trials;

pub use calldata::{
    decode_market_call, fold_artifact_of_claim, FoldClaimContext, MarketCall, TxArtifact,
    TxArtifactError,
};
pub use history::{FetchPolicy, HistoryReader};
pub use trials::{random_salt, trial_id_of, TrialStatus, TrialTerms};

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use alloy::{
    network::EthereumWallet,
    primitives::{keccak256, Address, Bytes, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder, RootProvider},
    rpc::types::{Filter, TransactionReceipt},
    signers::local::PrivateKeySigner,
    sol_types::{SolEvent, SolInterface},
};
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::{circuit::fast::record::FoldSchema, query::QueryConstants};
use crate::{
    commitment::fr_from_hex,
    dataset::CommitmentInfo,
    proof::Answer,
    query::{ClaimBinding, QuerySpec},
    Fr,
};

/// One module per contract: both markets' ABIs name the shared `IProofGated.Circuit` type,
/// which `sol!` turns into a module of that name in each.
#[allow(missing_docs, clippy::too_many_arguments)]
mod bindings {
    pub(super) mod query_market {
        alloy::sol!(
            #[sol(rpc)]
            #[derive(Debug)]
            QueryMarket,
            "abi/QueryMarket.json"
        );
    }
    pub(super) mod dataset_registry {
        alloy::sol!(
            #[sol(rpc)]
            #[derive(Debug)]
            DatasetRegistry,
            "abi/DatasetRegistry.json"
        );
    }
    pub(super) mod accreditation_registry {
        alloy::sol!(
            #[sol(rpc)]
            #[derive(Debug)]
            AccreditationRegistry,
            "abi/AccreditationRegistry.json"
        );
    }
    pub(super) mod trial_market {
        alloy::sol!(
            #[sol(rpc)]
            #[derive(Debug)]
            TrialMarket,
            "abi/TrialMarket.json"
        );
    }
    pub use accreditation_registry::AccreditationRegistry;
    pub use dataset_registry::{DatasetRegistry, IDatasetRegistryEvents};
    pub use query_market::{IQueryMarket, QueryMarket};
    pub use trial_market::{ITrialMarket, TrialMarket};
}

pub use bindings::{
    AccreditationRegistry, DatasetRegistry, IDatasetRegistryEvents, IQueryMarket, ITrialMarket,
    QueryMarket, TrialMarket,
};

/// Errors talking to a chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The RPC endpoint does not answer.
    #[error("cannot reach the RPC at {url}: {message}")]
    Unreachable {
        /// Endpoint.
        url: String,
        /// Cause.
        message: String,
    },
    /// A transaction or call reverted; `reason` is the decoded custom error when known.
    #[error("{action} reverted: {reason}")]
    Reverted {
        /// What was attempted.
        action: String,
        /// Decoded custom error, or the raw revert data.
        reason: String,
    },
    /// The sender cannot pay for the transaction.
    #[error("{action}: insufficient funds in {account} for gas and value")]
    InsufficientFunds {
        /// What was attempted.
        action: String,
        /// The sending account.
        account: Address,
    },
    /// Any other RPC failure.
    #[error("{action}: {message}")]
    Rpc {
        /// What was attempted.
        action: String,
        /// Cause.
        message: String,
    },
    /// The deployment file or the deploy script failed.
    #[error("deployment: {0}")]
    Deployment(String),
    /// Local input is unusable.
    #[error("{0}")]
    Input(String),
    /// A published spec document does not hash to the spec hash it was posted under (which the
    /// market checks, so the RPC served a forged log).
    #[error("the spec published for #{id} hashes to {actual}, not to its spec hash {expected}")]
    SpecMismatch {
        /// Query or trial id.
        id: U256,
        /// The posted spec hash.
        expected: B256,
        /// SHA-256 of the document served.
        actual: B256,
    },
    /// `openTrial` opened another id than the one derived from the sponsor's salt (the
    /// address is not a market that derives trial ids as [`trial_id_of`] does).
    #[error("the market at {market} opened trial {opened:#x}, not the id derived from the salt ({derived:#x})")]
    TrialIdMismatch {
        /// The market.
        market: Address,
        /// The id [`trial_id_of`] derives.
        derived: U256,
        /// The id in `TrialOpened`.
        opened: U256,
    },
}

/// Addresses written by `script/Deploy.s.sol`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Deployment {
    /// Chain id.
    pub chain_id: u64,
    /// DatasetRegistry.
    pub registry: Address,
    /// AccreditationRegistry.
    pub accreditations: Address,
    /// QueryMarket.
    pub market: Address,
    /// TrialMarket.
    pub trials: Address,
    /// Market owner.
    pub owner: Address,
    /// Verifier per circuit id.
    pub verifiers: BTreeMap<String, Address>,
}

impl Deployment {
    /// Where `claimant` claims query `query_id` of this deployment's market: what an aggregate
    /// proof for that claim is bound to.
    pub fn claim_binding(&self, query_id: u64, claimant: Address) -> ClaimBinding {
        ClaimBinding {
            chain_id: self.chain_id,
            market: self.market,
            query_id,
            claimant,
        }
    }

    /// Reads a deployment file.
    pub fn load(path: &Path) -> Result<Self, ChainError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ChainError::Deployment(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| ChainError::Deployment(format!("{}: {e}", path.display())))
    }

    /// Runs the forge deploy script against `rpc_url` from the repository at `root` and reads
    /// back the deployment it writes to `out`. The script inherits this process's environment
    /// (`MARKET_OWNER`, `ZKCOHORT_ALLOW_DEV_PARAMS`); see [`Deployment::deploy_with_env`].
    pub fn deploy(root: &Path, rpc_url: &str, key: &B256, out: &Path) -> Result<Self, ChainError> {
        Self::deploy_with_env(root, rpc_url, key, out, &[])
    }

    /// [`Deployment::deploy`] with environment overrides for the script: `(name, Some(value))`
    /// sets a variable, `(name, None)` removes an inherited one.
    ///
    /// The key reaches forge in its environment (`DEPLOYER_PRIVATE_KEY`), never on its
    /// command line, which every local process can read from `/proc`. The script refuses
    /// verifiers built from development params on any chain but 31337 unless
    /// `ZKCOHORT_ALLOW_DEV_PARAMS=1`.
    pub fn deploy_with_env(
        root: &Path,
        rpc_url: &str,
        key: &B256,
        out: &Path,
        env: &[(&str, Option<&str>)],
    ) -> Result<Self, ChainError> {
        let forge = foundry_tool(root, "forge");
        let mut cmd = deploy_command(&forge, root, rpc_url, key, out);
        for (name, value) in env {
            match value {
                Some(v) => cmd.env(name, v),
                None => cmd.env_remove(name),
            };
        }
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| {
                ChainError::Deployment(format!(
                    "cannot run {}: {e} (run `npm ci`)",
                    forge.display()
                ))
            })?;
        let limit = deploy_timeout();
        let (status, stdout, stderr) = wait_bounded(child, limit)
            .map_err(|e| ChainError::Deployment(format!("waiting for forge script: {e}")))?;
        match status {
            Some(status) if status.success() => Self::load(&root.join(out)),
            Some(_) => Err(ChainError::Deployment(format!(
                "forge script failed:\n{stdout}{stderr}"
            ))),
            None => Err(ChainError::Deployment(format!(
                "forge script did not finish within {} s (stopped; is the node at {rpc_url} \
                 mining? ZKCOHORT_DEPLOY_TIMEOUT sets the limit):\n{stdout}{stderr}",
                limit.as_secs()
            ))),
        }
    }
}

/// How long a deployment may take: `ZKCOHORT_DEPLOY_TIMEOUT` seconds, default 600 (a few
/// seconds on a local node; a public chain waits for blocks).
fn deploy_timeout() -> std::time::Duration {
    let secs = std::env::var("ZKCOHORT_DEPLOY_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    std::time::Duration::from_secs(secs)
}

/// Waits for `child` at most `limit`, reading its output meanwhile (so a full pipe cannot
/// stall it); kills it, with its process group (spawn it as a group leader), when time runs
/// out. Returns its status (`None`: killed) and output.
fn wait_bounded(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> std::io::Result<(Option<std::process::ExitStatus>, String, String)> {
    use std::io::Read;
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let mut bytes = Vec::new();
                let _ = p.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    }
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            // The whole process group: a child of forge holding the pipes would otherwise
            // keep the readers waiting.
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            child.kill().ok();
            child.wait()?;
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let join = |h: std::thread::JoinHandle<String>| h.join().unwrap_or_default();
    Ok((status, join(out), join(err)))
}

/// The forge command that runs the deploy script: the private key in the environment only.
/// `--slow` sends each transaction after the previous one is mined: anvil can leave a burst of
/// concurrently sent transactions queued behind a nonce it already has (seen in CI: nonce 6
/// "queued" with the account at nonce 6), and forge then waits for their receipts forever.
fn deploy_command(forge: &Path, root: &Path, rpc_url: &str, key: &B256, out: &Path) -> Command {
    let mut cmd = Command::new(forge);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.current_dir(root).args([
        "script",
        "script/Deploy.s.sol",
        "--broadcast",
        "--slow",
        "--rpc-url",
        rpc_url,
    ]);
    if code_size_limit_disabled() {
        cmd.arg("--disable-code-size-limit");
    }
    cmd.env("DEPLOYER_PRIVATE_KEY", key.to_string())
        .env("DEPLOYMENT_OUT", out);
    cmd
}

/// Benchmarks only: `ZKCOHORT_DISABLE_CODE_SIZE_LIMIT=1` lifts EIP-170 (24,576 bytes) in the
/// local anvil and the deploy script, to measure the gas of a verifier too large to deploy on
/// a real chain (e.g. the 32-patient eligibility verifier). Warns loudly.
pub fn code_size_limit_disabled() -> bool {
    let off = std::env::var("ZKCOHORT_DISABLE_CODE_SIZE_LIMIT").is_ok_and(|v| v == "1");
    if off {
        tracing::warn!("EIP-170 contract size limit DISABLED (benchmark only): what deploys here may not deploy on a real chain");
    }
    off
}

/// `keccak256` of a circuit id string: how contracts name circuits.
pub fn circuit_key(circuit_id: &str) -> B256 {
    keccak256(circuit_id.as_bytes())
}

/// A connected account with the deployed contracts.
pub struct Client {
    /// Provider with the account's wallet.
    pub provider: DynProvider,
    /// The account.
    pub account: Address,
    /// Deployed addresses.
    pub deployment: Deployment,
    market: QueryMarket::QueryMarketInstance<DynProvider>,
    registry: DatasetRegistry::DatasetRegistryInstance<DynProvider>,
    accreditations: AccreditationRegistry::AccreditationRegistryInstance<DynProvider>,
    trials: TrialMarket::TrialMarketInstance<DynProvider>,
    url: String,
}

/// A mined transaction's essentials.
#[derive(Clone, Debug, Serialize)]
pub struct Mined {
    /// Transaction hash.
    pub tx: B256,
    /// Gas used.
    pub gas_used: u64,
}

impl From<&TransactionReceipt> for Mined {
    fn from(r: &TransactionReceipt) -> Self {
        Mined {
            tx: r.transaction_hash,
            gas_used: r.gas_used,
        }
    }
}

/// A provider of `rpc_url` without an account, once the RPC has answered with the chain id of
/// `deployment` (what [`Client::connect`] adds a wallet to, and
/// [`Client::connect_read_only`] uses as it is).
async fn connect_provider(
    rpc_url: &str,
    deployment: &Deployment,
) -> Result<RootProvider, ChainError> {
    let url = rpc_url
        .parse()
        .map_err(|e| ChainError::Input(format!("bad RPC URL `{rpc_url}`: {e}")))?;
    let provider = RootProvider::new_http(url);
    let chain_id = provider
        .get_chain_id()
        .await
        .map_err(|e| ChainError::Unreachable {
            url: rpc_url.to_owned(),
            message: e.to_string(),
        })?;
    if chain_id != deployment.chain_id {
        return Err(ChainError::Deployment(format!(
            "the RPC serves chain {chain_id}, the deployment is for chain {}",
            deployment.chain_id
        )));
    }
    Ok(provider)
}

impl Client {
    /// Connects `signer` to `rpc_url` and checks that the RPC answers and the chain matches
    /// the deployment.
    pub async fn connect(
        rpc_url: &str,
        signer: PrivateKeySigner,
        deployment: Deployment,
    ) -> Result<Self, ChainError> {
        let root = connect_provider(rpc_url, &deployment).await?;
        let account = signer.address();
        // Nonces are read from the node for every transaction: a cached nonce manager counts a
        // transaction whose gas estimation reverted, leaving a gap that stalls the next one.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_provider(root)
            .erased();
        Ok(Self::assemble(provider, account, deployment, rpc_url))
    }

    /// A client of the deployed contracts over `provider`, acting as `account`.
    fn assemble(
        provider: DynProvider,
        account: Address,
        deployment: Deployment,
        rpc_url: &str,
    ) -> Self {
        Client {
            market: QueryMarket::new(deployment.market, provider.clone()),
            registry: DatasetRegistry::new(deployment.registry, provider.clone()),
            accreditations: AccreditationRegistry::new(deployment.accreditations, provider.clone()),
            trials: TrialMarket::new(deployment.trials, provider.clone()),
            provider,
            account,
            deployment,
            url: rpc_url.to_owned(),
        }
    }

    /// The RPC endpoint this client talks to.
    pub fn rpc_url(&self) -> &str {
        &self.url
    }

    /// Balance of the account in wei.
    pub async fn balance(&self, who: Address) -> Result<U256, ChainError> {
        self.provider
            .get_balance(who)
            .await
            .map_err(|e| self.rpc("balance", e))
    }

    fn rpc(&self, action: &str, e: impl std::fmt::Display) -> ChainError {
        let message = e.to_string();
        if message.contains("error sending request") || message.contains("Connection refused") {
            ChainError::Unreachable {
                url: self.url.clone(),
                message,
            }
        } else {
            ChainError::Rpc {
                action: action.to_owned(),
                message,
            }
        }
    }

    pub(crate) fn classify(&self, action: &str, e: alloy::contract::Error) -> ChainError {
        if let Some(err) = e.as_decoded_interface_error::<QueryMarket::QueryMarketErrors>() {
            return ChainError::Reverted {
                action: action.into(),
                reason: format!("{err:?}"),
            };
        }
        if let Some(err) = e.as_decoded_interface_error::<DatasetRegistry::DatasetRegistryErrors>()
        {
            return ChainError::Reverted {
                action: action.into(),
                reason: format!("{err:?}"),
            };
        }
        if let Some(err) = e.as_decoded_interface_error::<TrialMarket::TrialMarketErrors>() {
            return ChainError::Reverted {
                action: action.into(),
                reason: format!("{err:?}"),
            };
        }
        if let Some(err) =
            e.as_decoded_interface_error::<AccreditationRegistry::AccreditationRegistryErrors>()
        {
            return ChainError::Reverted {
                action: action.into(),
                reason: format!("{err:?}"),
            };
        }
        let message = e.to_string();
        if message.to_lowercase().contains("insufficient funds") {
            return ChainError::InsufficientFunds {
                action: action.into(),
                account: self.account,
            };
        }
        if let Some(data) = e.as_revert_data() {
            return ChainError::Reverted {
                action: action.into(),
                reason: format!("raw revert data {data}"),
            };
        }
        self.rpc(action, message)
    }

    pub(crate) async fn mine(
        &self,
        action: &str,
        pending: Result<
            alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
            alloy::contract::Error,
        >,
    ) -> Result<TransactionReceipt, ChainError> {
        let pending = pending.map_err(|e| self.classify(action, e))?;
        let receipt = pending
            .get_receipt()
            .await
            .map_err(|e| self.rpc(action, e))?;
        if !receipt.status() {
            return Err(ChainError::Reverted {
                action: action.into(),
                reason: format!("transaction {} failed", receipt.transaction_hash),
            });
        }
        Ok(receipt)
    }

    /// Registers a committed dataset (aggregate commitment and membership root); returns its id.
    pub async fn register(
        &self,
        info: &CommitmentInfo,
        circuit_id: &str,
    ) -> Result<(U256, Mined), ChainError> {
        let commitment = B256::from_slice(&hex_bytes(&info.commitment)?);
        let schema = B256::from_slice(&hex_bytes(&info.schema_hash)?);
        let member_root = B256::from_slice(&hex_bytes(&info.member_root)?);
        let call = self.registry.register(
            commitment,
            schema,
            info.record_count as u64,
            circuit_key(circuit_id),
            member_root,
        );
        let receipt = self.mine("register", call.send().await).await?;
        let event: DatasetRegistry::DatasetRegistered = event(&receipt, "register")?;
        Ok((event.datasetId, Mined::from(&receipt)))
    }

    /// Posts and funds a query (ETH when `token` is zero); returns its id. `constants` are the
    /// query's public words in the targeted circuits' layout ([`QueryConstants::to_fields`] for
    /// Poseidon circuits, [`FoldSchema::query_constants`] for fold ones). Only custodians
    /// `accreditor` attests are paid (zero: the explicit targets alone). The spec's canonical
    /// JSON ([`QuerySpec::document`]) goes with it: the market checks it against the spec hash
    /// and publishes it (`SpecPublished`).
    #[allow(clippy::too_many_arguments)]
    pub async fn post_query(
        &self,
        spec: &QuerySpec,
        constants: &[Fr],
        datasets: &[U256],
        token: Address,
        price: U256,
        deadline: u64,
        accreditor: Address,
    ) -> Result<(U256, Mined), ChainError> {
        let words: Vec<U256> = constants.iter().map(fr_to_u256).collect();
        let value = if token.is_zero() {
            price * U256::from(datasets.len())
        } else {
            U256::ZERO
        };
        let call = self
            .market
            .postQuery(
                IQueryMarket::Spec {
                    hash: B256::from(spec.hash()),
                    document: spec.document().into(),
                },
                words,
                datasets.to_vec(),
                token,
                price,
                deadline,
                accreditor,
            )
            .value(value);
        let receipt = self.mine("postQuery", call.send().await).await?;
        let event: QueryMarket::QueryPosted = event(&receipt, "postQuery")?;
        Ok((event.queryId, Mined::from(&receipt)))
    }

    /// Offers dataset `dataset` to `to` as its new custodian (a key rotation or a hand-over);
    /// `to` zero withdraws a pending offer. This account stays the custodian until `to` calls
    /// [`Client::accept_custodian`]. Reverts `NotCustodian` unless this account is the
    /// custodian, `UnknownDataset` for an unused id.
    pub async fn transfer_custodian(
        &self,
        dataset: U256,
        to: Address,
    ) -> Result<Mined, ChainError> {
        let receipt = self
            .mine(
                "transferCustodian",
                self.registry.transferCustodian(dataset, to).send().await,
            )
            .await?;
        let _: DatasetRegistry::CustodianTransferStarted = event(&receipt, "transferCustodian")?;
        Ok(Mined::from(&receipt))
    }

    /// Accepts dataset `dataset`, offered to this account: it becomes the custodian, paid for
    /// every later answer and enrolment. Returns the previous custodian. Reverts
    /// `NotPendingCustodian` unless the dataset was offered to this account.
    pub async fn accept_custodian(&self, dataset: U256) -> Result<(Address, Mined), ChainError> {
        let receipt = self
            .mine(
                "acceptCustodian",
                self.registry.acceptCustodian(dataset).send().await,
            )
            .await?;
        let e: DatasetRegistry::CustodianTransferred = event(&receipt, "acceptCustodian")?;
        Ok((e.from, Mined::from(&receipt)))
    }

    /// A registered dataset's record (custodian, counts, commitment, …); a read.
    pub async fn dataset(
        &self,
        dataset: U256,
    ) -> Result<IDatasetRegistryEvents::Dataset, ChainError> {
        self.registry
            .dataset(dataset)
            .call()
            .await
            .map_err(|e| self.classify("dataset", e))
    }

    /// The address dataset `dataset` is offered to (zero: no pending offer); a read.
    pub async fn pending_custodian(&self, dataset: U256) -> Result<Address, ChainError> {
        self.registry
            .pendingCustodian(dataset)
            .call()
            .await
            .map_err(|e| self.classify("pendingCustodian", e))
    }

    /// Sets the smallest cell this account, as a custodian, releases.
    pub async fn set_cell_floor(&self, floor: u64) -> Result<Mined, ChainError> {
        let receipt = self
            .mine(
                "setCellFloor",
                self.registry.setCellFloor(floor).send().await,
            )
            .await?;
        let _: DatasetRegistry::CellFloorSet = event(&receipt, "setCellFloor")?;
        Ok(Mined::from(&receipt))
    }

    /// Attests `custodian` as this account (the accreditor).
    pub async fn accredit(&self, custodian: Address) -> Result<Mined, ChainError> {
        let receipt = self
            .mine(
                "accredit",
                self.accreditations.accredit(custodian).send().await,
            )
            .await?;
        let _: AccreditationRegistry::Accredited = event(&receipt, "accredit")?;
        Ok(Mined::from(&receipt))
    }

    /// Withdraws this account's attestation of `custodian`.
    pub async fn revoke_accreditation(&self, custodian: Address) -> Result<Mined, ChainError> {
        let receipt = self
            .mine("revoke", self.accreditations.revoke(custodian).send().await)
            .await?;
        let _: AccreditationRegistry::AccreditationRevoked = event(&receipt, "revoke")?;
        Ok(Mined::from(&receipt))
    }

    /// Whether `accreditor` attests `custodian` (a read; no key needed).
    pub async fn is_accredited(
        &self,
        accreditor: Address,
        custodian: Address,
    ) -> Result<bool, ChainError> {
        self.accreditations
            .isAccredited(accreditor, custodian)
            .call()
            .await
            .map_err(|e| self.classify("isAccredited", e))
    }

    /// Submits a proof artifact as the answer of `dataset` to `query`. A failure leaves the
    /// artifact untouched, so the claim can be retried.
    pub async fn claim(
        &self,
        query: U256,
        dataset: U256,
        artifact: &impl Answer,
    ) -> Result<Mined, ChainError> {
        // The market would revert (ContextMismatch) and keep the gas: say why before sending.
        let expected = u64::try_from(query)
            .ok()
            .map(|q| self.deployment.claim_binding(q, self.account));
        if artifact.binding() != expected.as_ref() {
            return Err(ChainError::Input(format!(
                "the proof is bound to {}, this claim is {}: prove again with `prove --for-query {query}`",
                ClaimBinding::describe(artifact.binding()),
                ClaimBinding::describe(expected.as_ref()),
            )));
        }
        self.send_claim(query, dataset, artifact).await
    }

    /// Sends `artifact` as a claim without [`Client::claim`]'s check of its binding: what an
    /// attacker replaying someone else's proof does (the market must refuse it).
    pub async fn send_claim(
        &self,
        query: U256,
        dataset: U256,
        artifact: &impl Answer,
    ) -> Result<Mined, ChainError> {
        let inputs = words(artifact.instances())?;
        let proof = hex_bytes(artifact.proof())?;
        let call = self.market.claim(query, dataset, inputs, proof.into());
        let receipt = self.mine("claim", call.send().await).await?;
        Ok(Mined::from(&receipt))
    }

    /// Withdraws the account's credit in `token` (zero = ETH); returns the amount.
    pub async fn withdraw(&self, token: Address) -> Result<(U256, Mined), ChainError> {
        let owed = self
            .market
            .pendingWithdrawals(token, self.account)
            .call()
            .await
            .map_err(|e| self.classify("pendingWithdrawals", e))?;
        let receipt = self
            .mine("withdraw", self.market.withdraw(token).send().await)
            .await?;
        Ok((owed, Mined::from(&receipt)))
    }

    /// Credits the sponsor with a query's unclaimed escrow (after its deadline).
    pub async fn refund(&self, query: U256) -> Result<Mined, ChainError> {
        let receipt = self
            .mine("refund", self.market.refund(query).send().await)
            .await?;
        Ok(Mined::from(&receipt))
    }

    /// The spec document published with query `id` (its `SpecPublished` event), checked
    /// against the query's `specHash`; `None` if the query has no such event.
    pub async fn query_spec(&self, id: U256) -> Result<Option<PublishedSpec>, ChainError> {
        let hash = self.query(id).await?.specHash;
        self.published_spec(self.deployment.market, id, hash).await
    }

    /// The `SpecPublished(id, hash, …)` event of `market`, if any. The document is checked
    /// against `hash` here too: an RPC can return any log it likes.
    pub(crate) async fn published_spec(
        &self,
        market: Address,
        id: U256,
        hash: B256,
    ) -> Result<Option<PublishedSpec>, ChainError> {
        let filter = Filter::new()
            .address(market)
            .event_signature(QueryMarket::SpecPublished::SIGNATURE_HASH)
            .topic1(B256::from(id))
            .topic2(hash)
            .from_block(0);
        let logs = self
            .provider
            .get_logs(&filter)
            .await
            .map_err(|e| self.rpc("getLogs(SpecPublished)", e))?;
        let Some(log) = logs.last() else {
            return Ok(None);
        };
        let event = log
            .log_decode::<QueryMarket::SpecPublished>()
            .map_err(|e| self.rpc("SpecPublished", e))?
            .inner
            .data;
        let actual = B256::from(crate::query::spec_hash(&event.spec));
        if event.specHash != hash || actual != hash {
            return Err(ChainError::SpecMismatch {
                id,
                expected: hash,
                actual,
            });
        }
        Ok(Some(PublishedSpec {
            hash,
            document: event.spec,
            tx: log.transaction_hash,
            block: log.block_number,
        }))
    }

    /// A query's state, including pooled results.
    pub async fn query(&self, query: U256) -> Result<QueryMarket::Query, ChainError> {
        self.market
            .query(query)
            .call()
            .await
            .map_err(|e| self.classify("query", e))
    }

    /// The data columns `W` of circuit `circuit` (its [`circuit_key`]) in the query market: 0
    /// for a Poseidon circuit, at least 1 for a commit-and-prove (fold) one; a read.
    pub async fn circuit_data_columns(&self, circuit: B256) -> Result<u32, ChainError> {
        self.market
            .circuits(circuit)
            .call()
            .await
            .map(|c| c.dataColumns)
            .map_err(|e| self.classify("circuits", e))
    }
}

/// A spec document as a market published it (`SpecPublished`): the canonical JSON of a query
/// or trial spec, whose SHA-256 is the posted spec hash (checked on-chain and again on
/// reading). Parse it with `QuerySpec::from_document` or `TrialSpec::from_document`.
#[derive(Clone, Debug, Serialize)]
pub struct PublishedSpec {
    /// The spec hash it was posted under.
    pub hash: B256,
    /// The document (hex in JSON).
    pub document: Bytes,
    /// The posting transaction.
    pub tx: Option<B256>,
    /// Its block.
    pub block: Option<u64>,
}

/// `keccak256(abi.encodePacked(words))`: how the markets record a query's constants
/// (`constantsHash`) and a trial's criteria (`criteriaHash`).
pub fn words_hash(words: &[crate::Fr]) -> B256 {
    let mut packed = Vec::with_capacity(32 * words.len());
    for w in words {
        packed.extend_from_slice(&fr_to_u256(w).to_be_bytes::<32>());
    }
    keccak256(packed)
}

/// The first event of type `E` in a receipt.
pub(crate) fn event<E: SolEvent>(
    receipt: &TransactionReceipt,
    action: &str,
) -> Result<E, ChainError> {
    receipt
        .inner
        .logs()
        .iter()
        .find_map(|l| l.log_decode::<E>().ok())
        .map(|l| l.inner.data)
        .ok_or_else(|| ChainError::Rpc {
            action: action.into(),
            message: format!("no {} event in {}", E::SIGNATURE, receipt.transaction_hash),
        })
}

/// A field element as a uint256.
pub fn fr_to_u256(x: &crate::Fr) -> U256 {
    use halo2_base::halo2_proofs::halo2curves::ff::PrimeField;
    U256::from_le_bytes(x.to_repr())
}

/// An address as the field element the eligibility circuit takes as a payout (its 20 bytes,
/// big-endian, as the contract reads the uint256 word).
pub fn address_to_fr(a: Address) -> crate::Fr {
    let word = U256::from_be_slice(a.as_slice());
    fr_from_hex(&format!("0x{word:064x}")).expect("an address is below r")
}

/// The address an eligibility slot's payout word names (`None` for zero, no payout, or a
/// word that is not an address).
pub fn payout_address(word_hex: &str) -> Option<Address> {
    fr_to_address(&fr_from_hex(word_hex)?).filter(|a| !a.is_zero())
}

/// The address a field element holds (`None` for a word above 160 bits); the inverse of
/// [`address_to_fr`].
pub fn fr_to_address(x: &crate::Fr) -> Option<Address> {
    let word = fr_to_u256(x);
    (word.bit_len() <= 160).then(|| Address::from_word(B256::from(word)))
}

/// Hex field elements (public inputs) as uint256 words.
pub(crate) fn words(hex: &[String]) -> Result<Vec<U256>, ChainError> {
    hex.iter()
        .map(|h| {
            fr_from_hex(h)
                .map(|f| fr_to_u256(&f))
                .ok_or_else(|| ChainError::Input(format!("bad field element {h}")))
        })
        .collect()
}

pub(crate) fn hex_bytes(s: &str) -> Result<Vec<u8>, ChainError> {
    hex::decode(s.trim_start_matches("0x"))
        .map_err(|e| ChainError::Input(format!("bad hex `{s}`: {e}")))
}

/// A signer from a raw private key (hex) or an encrypted keystore file and its password.
pub fn signer(
    private_key: Option<&str>,
    keystore: Option<(&Path, &str)>,
) -> Result<PrivateKeySigner, ChainError> {
    match (private_key, keystore) {
        (Some(key), _) => key
            .trim()
            .parse()
            .map_err(|e| ChainError::Input(format!("bad private key: {e}"))),
        (None, Some((path, password))) => PrivateKeySigner::decrypt_keystore(path, password)
            .map_err(|e| ChainError::Input(format!("keystore {}: {e}", path.display()))),
        (None, None) => Err(ChainError::Input(
            "no account: set ZKCOHORT_PRIVATE_KEY, or --keystore with ZKCOHORT_KEYSTORE_PASSWORD"
                .into(),
        )),
    }
}

/// The native binary of a Foundry tool installed from npm
/// (`node_modules/@foundry-rs/<tool>-<platform>/bin/<tool>`, see package.json), falling back to
/// `<tool>` on the PATH.
pub fn foundry_tool(root: &Path, tool: &str) -> PathBuf {
    let dir = root.join("node_modules/@foundry-rs");
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(tool))
        .find(|p| {
            p.is_file()
                && p.parent().and_then(|b| b.parent()).is_some_and(|d| {
                    d.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&format!("{tool}-")))
                })
        })
        .unwrap_or_else(|| PathBuf::from(tool))
}

/// Private keys of anvil's default dev accounts (the public "test … junk" mnemonic). Anyone
/// can spend from them: local chains only.
pub const ANVIL_DEV_KEYS: [&str; 6] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
];

/// A local anvil process, stopped when dropped. Its output goes to a log file (a pipe nobody
/// drains would eventually block it).
pub struct LocalNode {
    child: std::process::Child,
    /// HTTP endpoint.
    pub url: String,
}

impl LocalNode {
    /// Starts anvil on `port` (a free one if `None`), logging to `log`, and waits until it
    /// answers. Its chain id is anvil's default, 31337 (the local chain).
    pub fn start(root: &Path, port: Option<u16>, log: &Path) -> Result<Self, ChainError> {
        Self::start_with_chain_id(root, port, log, None)
    }

    /// [`LocalNode::start`] with another chain id (e.g. to test what the deploy script does
    /// on a chain that is not the local one).
    pub fn start_with_chain_id(
        root: &Path,
        port: Option<u16>,
        log: &Path,
        chain_id: Option<u64>,
    ) -> Result<Self, ChainError> {
        let port = match port {
            Some(p) => p,
            None => std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| ChainError::Deployment(format!("no free port: {e}")))?,
        };
        let err = |e: std::io::Error| {
            ChainError::Deployment(format!("starting anvil: {e} (run `npm ci`)"))
        };
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let out = std::fs::File::create(log).map_err(err)?;
        let mut cmd = Command::new(foundry_tool(root, "anvil"));
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()]);
        if let Some(id) = chain_id {
            cmd.args(["--chain-id", &id.to_string()]);
        }
        if code_size_limit_disabled() {
            cmd.arg("--disable-code-size-limit");
        }
        let child = cmd
            .stdout(out.try_clone().map_err(err)?)
            .stderr(out)
            .spawn()
            .map_err(err)?;
        let node = LocalNode {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(node);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Err(ChainError::Deployment(format!(
            "anvil did not start on port {port}; see {}",
            log.display()
        )))
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the repository root is, for the forge script and node_modules: `ZKCOHORT_ROOT`, or
/// the current directory.
pub fn repo_root() -> PathBuf {
    std::env::var_os("ZKCOHORT_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Decodes a market error selector for display, e.g. in tests.
pub fn decode_market_error(data: &[u8]) -> Option<String> {
    QueryMarket::QueryMarketErrors::abi_decode(data)
        .ok()
        .map(|e| format!("{e:?}"))
        .or_else(|| {
            TrialMarket::TrialMarketErrors::abi_decode(data)
                .ok()
                .map(|e| format!("{e:?}"))
        })
}

#[cfg(test)]
mod tests {
    use std::{
        process::{Command, Stdio},
        time::{Duration, Instant},
    };

    use super::wait_bounded;

    #[test]
    fn a_stalled_deploy_is_stopped_with_its_output() {
        let spawn = |script: &str| {
            let mut cmd = Command::new("sh");
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            cmd.args(["-c", script])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let t = Instant::now();
        let (status, out, _) =
            wait_bounded(spawn("echo started; sleep 30"), Duration::from_millis(300)).unwrap();
        assert!(status.is_none(), "a process past its limit is killed");
        assert_eq!(out, "started\n");
        assert!(t.elapsed() < Duration::from_secs(10));
        // More output than a pipe holds, then success: read while waiting, nothing stalls.
        let (status, out, err) = wait_bounded(
            spawn("head -c 300000 /dev/zero | tr '\\0' x; echo oops >&2"),
            Duration::from_secs(60),
        )
        .unwrap();
        assert!(status.unwrap().success());
        assert_eq!((out.len(), err.as_str()), (300_000, "oops\n"));
    }
}
