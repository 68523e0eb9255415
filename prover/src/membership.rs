//! The per-patient membership tree: what eligibility proofs open.
//!
//! The aggregate commitment packs three records per field element and 24 per leaf, which is
//! what makes cohort statistics cheap, but a patient cannot be handed a path into it without
//! also being handed 23 neighbours' records. So every committed dataset also gets a
//! **membership tree** with one leaf per record:
//!
//! * `secret_i = Poseidon(salt, SECRET_DOMAIN, i)`: the patient's secret, derived from the
//!   dataset salt so the custodian can re-issue a credential without storing anything more;
//!   one-way, so a patient learns nothing about the salt or other patients' secrets;
//! * `leaf_i = Poseidon(secret_i, packed_i)` with `packed_i` the record packed alone (present
//!   bit + fields, as in the aggregate layout). The secret is the leaf's blinding: a sibling
//!   hash in someone else's path reveals nothing about a low-entropy record;
//! * a binary Poseidon tree of fixed depth [`MEMBER_DEPTH`] (2^20 records), empty leaves zero.
//!
//! The root is public: it is registered next to the aggregate commitment, in the same
//! transaction, by the same custodian. A trial nullifier is `Poseidon(secret_i, trial_id)`: one
//! per patient and trial, unlinkable across trials.

use halo2_base::halo2_proofs::halo2curves::{bn256::Fr, ff::Field};

use crate::{commitment::RecordLayout, poseidon};

/// Depth of every membership tree: room for 1,048,576 records per dataset.
pub const MEMBER_DEPTH: usize = 20;
/// Domain tag of patient secrets (ASCII "patient").
pub const SECRET_DOMAIN: u64 = 0x70_61_74_69_65_6e_74;

/// The secret of record `index` in a dataset committed with `salt`.
pub fn patient_secret(salt: Fr, index: usize) -> Fr {
    poseidon::hash(&[salt, Fr::from(SECRET_DOMAIN), Fr::from(index as u64)])
}

/// The membership leaf of one record.
pub fn leaf(secret: Fr, packed: Fr) -> Fr {
    poseidon::hash(&[secret, packed])
}

/// The nullifier a patient reveals when enrolling in a trial.
pub fn nullifier(secret: Fr, trial_id: Fr) -> Fr {
    poseidon::hash(&[secret, trial_id])
}

/// Recomputes a root from a leaf, its index and its siblings (bottom-up).
pub fn root_from_path(leaf: Fr, index: usize, siblings: &[Fr]) -> Fr {
    siblings
        .iter()
        .enumerate()
        .fold(leaf, |node, (level, sibling)| {
            if index >> level & 1 == 0 {
                poseidon::hash(&[node, *sibling])
            } else {
                poseidon::hash(&[*sibling, node])
            }
        })
}

/// A membership tree held in full (about `2n` hashes), for issuing paths.
#[derive(Clone, Debug)]
pub struct MemberTree {
    /// `levels[0]` are the non-empty leaves; `levels[d]` the non-empty nodes at height `d`.
    levels: Vec<Vec<Fr>>,
    /// Hash of an empty subtree of each height.
    empty: Vec<Fr>,
}

impl MemberTree {
    /// Builds the tree of `records` (encoded column values) committed with `salt`.
    pub fn build(layout: &RecordLayout, salt: Fr, records: &[Vec<u64>]) -> Self {
        assert!(records.len() <= 1 << MEMBER_DEPTH, "too many records");
        let mut empty = vec![Fr::ZERO];
        for d in 0..MEMBER_DEPTH {
            empty.push(poseidon::hash(&[empty[d], empty[d]]));
        }
        let leaves: Vec<Fr> = records
            .iter()
            .enumerate()
            .map(|(i, r)| leaf(patient_secret(salt, i), layout.pack_record(r)))
            .collect();
        let mut levels = vec![leaves];
        for d in 0..MEMBER_DEPTH {
            let next = levels[d]
                .chunks(2)
                .map(|pair| poseidon::hash(&[pair[0], pair.get(1).copied().unwrap_or(empty[d])]))
                .collect();
            levels.push(next);
        }
        MemberTree { levels, empty }
    }

    /// The root (the empty tree's root when there are no records).
    pub fn root(&self) -> Fr {
        self.levels[MEMBER_DEPTH]
            .first()
            .copied()
            .unwrap_or(self.empty[MEMBER_DEPTH])
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// The [`MEMBER_DEPTH`] siblings of leaf `index`, bottom-up.
    pub fn path(&self, index: usize) -> Vec<Fr> {
        assert!(index < self.len(), "leaf {index} is outside the tree");
        (0..MEMBER_DEPTH)
            .map(|d| {
                let sibling = (index >> d) ^ 1;
                self.levels[d]
                    .get(sibling)
                    .copied()
                    .unwrap_or(self.empty[d])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{dataset::Dataset, schema::Schema};

    #[test]
    fn paths_open_to_the_root_and_only_for_their_leaf() {
        let schema = Schema::clinical_default();
        let records = Dataset::synthesize(37, 5, 2).records;
        let layout = RecordLayout::new(&schema, 1);
        let salt = Fr::from(99);
        let tree = MemberTree::build(&layout, salt, &records);
        for i in [0, 1, 17, 36] {
            let l = leaf(patient_secret(salt, i), layout.pack_record(&records[i]));
            let path = tree.path(i);
            assert_eq!(path.len(), MEMBER_DEPTH);
            assert_eq!(root_from_path(l, i, &path), tree.root());
            assert_ne!(root_from_path(l, i ^ 1, &path), tree.root());
        }
        let other = MemberTree::build(&layout, Fr::from(100), &records);
        assert_ne!(other.root(), tree.root(), "the salt blinds every leaf");
    }

    #[test]
    fn nullifiers_differ_per_trial_and_patient() {
        let (s1, s2) = (patient_secret(Fr::ONE, 0), patient_secret(Fr::ONE, 1));
        let (t1, t2) = (Fr::from(7), Fr::from(8));
        assert_ne!(nullifier(s1, t1), nullifier(s1, t2));
        assert_ne!(nullifier(s1, t1), nullifier(s2, t1));
    }
}
