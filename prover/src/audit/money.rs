//! Money reconciliation: per query and per trial, escrowed = paid + refunded + still locked;
//! per account and token, credited = withdrawn + pending; per market and token, the contract's
//! balance = every pending credit + every locked escrow. Event sums are compared with the
//! contracts' own views (`locked`, `pendingWithdrawals`, balances) read at the audited block.

use std::collections::BTreeMap;

use alloy::primitives::{Address, U256};
use serde::{Serialize, Serializer};

use super::model::{dec, word_hex, Contract, History};

/// What the contracts say at the audited block (views, not events).
#[derive(Clone, Debug, Default)]
pub struct OnChain {
    /// `QueryMarket.locked(id)`.
    pub query_locked: BTreeMap<u64, U256>,
    /// `QueryMarket.query(id)`: answered, suppressed, pooled totals.
    pub query_state: BTreeMap<u64, QueryState>,
    /// `TrialMarket.locked(id)`.
    pub trial_locked: BTreeMap<U256, U256>,
    /// `TrialMarket.trial(id).enrolled`.
    pub trial_enrolled: BTreeMap<U256, u32>,
    /// `pendingWithdrawals(token, account)` per (market, token, account).
    pub pending: BTreeMap<(Contract, Address, Address), U256>,
    /// Balance per (market, token): ETH or ERC-20 `balanceOf`.
    pub balances: BTreeMap<(Contract, Address), U256>,
}

/// A query's counters and pooled results as the market stores them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QueryState {
    /// Answers recorded and paid (for an attestation query, its yes verdicts).
    pub answered: u32,
    /// An attestation query's no verdicts (recorded, paid nothing).
    pub declined: u32,
    /// Suppressed answers.
    pub suppressed: u32,
    /// Pooled count.
    #[serde(serialize_with = "dec")]
    pub total_count: U256,
    /// Pooled matching records whose statistic is not missing.
    #[serde(serialize_with = "dec")]
    pub total_nonmissing: U256,
    /// Pooled sum.
    #[serde(serialize_with = "dec")]
    pub total_sum: U256,
    /// Pooled sum of squares.
    #[serde(serialize_with = "dec")]
    pub total_sum_squares: U256,
    /// Whether refunded.
    pub refunded: bool,
}

fn opt_dec<S: Serializer>(x: &Option<U256>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(x) => s.collect_str(x),
        None => s.serialize_none(),
    }
}

/// One query's or trial's escrow.
#[derive(Clone, Debug, Serialize)]
pub struct Escrow {
    /// Which market.
    pub market: Contract,
    /// `#3` for a query, the trial id in hex for a trial.
    pub id: String,
    /// Token (zero: ETH).
    pub token: Address,
    /// Put in by the sponsor.
    #[serde(serialize_with = "dec")]
    pub escrowed: U256,
    /// Credited to custodians and patients.
    #[serde(serialize_with = "dec")]
    pub paid: U256,
    /// Credited back to the sponsor.
    #[serde(serialize_with = "dec")]
    pub refunded: U256,
    /// Still locked, as the events imply.
    #[serde(serialize_with = "dec")]
    pub locked_expected: U256,
    /// Still locked, as the contract says.
    #[serde(serialize_with = "opt_dec")]
    pub locked_onchain: Option<U256>,
    /// What does not add up.
    pub problems: Vec<String>,
}

/// One party's money in one market and token.
#[derive(Clone, Debug, Serialize)]
pub struct Account {
    /// Which market.
    pub market: Contract,
    /// The account.
    pub account: Address,
    /// Token (zero: ETH).
    pub token: Address,
    /// Escrowed as a sponsor.
    #[serde(serialize_with = "dec")]
    pub escrowed: U256,
    /// Credited as a custodian (answers, bounties).
    #[serde(serialize_with = "dec")]
    pub as_custodian: U256,
    /// Credited as a patient (bounty shares).
    #[serde(serialize_with = "dec")]
    pub as_patient: U256,
    /// Credited back as a sponsor (refunds).
    #[serde(serialize_with = "dec")]
    pub refunds: U256,
    /// Withdrawn.
    #[serde(serialize_with = "dec")]
    pub withdrawn: U256,
    /// Still credited, as the contract says.
    #[serde(serialize_with = "opt_dec")]
    pub pending_onchain: Option<U256>,
    /// What does not add up.
    pub problems: Vec<String>,
}

