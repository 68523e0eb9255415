// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title IProofGated
/// @notice A contract that pays on proofs checked by generated verifiers: the circuits it
/// accepts (verifier, schema, shape), their events and the errors of its one verify gate.
/// Types, events and errors only, so tests and clients can inherit it.
interface IProofGated {
    /// @notice A circuit a market accepts proofs of.
    /// @param verifier The generated verifier contract (0: none).
    /// @param numConstants Public constants of the queries or trials the circuit answers (query
    /// constants for an aggregate circuit, trial criteria for an eligibility circuit).
    /// @param batch Patient slots of an eligibility circuit; 0 for an aggregate circuit.
    /// @param cells Cells an aggregate circuit releases per proof: 1 (a count, its sums and a
    /// suppressed flag), or 0 for a commit-and-prove attestation, which releases one verdict
    /// instead (issue #13: "the mean reaches the threshold over at least `min_cohort`
    /// patients"); 0 for an eligibility circuit.
    /// @param dataColumns Data columns W of a commit-and-prove aggregate circuit (issue #8,
    /// design B): the dataset commitment is not a public input but the KZG commitment of the
    /// proof's first W advice columns, the first `64 * W` bytes of every proof (W points, each
    /// x then y as 32-byte big-endian words), which the registry holds as
    /// `keccak256(proof[:64 * W]) mod r` (`ProofGate.dataCommitment`). 0: the commitment is
    /// public input 0 (every other circuit).
    /// @param schemaHash SHA-256 of the schema the circuit was built for.
    /// @dev The generated verifier reads calldata at fixed offsets and does not check its
    /// length, so the number of public inputs it takes is fixed here, per circuit, from the
    /// manifest written with the verifier (`contracts/verifiers/verifiers.json`): the contract
    /// cannot read it from the verifier.
    /// Verifier, constants count, batch, cells and data columns share one storage slot.
    struct Circuit {
        address verifier;
        uint32 numConstants;
        uint16 batch;
        uint16 cells;
        uint32 dataColumns;
        bytes32 schemaHash;
    }

    /// @notice The verifier of a circuit was set, replaced or (verifier 0) removed.
    event VerifierSet(
        bytes32 indexed circuitId,
        bytes32 indexed schemaHash,
        address previous,
        address verifier,
        uint32 numConstants,
        uint16 batch,
        uint16 cells,
        uint32 dataColumns
    );

    /// @notice A required address is zero.
    error ZeroAddress();
    /// @notice Circuit ids and circuits differ in length.
    error LengthMismatch();
    /// @notice The owner proposed a verifier for a circuit; anyone may apply it from `eta` on.
    /// The notice lets sponsors and custodians see a verifier change coming.
    event VerifierProposed(
        bytes32 indexed circuitId,
        bytes32 indexed schemaHash,
        address verifier,
        uint32 numConstants,
        uint16 batch,
        uint16 cells,
        uint32 dataColumns,
        uint64 eta
    );
    /// @notice The owner withdrew a pending verifier proposal.
    event VerifierProposalCancelled(bytes32 indexed circuitId);

    /// @notice A proof of `circuitId` passed the gate: `verifier` (the one set for the circuit
    /// at that moment) accepted it. With `VerifierSet`, this lets an auditor rebuild which
    /// verifier checked which proof, and re-verify it from the transaction's calldata.
    event ProofAccepted(bytes32 indexed circuitId, address indexed verifier, bytes32 proofHash);

    /// @notice A verifier must be a deployed contract (or zero, to remove one). A call to an
    /// address without code succeeds with empty return data, which is also what a generated
    /// verifier returns on success.
    error NotAContract(address verifier);
    /// @notice No verifier proposal is pending for this circuit.
    error NoPendingVerifier(bytes32 circuitId);
    /// @notice The proposal's notice period has not run out.
    error VerifierNotYetDue(bytes32 circuitId, uint64 eta);
    /// @notice A circuit's shape is empty or of the wrong kind for this market (constants,
    /// patient slots, cells or data columns).
    error InvalidShape(uint32 numConstants, uint16 batch, uint16 cells);
    /// @notice A live circuit of the schema takes as many constants but has another public
    /// input layout (commitment as input 0, commit-and-prove releasing a cell, or
    /// commit-and-prove releasing a verdict): a query's constants would be read under two
    /// layouts.
    error LayoutConflict(bytes32 schemaHash, uint32 numConstants);
    /// @notice No verifier is set for this circuit.
    error NoVerifier(bytes32 circuitId);
    /// @notice The constants do not have a number of words a circuit takes: at posting, no live
    /// circuit of the schema takes `received` (`expected` is one count that some does, 0 if
    /// none serves the schema); at a claim or enrolment, the circuit takes `expected`.
    error WrongConstantsCount(uint256 expected, uint256 received);
    /// @notice The circuit, the query or trial and the dataset do not share one schema.
    error SchemaMismatch(bytes32 expected, bytes32 received);
    /// @notice The number of public inputs is not the circuit's.
    error WrongInputCount(uint256 expected, uint256 received);
    /// @notice A public input is not below the BN254 scalar field modulus.
    error InputNotInField(uint256 index);
    /// @notice The verifier rejected the proof.
    error InvalidProof();
    /// @notice The proof is shorter than the data-column commitments it must start with
    /// (`needed` = 64 bytes per data column).
    error ProofTooShort(uint256 needed, uint256 length);
}
