// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title ITrialMarket
/// @notice The trial market's errors and audit trail: which trial asked for what, which
/// nullifier was spent against which dataset with which proof, and who was paid.
interface ITrialMarket {
    /// @notice A trial spec as posted: the SHA-256 that names it (`specHash` in storage and
    /// events) and the document itself, its canonical JSON (criteria in natural units and the
    /// consent purpose: public criteria only, never a record value). The market requires
    /// `sha256(document) == hash` and publishes the document in `SpecPublished`.
    /// @dev One calldata argument rather than two: another two stack slots in the entry
    /// function's ABI decoder are more than the legacy code generator (Yul optimizer off) fits.
    struct Spec {
        bytes32 hash;
        bytes document;
    }

    /// @notice A sponsor opened and funded a trial, under the id `trialIdOf(sponsor, salt)`
    /// derives (the criteria hash a proof must match is
    /// `keccak256(abi.encodePacked(criteria))`). Only datasets of custodians attested by
    /// `accreditor` can enrol.
    event TrialOpened(
        uint256 indexed trialId,
        address indexed sponsor,
        bytes32 indexed specHash,
        bytes32 schemaHash,
        uint256[] criteria,
        uint256 bounty,
        uint16 patientShareBps,
        uint32 cap,
        uint64 deadline,
        address accreditor
    );
    /// @notice The spec document of a trial, published with it: the exact bytes whose SHA-256
    /// is `specHash` (the canonical JSON of the trial spec: inclusion criteria in natural units
    /// and the consent purpose; public criteria only, never a record value), so anyone can read
    /// the criteria in words and check them against the posted criteria words.
    event SpecPublished(uint256 indexed id, bytes32 indexed specHash, bytes spec);
    /// @notice A patient was enrolled: their nullifier is spent and the payees credited.
    event Enrolled(
        uint256 indexed trialId,
        uint256 indexed nullifier,
        uint256 indexed datasetId,
        address custodian,
        address patientPayout,
        uint256 custodianAmount,
        uint256 patientAmount,
        bytes32 proofHash
    );
    /// @notice A batch slot was skipped: its patient was already enrolled in the trial (by an
    /// earlier proof). The batch's other patients are enrolled; nobody is paid twice.
    event EnrolmentSkipped(uint256 indexed trialId, uint256 indexed nullifier);
    /// @notice The unused part of a trial's bounty pool was credited back to its sponsor.
    event TrialRefunded(uint256 indexed trialId, address indexed sponsor, uint256 amount);

    /// @notice The sponsor already opened a trial with this salt (the derived id is taken).
    error TrialIdTaken(uint256 trialId);
    /// @notice The published spec is not the document `specHash` names (`actual` is its
    /// SHA-256).
    error SpecMismatch(bytes32 expected, bytes32 actual);
    /// @notice No trial has this id.
    error UnknownTrial(uint256 trialId);
    /// @notice The deadline is not in the future.
    error DeadlineInPast(uint64 deadline);
    /// @notice Enrolment is closed: the deadline has passed.
    error DeadlinePassed(uint256 trialId, uint64 deadline);
    /// @notice Bounty and cap must be positive, the patient share at most 100%, and an
    /// accreditor named.
    error InvalidTerms();
    /// @notice The trial's accreditor does not attest the dataset's custodian.
    error CustodianNotAccepted(uint256 datasetId, address custodian);
    /// @notice The proof is for another trial.
    error TrialMismatch(uint256 trialId, uint256 received);
    /// @notice The proof's registrant (public input 2) is not an address: `word` ≥ 2^160.
    error InvalidRegistrant(uint256 word);
    /// @notice The proof is not about the trial's posted criteria.
    error CriteriaMismatch(uint256 trialId);
    /// @notice The dataset of the proof's membership root is retired.
    error DatasetRetired(uint256 datasetId);
    /// @notice The proof enrols nobody.
    error EmptyEnrolment();
    /// @notice A payout is not an address.
    error InvalidPayout(uint256 payout);
    /// @notice Every patient of the proof is already enrolled in the trial.
    error NullifierSpent(uint256 trialId, uint256 nullifier);
    /// @notice The enrolments would exceed the trial's cap.
    error CapReached(uint256 trialId, uint32 cap);
}
