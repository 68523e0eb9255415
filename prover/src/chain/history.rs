//! Read-only access to a deployment's history, for auditors: no account, no key. Logs are
//! fetched in block ranges (shrinking a range the node refuses as too large), every request is
//! retried with backoff on a transport failure, and a node that stays gone is reported as
//! [`ChainError::Unreachable`].

use std::{
    future::{Future, IntoFuture},
    time::Duration,
};

use alloy::{
    consensus::Transaction as _,
    eips::BlockId,
    primitives::{Address, Bytes, B256, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
    rpc::types::{Filter, Log},
    transports::{RpcError, TransportError, TransportErrorKind},
};

use super::{AccreditationRegistry, ChainError, Client, Deployment, QueryMarket, TrialMarket};

/// The one ERC-20 read an auditor needs.
#[allow(missing_docs)]
mod extra {
    alloy::sol! {
        #[sol(rpc)]
        interface IErc20Balance {
            function balanceOf(address account) external view returns (uint256);
        }
    }
}

/// How logs are fetched and failures retried.
#[derive(Clone, Debug)]
pub struct FetchPolicy {
    /// Blocks per `eth_getLogs` request to start with (halved while the node answers "too many
    /// results", down to one block).
    pub chunk_blocks: u64,
    /// Attempts per request before giving up on a transport failure (at least 1).
    pub attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub backoff: Duration,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            chunk_blocks: 2_000,
            attempts: 5,
            backoff: Duration::from_millis(250),
        }
    }
}

/// Why one request failed, as far as retrying is concerned.
#[derive(Debug, PartialEq)]
enum Failure {
    /// The node refuses the range as too large or returning too many results.
    TooMany(String),
    /// The node did not answer (or answered "try later"): worth retrying.
    Transient(String),
    /// A definite error.
    Fatal(String),
}

fn classify(e: &TransportError) -> Failure {
    let message = e.to_string();
    match e {
        RpcError::Transport(kind) => {
            if matches!(kind, TransportErrorKind::HttpError(h) if !h.is_rate_limit_err() && !h.is_temporarily_unavailable() && h.status < 500)
            {
                Failure::Fatal(message)
            } else {
                Failure::Transient(message)
            }
        }
        RpcError::ErrorResp(payload) => {
            let m = payload.message.to_lowercase();
            let too_many = [
                "too many",
                "more than",
                "range is too",
                "range too",
                "block range",
                "response size",
                "limit exceeded",
                "exceeds the limit",
                "query timeout",
            ];
            if payload.code == 429 || m.contains("rate limit") || m.contains("try again") {
                Failure::Transient(message)
            } else if payload.code == -32005 || too_many.iter().any(|p| m.contains(p)) {
                Failure::TooMany(message)
            } else {
                Failure::Fatal(message)
            }
        }
        RpcError::NullResp => Failure::Transient(message),
        _ => Failure::Fatal(message),
    }
}

/// Runs `attempt` until it succeeds, fails definitely, or `policy.attempts` transient failures
/// have passed (waiting `backoff`, doubling, between them).
async fn with_retries<T, F, Fut>(policy: &FetchPolicy, mut attempt: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut delay = policy.backoff;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(Failure::Transient(m)) if tries < policy.attempts.max(1) => {
                tracing::warn!(
                    attempt = tries,
                    "RPC request failed ({m}); retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
            other => return other,
        }
    }
}

