//! Arms read from the market: each query's per-dataset answers, as the chain recorded them.

use alloy::primitives::U256;

use super::{Moments, StudyError};
use crate::{
    audit::model::{Claim, History},
    query::QuerySpec,
};

/// The cells of a two-arm study posted as two market queries (one per arm, the same
/// statistic), from the `Claimed` events: what the market's verifier accepted and pooled.
#[derive(Clone, Debug)]
pub struct OnChainArms {
    /// The arms' specs, as published with the queries.
    pub specs: [QuerySpec; 2],
    /// Datasets that answered both arms, by id: the sites.
    pub datasets: Vec<u64>,
    /// Their cells, `[arm 1, arm 2]` (`None`: suppressed).
    pub cells: Vec<[Option<Moments>; 2]>,
    /// Datasets that answered one arm only (left out).
    pub unpaired: Vec<u64>,
}

impl OnChainArms {
    /// Reads the arms of queries `ids` from `history`.
    pub fn read(history: &History, ids: [u64; 2]) -> Result<Self, StudyError> {
        let [a, b] = ids.map(|id| history.queries.get(&id).ok_or(StudyError::UnknownQuery(id)));
        let (a, b) = (a?, b?);
        let spec = |q: &crate::audit::model::Query| {
            let doc = q.spec.as_ref().ok_or(StudyError::Unpublished(q.id))?;
            QuerySpec::from_document(&doc.bytes).map_err(|_| StudyError::Unpublished(q.id))
        };
        let specs = [spec(a)?, spec(b)?];
        if specs[0].statistic != specs[1].statistic {
            return Err(StudyError::DifferentStatistics(
                specs[0].statistic.clone(),
                specs[1].statistic.clone(),
            ));
        }
        let claim = |q: &crate::audit::model::Query, d: u64| {
            q.claims.iter().find(|c| c.dataset == d).map(moments)
        };
        let (mut datasets, mut cells, mut unpaired) = (vec![], vec![], vec![]);
        let mut all: Vec<u64> = a
            .claims
            .iter()
            .chain(&b.claims)
            .map(|c| c.dataset)
            .collect();
        all.sort_unstable();
        all.dedup();
        for d in all {
            match (claim(a, d), claim(b, d)) {
                (Some(x), Some(y)) => {
                    datasets.push(d);
                    cells.push([x?, y?]);
                }
                _ => unpaired.push(d),
            }
        }
        Ok(OnChainArms {
            specs,
            datasets,
            cells,
            unpaired,
        })
    }
}

/// A claim's released cell: `None` if suppressed.
fn moments(c: &Claim) -> Result<Option<Moments>, StudyError> {
    if c.suppressed {
        return Ok(None);
    }
    let int = |x: U256| i128::try_from(x).map_err(|_| StudyError::Overflow);
    Ok(Some(Moments {
        n: u64::try_from(c.nonmissing).map_err(|_| StudyError::Overflow)?,
        sum: int(c.sum)?,
        sum_squares: int(c.sum_squares)?,
    }))
}
