// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title IDatasetRegistryEvents
/// @notice Registrations and retirements of dataset commitments.
interface IDatasetRegistryEvents {
    /// @notice A custodian registered a dataset commitment.
    event DatasetRegistered(
        uint256 indexed datasetId,
        address indexed custodian,
        bytes32 indexed commitment,
        bytes32 schemaHash,
        uint64 recordCount,
        bytes32 circuitId,
        bytes32 memberRoot
    );
    /// @notice A custodian retired a dataset: no new queries may target it.
    event DatasetRetired(uint256 indexed datasetId, address indexed custodian);
}