/// Fetches `[from, to]` in ranges of at most `policy.chunk_blocks` blocks, halving a range the
/// node refuses as too large (down to one block) and retrying transient failures.
/// `progress(done_up_to)` is called after each range.
async fn paginate<T, F, Fut>(
    from: u64,
    to: u64,
    policy: &FetchPolicy,
    mut fetch: F,
    mut progress: impl FnMut(u64),
) -> Result<Vec<T>, Failure>
where
    F: FnMut(u64, u64) -> Fut,
    Fut: Future<Output = Result<Vec<T>, Failure>>,
{
    let mut out = Vec::new();
    let mut chunk = policy.chunk_blocks.max(1);
    let mut start = from;
    while start <= to {
        let end = start.saturating_add(chunk - 1).min(to);
        match with_retries(policy, || fetch(start, end)).await {
            Ok(mut items) => {
                out.append(&mut items);
                progress(end);
                if end == u64::MAX {
                    break;
                }
                start = end + 1;
            }
            Err(Failure::TooMany(m)) if end > start => {
                chunk = (end - start + 1).div_ceil(2);
                tracing::debug!(
                    "logs of blocks {start}..={end} refused ({m}); {chunk} blocks per request now"
                );
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A read-only view of a deployment: logs, transactions, blocks, code, balances and the
/// markets' public state. Needs no key.
pub struct HistoryReader {
    provider: DynProvider,
    url: String,
    /// The deployment read.
    pub deployment: Deployment,
    /// Fetching and retrying.
    pub policy: FetchPolicy,
}

impl HistoryReader {
    /// Connects to `rpc_url` (retrying per `policy`) and checks that it serves the
    /// deployment's chain.
    pub async fn connect(
        rpc_url: &str,
        deployment: Deployment,
        policy: FetchPolicy,
    ) -> Result<Self, ChainError> {
        let url = rpc_url
            .parse()
            .map_err(|e| ChainError::Input(format!("bad RPC URL `{rpc_url}`: {e}")))?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url)
            .erased();
        let reader = HistoryReader {
            provider,
            url: rpc_url.to_owned(),
            deployment,
            policy,
        };
        let chain_id = reader
            .request("eth_chainId", || reader.provider.get_chain_id())
            .await?;
        if chain_id != reader.deployment.chain_id {
            return Err(ChainError::Deployment(format!(
                "the RPC serves chain {chain_id}, the deployment is for chain {}",
                reader.deployment.chain_id
            )));
        }
        Ok(reader)
    }

    /// The RPC endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn error(&self, action: &str, failure: Failure) -> ChainError {
        match failure {
            Failure::Transient(message) => ChainError::Unreachable {
                url: self.url.clone(),
                message: format!(
                    "{action}: {message} (gave up after {} attempts)",
                    self.policy.attempts.max(1)
                ),
            },
            Failure::TooMany(message) | Failure::Fatal(message) => ChainError::Rpc {
                action: action.to_owned(),
                message,
            },
        }
    }

    /// One RPC request with retries.
    async fn request<T, F, Fut>(&self, action: &str, mut call: F) -> Result<T, ChainError>
    where
        F: FnMut() -> Fut,
        Fut: IntoFuture<Output = Result<T, TransportError>>,
    {
        with_retries(&self.policy, || {
            let fut = call().into_future();
            async move { fut.await.map_err(|e| classify(&e)) }
        })
        .await
        .map_err(|f| self.error(action, f))
    }

    /// One contract read with retries; a revert is reported as such.
    async fn read<T, F, Fut>(&self, action: &str, mut call: F) -> Result<T, ChainError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, alloy::contract::Error>>,
    {
        with_retries(&self.policy, || {
            let fut = call();
            async move {
                fut.await.map_err(|e| match e {
                    alloy::contract::Error::TransportError(t) => classify(&t),
                    other => Failure::Fatal(other.to_string()),
                })
            }
        })
        .await
        .map_err(|f| self.error(action, f))
    }

    /// The latest block number.
    pub async fn head(&self) -> Result<u64, ChainError> {
        self.request("eth_blockNumber", || self.provider.get_block_number())
            .await
    }

    /// Every log of `addresses` in blocks `[from, to]`, in chain order, fetched in ranges
    /// (see [`FetchPolicy`]). `progress(block)` is called as ranges complete.
    pub async fn logs(
        &self,
        addresses: &[Address],
        from: u64,
        to: u64,
        progress: impl FnMut(u64),
    ) -> Result<Vec<Log>, ChainError> {
        let mut logs = paginate(
            from,
            to,
            &self.policy,
            |a, b| {
                let filter = Filter::new()
                    .address(addresses.to_vec())
                    .from_block(a)
                    .to_block(b);
                let provider = self.provider.clone();
                async move { provider.get_logs(&filter).await.map_err(|e| classify(&e)) }
            },
            progress,
        )
        .await
        .map_err(|f| self.error("eth_getLogs", f))?;
        logs.sort_by_key(|l| (l.block_number, l.log_index));
        Ok(logs)
    }

    /// A transaction's recipient and input, `None` if the node does not know it.
    pub async fn transaction(
        &self,
        tx: B256,
    ) -> Result<Option<(Option<Address>, Bytes)>, ChainError> {
        let t = self
            .request("eth_getTransactionByHash", || {
                self.provider.get_transaction_by_hash(tx)
            })
            .await?;
        Ok(t.map(|t| (t.to(), t.input().clone())))
    }

    /// A block's timestamp.
    pub async fn block_timestamp(&self, block: u64) -> Result<u64, ChainError> {
        let b = self
            .request("eth_getBlockByNumber", || {
                self.provider.get_block_by_number(block.into())
            })
            .await?;
        b.map(|b| b.header.timestamp)
            .ok_or_else(|| ChainError::Rpc {
                action: "eth_getBlockByNumber".into(),
                message: format!("block {block} is unknown to the node"),
            })
    }

    /// The code at `address` as of `block`.
    pub async fn code(&self, address: Address, block: u64) -> Result<Bytes, ChainError> {
        self.request("eth_getCode", || {
            self.provider.get_code_at(address).number(block)
        })
        .await
    }

    /// `holder`'s balance of `token` (address(0): ETH) as of `block`.
    pub async fn balance(
        &self,
        holder: Address,
        token: Address,
        block: u64,
    ) -> Result<U256, ChainError> {
        if token.is_zero() {
            return self
                .request("eth_getBalance", || {
                    self.provider.get_balance(holder).number(block)
                })
                .await;
        }
        let erc20 = extra::IErc20Balance::new(token, self.provider.clone());
        self.read("balanceOf", || {
            let call = erc20.balanceOf(holder).block(BlockId::number(block));
            async move { call.call().await }
        })
        .await
    }

    /// A query's escrow still locked, as of `block`.
    pub async fn query_locked(&self, id: U256, block: u64) -> Result<U256, ChainError> {
        let market = QueryMarket::new(self.deployment.market, self.provider.clone());
        self.read("QueryMarket.locked", || {
            let call = market.locked(id).block(BlockId::number(block));
            async move { call.call().await }
        })
        .await
    }

    /// A query's on-chain record (pooled results, counters), as of `block`.
    pub async fn query(&self, id: U256, block: u64) -> Result<QueryMarket::Query, ChainError> {
        let market = QueryMarket::new(self.deployment.market, self.provider.clone());
        self.read("QueryMarket.query", || {
            let call = market.query(id).block(BlockId::number(block));
            async move { call.call().await }
        })
        .await
    }

    /// A trial's escrow still locked, as of `block`.
    pub async fn trial_locked(&self, id: U256, block: u64) -> Result<U256, ChainError> {
        let trials = TrialMarket::new(self.deployment.trials, self.provider.clone());
        self.read("TrialMarket.locked", || {
            let call = trials.locked(id).block(BlockId::number(block));
            async move { call.call().await }
        })
        .await
    }

    /// A trial's on-chain record, as of `block`.
    pub async fn trial(&self, id: U256, block: u64) -> Result<TrialMarket::Trial, ChainError> {
        let trials = TrialMarket::new(self.deployment.trials, self.provider.clone());
        self.read("TrialMarket.trial", || {
            let call = trials.trial(id).block(BlockId::number(block));
            async move { call.call().await }
        })
        .await
    }

    /// `account`'s credit in `token` at `market` (either market's address), as of `block`.
    pub async fn pending(
        &self,
        market: Address,
        token: Address,
        account: Address,
        block: u64,
    ) -> Result<U256, ChainError> {
        // Both markets share `Escrow.pendingWithdrawals(token, account)`.
        let escrow = QueryMarket::new(market, self.provider.clone());
        self.read("pendingWithdrawals", || {
            let call = escrow
                .pendingWithdrawals(token, account)
                .block(BlockId::number(block));
            async move { call.call().await }
        })
        .await
    }

    /// Whether `accreditor` attests `custodian`, as of `block`.
    pub async fn is_accredited(
        &self,
        accreditor: Address,
        custodian: Address,
        block: u64,
    ) -> Result<bool, ChainError> {
        let registry =
            AccreditationRegistry::new(self.deployment.accreditations, self.provider.clone());
        self.read("isAccredited", || {
            let call = registry
                .isAccredited(accreditor, custodian)
                .block(BlockId::number(block));
            async move { call.call().await }
        })
        .await
    }
}

impl Client {
    /// Connects without an account, for reads only (status commands, audits): any transaction
    /// it tried to send would have no signer. `account` is the zero address.
    pub async fn connect_read_only(
        rpc_url: &str,
        deployment: Deployment,
    ) -> Result<Self, ChainError> {
        let provider = super::connect_provider(rpc_url, &deployment)
            .await?
            .erased();
        Ok(Self::assemble(provider, Address::ZERO, deployment, rpc_url))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        cell::RefCell,
        sync::atomic::{AtomicU32, Ordering},
    };

    use super::*;

    fn policy(chunk: u64) -> FetchPolicy {
        FetchPolicy {
            chunk_blocks: chunk,
            attempts: 3,
            backoff: Duration::from_millis(1),
        }
    }

    /// A fake node holding one item per block, refusing ranges holding more than `limit`.
    async fn fake(
        limit: u64,
        calls: &RefCell<Vec<(u64, u64)>>,
        a: u64,
        b: u64,
    ) -> Result<Vec<u64>, Failure> {
        calls.borrow_mut().push((a, b));
        if b - a + 1 > limit {
            return Err(Failure::TooMany(
                "query returned more than 10000 results".into(),
            ));
        }
        Ok((a..=b).collect())
    }

    #[tokio::test]
    async fn pages_shrink_on_too_many_results_and_cover_every_block_once() {
        let calls = RefCell::new(Vec::new());
        let mut seen = Vec::new();
        let items = paginate(
            0,
            99,
            &policy(40),
            |a, b| fake(7, &calls, a, b),
            |b| seen.push(b),
        )
        .await
        .unwrap();
        assert_eq!(
            items,
            (0..=99).collect::<Vec<_>>(),
            "every block once, in order"
        );
        let calls = calls.into_inner();
        assert_eq!(calls[0], (0, 39), "starts with the configured range");
        assert!(calls.iter().filter(|(a, b)| b - a + 1 > 7).count() >= 2);
        assert_eq!(seen.last(), Some(&99));

        // A node that refuses even one block is an error, not a loop.
        let calls = RefCell::new(Vec::new());
        let err = paginate(5, 9, &policy(4), |a, b| fake(0, &calls, a, b), |_| {})
            .await
            .unwrap_err();
        assert!(matches!(err, Failure::TooMany(_)), "{err:?}");
    }

    #[tokio::test]
    async fn transport_failures_are_retried_a_bounded_number_of_times() {
        let tries = AtomicU32::new(0);
        // Fails twice, then answers: within three attempts.
        let items = paginate(
            0,
            3,
            &policy(10),
            |a, b| {
                let n = tries.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 2 {
                        Err(Failure::Transient("connection refused".into()))
                    } else {
                        Ok((a..=b).collect::<Vec<u64>>())
                    }
                }
            },
            |_| {},
        )
        .await
        .unwrap();
        assert_eq!(items, vec![0, 1, 2, 3]);
        assert_eq!(tries.load(Ordering::SeqCst), 3);

        // Never answers: gives up after exactly `attempts`.
        tries.store(0, Ordering::SeqCst);
        let err = paginate(
            0,
            3,
            &policy(10),
            |_, _| {
                tries.fetch_add(1, Ordering::SeqCst);
                async { Err::<Vec<u64>, _>(Failure::Transient("connection refused".into())) }
            },
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Failure::Transient(_)));
        assert_eq!(tries.load(Ordering::SeqCst), 3);

        // A definite error is not retried.
        tries.store(0, Ordering::SeqCst);
        let err = paginate(
            0,
            3,
            &policy(10),
            |_, _| {
                tries.fetch_add(1, Ordering::SeqCst);
                async { Err::<Vec<u64>, _>(Failure::Fatal("invalid params".into())) }
            },
            |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Failure::Fatal(_)));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn node_errors_are_classified() {
        let resp = |code: i64, message: &'static str| -> TransportError {
            RpcError::ErrorResp(
                serde_json::from_value(serde_json::json!({"code": code, "message": message}))
                    .unwrap(),
            )
        };
        assert!(matches!(
            classify(&resp(-32005, "query returned more than 10000 results")),
            Failure::TooMany(_)
        ));
        assert!(matches!(
            classify(&resp(-32602, "Log response size exceeded")),
            Failure::TooMany(_)
        ));
        assert!(matches!(
            classify(&resp(429, "rate limited")),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify(&resp(-32601, "method not found")),
            Failure::Fatal(_)
        ));
        let gone: TransportError = TransportErrorKind::custom_str("error sending request");
        assert!(matches!(classify(&gone), Failure::Transient(_)));
    }

    #[tokio::test]
    async fn an_unreachable_node_is_named_after_bounded_retries() {
        let deployment = Deployment {
            chain_id: 31337,
            registry: Address::ZERO,
            accreditations: Address::ZERO,
            market: Address::ZERO,
            trials: Address::ZERO,
            owner: Address::ZERO,
            verifiers: Default::default(),
        };
        // Nothing listens on port 9 (discard).
        let err = HistoryReader::connect("http://127.0.0.1:9", deployment, policy(10))
            .await
            .err()
            .unwrap();
        match err {
            ChainError::Unreachable { url, message } => {
                assert_eq!(url, "http://127.0.0.1:9");
                assert!(message.contains("gave up after 3 attempts"), "{message}");
            }
            other => panic!("{other}"),
        }
    }
}
