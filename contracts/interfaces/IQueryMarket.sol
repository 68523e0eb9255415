// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title IQueryMarket
/// @notice The query market's errors and audit trail: who asked what, against which
/// commitments, with which proof, and who was paid.
interface IQueryMarket {
    /// @notice A query spec as posted: the SHA-256 that names it (`specHash` in storage and
    /// events) and the document itself, its canonical JSON (criteria in natural units and the
    /// consent purpose: public criteria only, never a record value). The market requires
    /// `sha256(document) == hash` and publishes the document in `SpecPublished`.
    /// @dev One calldata argument rather than two: another two stack slots in the entry
    /// function's ABI decoder are more than the legacy code generator (Yul optimizer off) fits.
    struct Spec {
        bytes32 hash;
        bytes document;
    }

    /// @notice A sponsor posted and funded a query (its schema is its targets' schema; the
    /// constants hash a claim must match is `keccak256(abi.encodePacked(constants))`). Only
    /// custodians attested by `accreditor` are paid (address(0): the explicit targets alone).
    event QueryPosted(
        uint256 indexed queryId,
        address indexed sponsor,
        bytes32 indexed specHash,
        uint256[] constants,
        uint256[] datasetIds,
        address token,
        uint256 price,
        uint64 deadline,
        address accreditor
    );
    /// @notice The spec document of a query, published with it: the exact bytes whose SHA-256
    /// is `specHash` (the canonical JSON of the query spec: criteria in natural units, consent
    /// purpose, statistic, minimum cohort; public criteria only, never a record value), so
    /// anyone can read the criteria in words and check them against the posted constants.
    event SpecPublished(uint256 indexed id, bytes32 indexed specHash, bytes spec);
    /// @notice A custodian's proof was verified and the custodian credited, with its results:
    /// matching records (`count`), those whose statistic is not missing (`nonmissing`; `count`
    /// for a circuit without that output), the statistic's sum and sum of squares over them,
    /// and whether the cell was suppressed (then nothing was pooled).
    event Claimed(
        uint256 indexed queryId,
        uint256 indexed datasetId,
        address indexed custodian,
        bytes32 proofHash,
        uint256 count,
        uint256 nonmissing,
        uint256 sum,
        uint256 sumOfSquares,
        bool suppressed,
        uint256 paid
    );
    /// @notice A custodian's attestation proof was verified: the statistic's mean over the
    /// query's cohort reaches the sponsor's threshold over at least `min_cohort` patients
    /// (`verdict` true, and the custodian was credited `paid`, the query's price), or not
    /// (`verdict` false, `paid` 0: the escrow stays for the sponsor's refund). Nothing else
    /// about the cohort is released.
    event Attested(
        uint256 indexed queryId,
        uint256 indexed datasetId,
        address indexed custodian,
        bytes32 proofHash,
        bool verdict,
        uint256 paid
    );
    /// @notice The unclaimed part of a query's escrow was credited back to its sponsor.
    event Refunded(uint256 indexed queryId, address indexed sponsor, uint256 amount);

    /// @notice The published spec is not the document `specHash` names (`actual` is its
    /// SHA-256).
    error SpecMismatch(bytes32 expected, bytes32 actual);
    /// @notice No query has this id.
    error UnknownQuery(uint256 queryId);
    /// @notice The deadline is not in the future.
    error DeadlineInPast(uint64 deadline);
    /// @notice Claims are closed: the deadline has passed.
    error DeadlinePassed(uint256 queryId, uint64 deadline);
    /// @notice A query must target at least one dataset.
    error NoTargets();
    /// @notice Dataset ids must be strictly increasing (so each appears once).
    error TargetsNotStrictlyIncreasing();
    /// @notice A retired dataset cannot be targeted.
    error DatasetRetired(uint256 datasetId);
    /// @notice The price per dataset must be positive.
    error ZeroPrice();
    /// @notice The dataset is not a target of the query.
    error NotTarget(uint256 queryId, uint256 datasetId);
    /// @notice The (query, dataset) pair was already answered.
    error AlreadyClaimed(uint256 queryId, uint256 datasetId);
    /// @notice Only the dataset's custodian may claim for it.
    error NotCustodian(uint256 datasetId, address caller);
    /// @notice The proof is not about the dataset's registered commitment.
    error CommitmentMismatch(uint256 datasetId);
    /// @notice The proof is not about the query's posted constants.
    error ConstantsMismatch(uint256 queryId);
    /// @notice The proof's context is not this claim's (`claimContext`): made for another chain,
    /// market, query or claimant.
    error ContextMismatch(uint256 expected, uint256 actual);
    /// @notice The query's accreditor does not attest the dataset's custodian.
    error CustodianNotAccepted(uint256 datasetId, address custodian);
    /// @notice The query's minimum cell size is below the protocol floor or the custodian's.
    error CellFloor(uint256 minimum, uint256 received);
    /// @notice The proof's record count differs from the registered one.
    error RecordCountMismatch(uint256 expected, uint256 received);
    /// @notice A verified answer releases more non-missing values than matching records (no
    /// circuit of ours can: the verifier is wrong).
    error NonMissingAboveCount(uint256 count, uint256 nonmissing);
    /// @notice The dataset's circuit answers with a verdict and the query asks for numbers, or
    /// the reverse: its verifier was replaced by one of another family since the query was
    /// posted.
    error AnswerKindMismatch(uint256 queryId);
    /// @notice An attestation's verdict is neither 0 nor 1 (no circuit of ours releases that; a
    /// wrong verifier could).
    error VerdictNotABit(uint256 verdict);
}
