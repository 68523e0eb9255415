// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title IQueryMarketEvents
/// @notice The market's audit trail: who asked what, against which commitments, with which
/// proof, and who was paid.
interface IQueryMarketEvents {
    /// @notice The verifier of a circuit was set or changed.
    event VerifierSet(bytes32 indexed circuitId, address previous, address verifier);
    /// @notice A sponsor posted and funded a query.
    event QueryPosted(
        uint256 indexed queryId,
        address indexed sponsor,
        bytes32 indexed specHash,
        bytes32 constantsHash,
        uint256[] constants,
        uint256[] datasetIds,
        address token,
        uint256 price,
        uint64 deadline
    );
    /// @notice A custodian's proof was verified and the custodian credited.
    event Claimed(
        uint256 indexed queryId,
        uint256 indexed datasetId,
        address indexed custodian,
        bytes32 proofHash,
        uint256 count,
        uint256 sum,
        uint256 sumOfSquares,
        bool suppressed,
        uint256 paid
    );
    /// @notice The unclaimed part of a query's escrow was credited back to its sponsor.
    event Refunded(uint256 indexed queryId, address indexed sponsor, uint256 amount);
    /// @notice An account withdrew its credit.
    event Withdrawn(address indexed account, address indexed token, uint256 amount);
}
