//! Record packing and the dataset commitment.
//!
//! **Packing.** A record slot is `1 + Σ bits(column)` bits: a `present` bit (0 for padding
//! slots) and then every column value, least significant first. `P = ⌊252 / slot_bits⌋` slots
//! pack into one BN254 scalar (`Σ slot_j · 2^(j·slot_bits)`), so the packing is injective.
//!
//! **Commitment.** Packed elements are grouped [`LEAF_ELEMENTS`] to a leaf; a leaf is
//! `Poseidon(e_0..e_7)` (3 permutations for 24 records with the default schema). Leaves form a
//! binary Poseidon Merkle tree, padded per level with zero. The public commitment is
//! `Poseidon(salt, root)`: the salt is 254 bits of custodian secret, so the commitment reveals
//! nothing about low-entropy records (it is hiding under the random-oracle model of Poseidon)
//! while the tree binds every packed element (collision resistance).
//!
//! A circuit is built for a *capacity*: a multiple of `P · LEAF_ELEMENTS` records. Slots past
//! the dataset's records are padding (all zero, `present = 0`).

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use halo2_base::halo2_proofs::halo2curves::ff::{Field, FromUniformBytes, PrimeField};
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};

use crate::{poseidon, schema::Schema};

/// Bits of a packed element that carry data. 2^252 < r, so packing never wraps.
pub const PACKED_BITS: u32 = 252;
/// Packed elements per Merkle leaf: 8 inputs cost 3 permutations (⌈(8+1)/3⌉) with no waste.
pub const LEAF_ELEMENTS: usize = 8;

/// How records of one schema are laid out in field elements, for one circuit capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordLayout {
    /// Bit width of each column, in schema order.
    pub column_bits: Vec<u32>,
    /// Bits per slot (present bit + columns).
    pub slot_bits: u32,
    /// Slots per packed element.
    pub slots_per_element: usize,
    /// Records the circuit holds.
    pub capacity: usize,
}

impl RecordLayout {
    /// The layout for `schema` with room for at least `min_capacity` records, rounded up to a
    /// whole number of leaves.
    pub fn new(schema: &Schema, min_capacity: usize) -> Self {
        let slot_bits = schema.record_bits();
        let slots_per_element = (PACKED_BITS / slot_bits) as usize;
        let per_leaf = slots_per_element * LEAF_ELEMENTS;
        let capacity = min_capacity.max(1).div_ceil(per_leaf) * per_leaf;
        RecordLayout {
            column_bits: schema.columns.iter().map(|c| c.bits()).collect(),
            slot_bits,
            slots_per_element,
            capacity,
        }
    }

    /// Number of packed elements.
    pub fn elements(&self) -> usize {
        self.capacity / self.slots_per_element
    }

    /// Number of Merkle leaves.
    pub fn leaves(&self) -> usize {
        self.elements() / LEAF_ELEMENTS
    }

    /// Bit offset of column `c` inside a slot (bit 0 is `present`).
    pub fn column_offset(&self, c: usize) -> u32 {
        1 + self.column_bits[..c].iter().sum::<u32>()
    }

    /// Packs records (encoded column values) into `elements()` field elements, padding with
    /// empty slots.
    pub fn pack(&self, records: &[Vec<u64>]) -> Vec<Fr> {
        assert!(records.len() <= self.capacity, "records exceed capacity");
        let mut slots = records
            .iter()
            .map(|r| Some(r.as_slice()))
            .collect::<Vec<_>>();
        slots.resize(self.capacity, None);
        slots
            .chunks(self.slots_per_element)
            .map(|chunk| self.pack_element(chunk))
            .collect()
    }

    /// Packs one record alone into a field element (slot 0 of an element): the membership
    /// leaf's content, see [`crate::membership`].
    pub fn pack_record(&self, record: &[u64]) -> Fr {
        self.pack_element(&[Some(record)])
    }

    fn pack_element(&self, slots: &[Option<&[u64]>]) -> Fr {
        let mut acc = BigUint::default();
        for (j, slot) in slots.iter().enumerate() {
            let Some(values) = slot else { continue };
            let base = j as u32 * self.slot_bits;
            acc |= BigUint::from(1u8) << base;
            for (c, v) in values.iter().enumerate() {
                acc |= BigUint::from(*v) << (base + self.column_offset(c));
            }
        }
        biguint_to_fr(&acc)
    }
}

