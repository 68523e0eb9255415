// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title ITrialMarketEvents
/// @notice The trial market's audit trail: which trial asked for what, which nullifier was
/// spent against which dataset with which proof, and who was paid.
interface ITrialMarketEvents {
    /// @notice The verifier of an eligibility circuit was set or changed.
    event EligibilityVerifierSet(
        bytes32 indexed circuitId,
        bytes32 indexed schemaHash,
        address previous,
        address verifier,
        uint32 numCriteria,
        uint32 batch
    );
    /// @notice A sponsor opened and funded a trial.
    event TrialOpened(
        uint256 indexed trialId,
        address indexed sponsor,
        bytes32 indexed specHash,
        bytes32 schemaHash,
        bytes32 criteriaHash,
        uint256[] criteria,
        uint256 bounty,
        uint16 patientShareBps,
        uint32 cap,
        uint64 deadline
    );
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
    /// @notice The unused part of a trial's bounty pool was credited back to its sponsor.
    event TrialRefunded(uint256 indexed trialId, address indexed sponsor, uint256 amount);
    /// @notice An account withdrew its credit.
    event Withdrawn(address indexed account, uint256 amount);
}
