//! The per-patient membership tree: what eligibility proofs open.
//!
//! The aggregate commitment packs three records per field element and 24 per leaf, which is
//! what makes cohort statistics cheap, but a patient cannot be handed a path into it without
//! also being handed 23 neighbours' records. So every committed dataset also gets a
//! **membership tree** with one leaf per record:
//!
//! * **the patient's identity** (in the manner of Semaphore identities): the patient makes a
//!   random `secret` and gives the custodian only its commitment `identity = Poseidon(
//!   IDENTITY_DOMAIN, secret)` ([`Identity`]). The custodian never learns the secret, so it
//!   cannot compute the patient's nullifiers, prove for them or enrol them ahead of them;
//! * `blind_i = Poseidon(salt, BLIND_DOMAIN, i)`: the leaf's blinding, derived from the dataset
//!   salt (the custodian re-issues a credential without storing anything more); a sibling hash
//!   in someone else's path reveals nothing about a low-entropy record;
//! * `leaf_i = Poseidon(blind_i, packed_i, identity_i)` with `packed_i` the record packed alone
//!   (present bit + fields, as in the aggregate layout) and `identity_i` 0 for a record whose
//!   patient gave no identity (no secret opens it: that record cannot be enrolled);
//! * a binary Poseidon tree of fixed depth [`MEMBER_DEPTH`] (2^20 records), empty leaves zero.
//!
//! The root is public: it is registered next to the aggregate commitment, in the same
//! transaction, by the same custodian. A trial nullifier is `Poseidon(secret, trial_id)`: one
//! per patient and trial, unlinkable across trials, computable by the patient alone.

use halo2_base::halo2_proofs::halo2curves::{bn256::Fr, ff::Field};

use crate::{commitment::RecordLayout, poseidon};

/// Depth of every membership tree: room for 1,048,576 records per dataset.
pub const MEMBER_DEPTH: usize = 20;
/// Domain tag of leaf blindings (ASCII "patient").
pub const BLIND_DOMAIN: u64 = 0x70_61_74_69_65_6e_74;
/// Domain tag of identity commitments (ASCII "identity").
pub const IDENTITY_DOMAIN: u64 = 0x69_64_65_6e_74_69_74_79;

/// A patient's identity: a secret only the patient holds. Its [`Identity::commitment`] is all
/// the custodian receives (and puts in the patient's leaf).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The secret (never leaves the patient, or whoever the patient hands it to).
    pub secret: Fr,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("commitment", &self.commitment())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// A fresh identity from `rng` (the patient's own randomness).
    pub fn generate(rng: &mut impl rand::RngCore) -> Self {
        Identity {
            secret: Fr::random(rng),
        }
    }

    /// `Poseidon(IDENTITY_DOMAIN, secret)`: what the patient gives the custodian.
    pub fn commitment(&self) -> Fr {
        identity_commitment(self.secret)
    }

    /// The nullifier this patient reveals when enrolling in `trial_id`.
    pub fn nullifier(&self, trial_id: Fr) -> Fr {
        nullifier(self.secret, trial_id)
    }
}

/// The commitment of an identity secret.
pub fn identity_commitment(secret: Fr) -> Fr {
    poseidon::hash(&[Fr::from(IDENTITY_DOMAIN), secret])
}

/// The blinding of leaf `index` in a dataset committed with `salt` (the custodian's).
pub fn leaf_blind(salt: Fr, index: usize) -> Fr {
    poseidon::hash(&[salt, Fr::from(BLIND_DOMAIN), Fr::from(index as u64)])
}

/// The membership leaf of one record: its blinding, the packed record and the patient's
/// identity commitment (0: none).
pub fn leaf(blind: Fr, packed: Fr, identity: Fr) -> Fr {
    poseidon::hash(&[blind, packed, identity])
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
    /// Builds the tree of `records` (encoded column values) committed with `salt`, each with
    /// its patient's identity commitment (`identities[i]`, 0 for none).
    pub fn build(layout: &RecordLayout, salt: Fr, records: &[Vec<u64>], identities: &[Fr]) -> Self {
        assert!(records.len() <= 1 << MEMBER_DEPTH, "too many records");
        assert_eq!(
            records.len(),
            identities.len(),
            "one identity (or 0) per record"
        );
        let mut empty = vec![Fr::ZERO];
        for d in 0..MEMBER_DEPTH {
            empty.push(poseidon::hash(&[empty[d], empty[d]]));
        }
        let leaves: Vec<Fr> = records
            .iter()
            .enumerate()
            .map(|(i, r)| leaf(leaf_blind(salt, i), layout.pack_record(r), identities[i]))
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
        let ids: Vec<Fr> = (0..37)
            .map(|i| identity_commitment(Fr::from(1000 + i)))
            .collect();
        let tree = MemberTree::build(&layout, salt, &records, &ids);
        for i in [0, 1, 17, 36] {
            let l = leaf(leaf_blind(salt, i), layout.pack_record(&records[i]), ids[i]);
            let path = tree.path(i);
            assert_eq!(path.len(), MEMBER_DEPTH);
            assert_eq!(root_from_path(l, i, &path), tree.root());
            assert_ne!(root_from_path(l, i ^ 1, &path), tree.root());
        }
        let other = MemberTree::build(&layout, Fr::from(100), &records, &ids);
        assert_ne!(other.root(), tree.root(), "the salt blinds every leaf");
        let mut moved = ids.clone();
        moved.swap(3, 4);
        let swapped = MemberTree::build(&layout, salt, &records, &moved);
        assert_ne!(
            swapped.root(),
            tree.root(),
            "identities are bound to their records"
        );
    }

    #[test]
    fn nullifiers_differ_per_trial_and_patient() {
        let (s1, s2) = (Fr::from(5), Fr::from(6));
        let (t1, t2) = (Fr::from(7), Fr::from(8));
        assert_ne!(nullifier(s1, t1), nullifier(s1, t2));
        assert_ne!(nullifier(s1, t1), nullifier(s2, t1));
    }
}