impl Account {
    /// Everything credited.
    pub fn credited(&self) -> U256 {
        self.as_custodian + self.as_patient + self.refunds
    }
}

/// A market's holdings of one token against what it owes.
#[derive(Clone, Debug, Serialize)]
pub struct Balance {
    /// Which market.
    pub market: Contract,
    /// Token (zero: ETH).
    pub token: Address,
    /// The contract's balance.
    #[serde(serialize_with = "dec")]
    pub balance: U256,
    /// Credits not yet withdrawn, all accounts.
    #[serde(serialize_with = "dec")]
    pub pending: U256,
    /// Escrow still locked, all queries or trials.
    #[serde(serialize_with = "dec")]
    pub locked: U256,
    /// Held beyond what is owed (a deficit is a problem instead).
    #[serde(serialize_with = "dec")]
    pub surplus: U256,
    /// What does not add up.
    pub problems: Vec<String>,
}

/// The reconciliation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Money {
    /// Per query and trial.
    pub escrows: Vec<Escrow>,
    /// Per party, market and token.
    pub accounts: Vec<Account>,
    /// Per market and token (only when the market's whole history was read).
    pub balances: Vec<Balance>,
    /// Markets whose construction was not in the blocks read: their balances are not checked.
    pub partial: Vec<Contract>,
}

impl Money {
    /// Whether everything that was checked adds up.
    pub fn reconciles(&self) -> bool {
        self.escrows.iter().all(|e| e.problems.is_empty())
            && self.accounts.iter().all(|a| a.problems.is_empty())
            && self.balances.iter().all(|b| b.problems.is_empty())
    }
}

type AccountKey = (Contract, Address, Address);

/// The (market, token, account) triples whose credits or withdrawals appear in `h`, and the
/// (market, token) pairs in use: what to read from the chain.
pub fn parties(h: &History) -> (Vec<AccountKey>, Vec<(Contract, Address)>) {
    let mut accounts: Vec<AccountKey> = Vec::new();
    let mut tokens = vec![
        (Contract::QueryMarket, Address::ZERO),
        (Contract::TrialMarket, Address::ZERO),
    ];
    for q in h.queries.values() {
        tokens.push((Contract::QueryMarket, q.token));
        accounts.push((Contract::QueryMarket, q.token, q.sponsor));
        for c in &q.claims {
            accounts.push((Contract::QueryMarket, q.token, c.custodian));
        }
    }
    for t in &h.trials {
        accounts.push((Contract::TrialMarket, Address::ZERO, t.sponsor));
        for e in &t.enrolments {
            accounts.push((Contract::TrialMarket, Address::ZERO, e.custodian));
            if !e.patient_payout.is_zero() {
                accounts.push((Contract::TrialMarket, Address::ZERO, e.patient_payout));
            }
        }
    }
    for w in &h.withdrawals {
        tokens.push((w.market, w.token));
        accounts.push((w.market, w.token, w.account));
    }
    for t in &h.tokens {
        tokens.push((t.market, t.token));
    }
    accounts.sort();
    accounts.dedup();
    tokens.sort();
    tokens.dedup();
    (accounts, tokens)
}