/// The Merkle root over packed elements (leaves of [`LEAF_ELEMENTS`], zero-padded levels).
pub fn merkle_root(elements: &[Fr]) -> Fr {
    assert!(!elements.is_empty() && elements.len().is_multiple_of(LEAF_ELEMENTS));
    let mut level: Vec<Fr> = elements.chunks(LEAF_ELEMENTS).map(poseidon::hash).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| poseidon::hash(&[pair[0], pair.get(1).copied().unwrap_or(Fr::ZERO)]))
            .collect();
    }
    level[0]
}

/// The public dataset commitment `Poseidon(salt, merkle_root(elements))`.
pub fn commit(salt: Fr, elements: &[Fr]) -> Fr {
    poseidon::hash(&[salt, merkle_root(elements)])
}

/// A field element as a 0x-prefixed, 32-byte big-endian hex string (the EVM's word order).
pub fn fr_to_hex(x: &Fr) -> String {
    let mut bytes = x.to_repr();
    bytes.reverse();
    format!("0x{}", hex::encode(bytes))
}

/// keccak256 of `data` as a big-endian integer, mod r: what the contracts compute as
/// `uint256(keccak256(data)) % SNARK_SCALAR_FIELD` (claim contexts, data commitments).
pub fn keccak_fr(data: &[u8]) -> Fr {
    let mut wide = [0u8; 64];
    wide[..32].copy_from_slice(alloy::primitives::keccak256(data).as_slice());
    wide[..32].reverse(); // little-endian, the top half zero: the integer mod r
    Fr::from_uniform_bytes(&wide)
}

/// Parses [`fr_to_hex`] output; rejects values ≥ r.
pub fn fr_from_hex(s: &str) -> Option<Fr> {
    let raw = hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()?;
    if raw.len() != 32 {
        return None;
    }
    let mut repr = [0u8; 32];
    repr.copy_from_slice(&raw);
    repr.reverse();
    Option::from(Fr::from_repr(repr))
}

/// Reduces a non-negative integer below r into the field.
pub fn biguint_to_fr(x: &BigUint) -> Fr {
    let mut bytes = x.to_bytes_le();
    assert!(bytes.len() <= 32, "integer too wide for the field");
    bytes.resize(32, 0);
    let repr: [u8; 32] = bytes.try_into().expect("32 bytes");
    Option::from(Fr::from_repr(repr)).expect("integer below the field modulus")
}

/// A field element as an integer.
pub fn fr_to_biguint(x: &Fr) -> BigUint {
    BigUint::from_bytes_le(x.to_repr().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_rounds_capacity_to_leaves() {
        let schema = Schema::clinical_default();
        let layout = RecordLayout::new(&schema, 1000);
        assert_eq!(layout.slots_per_element, 3);
        assert_eq!(layout.capacity, 1008);
        assert_eq!(layout.leaves(), 42);
    }

    #[test]
    fn packing_is_injective_on_present_bits_and_values() {
        let schema = Schema::clinical_default();
        let layout = RecordLayout::new(&schema, 24);
        let rec = vec![40, 1, 5, 65, 120, 250, 1, 3];
        let one = layout.pack(std::slice::from_ref(&rec));
        let zero_record = vec![0; rec.len()];
        let with_empty = layout.pack(&[rec.clone(), zero_record]);
        assert_ne!(
            one, with_empty,
            "an all-zero record differs from a padding slot"
        );
        let mut other = rec.clone();
        other[3] = 66;
        assert_ne!(layout.pack(&[rec]), layout.pack(&[other]));
    }

    #[test]
    fn commitment_depends_on_salt_and_every_element() {
        let elements: Vec<Fr> = (0..24u64).map(Fr::from).collect();
        let c = commit(Fr::from(7), &elements);
        assert_ne!(c, commit(Fr::from(8), &elements));
        let mut changed = elements.clone();
        changed[23] += Fr::ONE;
        assert_ne!(c, commit(Fr::from(7), &changed));
    }

    #[test]
    fn hex_round_trip() {
        let x = Fr::from(0x1234_5678_9abc_def0u64);
        let h = fr_to_hex(&x);
        assert!(h.ends_with("123456789abcdef0") && h.len() == 66);
        assert_eq!(fr_from_hex(&h), Some(x));
        assert_eq!(fr_from_hex(&format!("0x{}", "ff".repeat(32))), None);
    }
}