/// Reconciles the money of `h` against the chain's views.
pub fn reconcile(h: &History, chain: &OnChain) -> Money {
    let mut money = Money::default();
    let mut accounts: BTreeMap<AccountKey, Account> = BTreeMap::new();
    let (keys, tokens) = parties(h);
    for key @ (market, token, account) in keys {
        accounts.insert(
            key,
            Account {
                market,
                account,
                token,
                escrowed: U256::ZERO,
                as_custodian: U256::ZERO,
                as_patient: U256::ZERO,
                refunds: U256::ZERO,
                withdrawn: U256::ZERO,
                pending_onchain: chain.pending.get(&key).copied(),
                problems: Vec::new(),
            },
        );
    }

    for q in h.queries.values() {
        let key = |who| (Contract::QueryMarket, q.token, who);
        let targets = U256::from(q.targets.len());
        let escrowed = q.price * targets;
        acct(&mut accounts, key(q.sponsor)).escrowed += escrowed;
        let mut e = Escrow {
            market: Contract::QueryMarket,
            id: format!("#{}", q.id),
            token: q.token,
            escrowed,
            paid: U256::ZERO,
            refunded: U256::ZERO,
            locked_expected: U256::ZERO,
            locked_onchain: chain.query_locked.get(&q.id).copied(),
            problems: Vec::new(),
        };
        for c in &q.claims {
            e.paid += c.paid;
            // Credited to the payee the event names: the dataset's custodian at the time of
            // the claim (a later rotation does not move an earlier credit).
            acct(&mut accounts, key(c.custodian)).as_custodian += c.paid;
            // An attestation's no is paid nothing (its escrow stays for the refund).
            let price = if c.verdict == Some(false) {
                U256::ZERO
            } else {
                q.price
            };
            if c.paid != price {
                e.problems.push(format!(
                    "the answer of dataset #{} was paid {}, the price is {price}",
                    c.dataset, c.paid
                ));
            }
        }
        if q.claims.len() > q.targets.len() {
            e.problems.push(format!(
                "{} answers for {} targets",
                q.claims.len(),
                q.targets.len()
            ));
        }
        if let Some(r) = &q.refund {
            e.refunded = r.amount;
            acct(&mut accounts, key(r.sponsor)).refunds += r.amount;
            // An attestation's no is answered but unpaid: its escrow is refunded.
            let before = q
                .claims
                .iter()
                .filter(|c| c.at < r.at && c.verdict != Some(false))
                .count();
            let due = q.price * U256::from(q.targets.len().saturating_sub(before));
            if r.amount != due {
                e.problems.push(format!(
                    "refunded {}, the unanswered targets' escrow was {due}",
                    r.amount
                ));
            }
            if r.sponsor != q.sponsor {
                e.problems
                    .push(format!("refunded to {}, not to the sponsor", r.sponsor));
            }
        } else {
            let paid = q.claims.iter().filter(|c| c.verdict != Some(false)).count();
            e.locked_expected = q.price * U256::from(q.targets.len().saturating_sub(paid));
        }
        check_escrow(&mut e);
        money.escrows.push(e);
    }

    for t in &h.trials {
        let key = |who| (Contract::TrialMarket, Address::ZERO, who);
        let escrowed = t.bounty * U256::from(t.cap);
        acct(&mut accounts, key(t.sponsor)).escrowed += escrowed;
        let mut e = Escrow {
            market: Contract::TrialMarket,
            id: word_hex(&t.id),
            token: Address::ZERO,
            escrowed,
            paid: U256::ZERO,
            refunded: U256::ZERO,
            locked_expected: U256::ZERO,
            locked_onchain: chain.trial_locked.get(&t.id).copied(),
            problems: Vec::new(),
        };
        let share = t.bounty * U256::from(t.patient_share_bps) / U256::from(10_000u32);
        for en in &t.enrolments {
            e.paid += en.custodian_amount + en.patient_amount;
            acct(&mut accounts, key(en.custodian)).as_custodian += en.custodian_amount;
            if !en.patient_payout.is_zero() {
                acct(&mut accounts, key(en.patient_payout)).as_patient += en.patient_amount;
            }
            let patient = if en.patient_payout.is_zero() {
                U256::ZERO
            } else {
                share
            };
            if en.patient_amount != patient || en.custodian_amount != t.bounty - patient {
                e.problems.push(format!(
                    "enrolment {} paid {} to the custodian and {} to the patient; the terms say {} and {patient}",
                    word_hex(&en.nullifier),
                    en.custodian_amount,
                    en.patient_amount,
                    t.bounty - patient
                ));
            }
        }
        if t.enrolments.len() > t.cap as usize {
            e.problems.push(format!(
                "{} enrolments for a cap of {}",
                t.enrolments.len(),
                t.cap
            ));
        }
        if let Some(r) = &t.refund {
            e.refunded = r.amount;
            acct(&mut accounts, key(r.sponsor)).refunds += r.amount;
            let before = t.enrolments.iter().filter(|x| x.at < r.at).count();
            let due = t.bounty * U256::from((t.cap as usize).saturating_sub(before));
            if r.amount != due {
                e.problems.push(format!(
                    "refunded {}, the unused places' escrow was {due}",
                    r.amount
                ));
            }
        } else {
            e.locked_expected =
                t.bounty * U256::from((t.cap as usize).saturating_sub(t.enrolments.len()));
        }
        check_escrow(&mut e);
        money.escrows.push(e);
    }

    for w in &h.withdrawals {
        acct(&mut accounts, (w.market, w.token, w.account)).withdrawn += w.amount;
    }
    for a in accounts.values_mut() {
        match a.pending_onchain {
            Some(p) if a.credited() != a.withdrawn + p => a.problems.push(format!(
                "credited {} but withdrew {} and has {p} pending",
                a.credited(),
                a.withdrawn
            )),
            None if a.credited() > U256::ZERO || a.withdrawn > U256::ZERO => a
                .problems
                .push("its pending credit could not be read".into()),
            _ => {}
        }
    }

    for market in [Contract::QueryMarket, Contract::TrialMarket] {
        if !h.saw_construction(market) {
            money.partial.push(market);
            continue;
        }
        for &(m, token) in tokens.iter().filter(|(m, _)| *m == market) {
            let pending: U256 = accounts
                .values()
                .filter(|a| a.market == m && a.token == token)
                .filter_map(|a| a.pending_onchain)
                .sum();
            let locked: U256 = money
                .escrows
                .iter()
                .filter(|e| e.market == m && e.token == token)
                .filter_map(|e| e.locked_onchain)
                .sum();
            let Some(&balance) = chain.balances.get(&(m, token)) else {
                continue;
            };
            let owed = pending + locked;
            let mut b = Balance {
                market: m,
                token,
                balance,
                pending,
                locked,
                surplus: balance.saturating_sub(owed),
                problems: Vec::new(),
            };
            if balance < owed {
                b.problems.push(format!(
                    "holds {balance} but owes {owed} ({pending} pending + {locked} locked): short by {}",
                    owed - balance
                ));
            }
            money.balances.push(b);
        }
    }
    money.accounts = accounts.into_values().collect();
    money
}

fn acct(accounts: &mut BTreeMap<AccountKey, Account>, key: AccountKey) -> &mut Account {
    accounts.get_mut(&key).expect("every party is listed")
}

fn check_escrow(e: &mut Escrow) {
    match e.locked_onchain {
        Some(locked) => {
            if locked != e.locked_expected {
                e.problems.push(format!(
                    "the contract says {locked} is still locked, the events imply {}",
                    e.locked_expected
                ));
            }
            if e.escrowed != e.paid + e.refunded + locked {
                e.problems.push(format!(
                    "escrowed {} ≠ paid {} + refunded {} + locked {locked}",
                    e.escrowed, e.paid, e.refunded
                ));
            }
        }
        None => e
            .problems
            .push("the contract's locked amount could not be read".into()),
    }
}
