// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {IDatasetRegistryEvents} from "./interfaces/IDatasetRegistryEvents.sol";

/// @title DatasetRegistry
/// @notice Custodians publish commitments to their datasets here: a Poseidon commitment over
/// salted, schema-typed records, plus the schema hash, the record count and the id of the
/// circuit whose proofs open it, and the root of the dataset's per-patient membership tree
/// (what trial eligibility proofs open). Records never leave the custodian; this is all the
/// chain sees.
/// @dev Dataset ids start at 1. A commitment and a non-zero membership root are each accepted
/// once, ever (also after retirement), so a proof for either always names one dataset and one
/// custodian.
contract DatasetRegistry is IDatasetRegistryEvents {
    /// @dev BN254 scalar field modulus: commitments are field elements.
    uint256 internal constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416711978069531813576695000001;

    struct Dataset {
        address custodian;
        uint64 recordCount;
        bool retired;
        bytes32 commitment;
        bytes32 schemaHash;
        bytes32 circuitId;
        bytes32 memberRoot;
    }

    /// @notice The commitment was registered before.
    error CommitmentAlreadyRegistered(bytes32 commitment);
    /// @notice The commitment is zero or not a BN254 scalar field element.
    error InvalidCommitment(bytes32 commitment);
    /// @notice The membership root was registered before.
    error MemberRootAlreadyRegistered(bytes32 memberRoot);
    /// @notice The membership root is not a BN254 scalar field element.
    error InvalidMemberRoot(bytes32 memberRoot);
    /// @notice No dataset has this membership root.
    error UnknownMemberRoot(bytes32 memberRoot);
    /// @notice No dataset has this id.
    error UnknownDataset(uint256 datasetId);
    /// @notice Only the dataset's custodian may do this.
    error NotCustodian(uint256 datasetId, address caller);
    /// @notice The dataset is already retired.
    error DatasetAlreadyRetired(uint256 datasetId);

    /// @notice Number of datasets registered so far (the last id).
    uint256 public datasetCount;
    /// @notice Whether a commitment has ever been registered.
    mapping(bytes32 commitment => bool) public commitmentUsed;
    /// @notice The dataset of a non-zero membership root (0: none).
    mapping(bytes32 memberRoot => uint256) public datasetOfMemberRoot;
    mapping(uint256 datasetId => Dataset) internal _datasets;

    /// @notice Registers a dataset commitment; the caller becomes its custodian.
    /// @param commitment The Poseidon commitment (a BN254 scalar field element, non-zero).
    /// @param schemaHash SHA-256 of the dataset schema.
    /// @param recordCount Number of records committed (proofs must report the same number).
    /// @param circuitId keccak256 of the id of the circuit that opens this commitment.
    /// @param memberRoot Root of the per-patient membership tree, or 0 for a dataset whose
    /// patients cannot be enrolled in trials.
    /// @return datasetId The new dataset's id.
    function register(
        bytes32 commitment,
        bytes32 schemaHash,
        uint64 recordCount,
        bytes32 circuitId,
        bytes32 memberRoot
    ) external returns (uint256 datasetId) {
        if (commitment == 0 || uint256(commitment) >= SNARK_SCALAR_FIELD) {
            revert InvalidCommitment(commitment);
        }
        if (commitmentUsed[commitment]) revert CommitmentAlreadyRegistered(commitment);
        if (uint256(memberRoot) >= SNARK_SCALAR_FIELD) revert InvalidMemberRoot(memberRoot);
        commitmentUsed[commitment] = true;
        datasetId = ++datasetCount;
        if (memberRoot != 0) {
            if (datasetOfMemberRoot[memberRoot] != 0) {
                revert MemberRootAlreadyRegistered(memberRoot);
            }
            datasetOfMemberRoot[memberRoot] = datasetId;
        }
        _datasets[datasetId] = Dataset({
            custodian: msg.sender,
            recordCount: recordCount,
            retired: false,
            commitment: commitment,
            schemaHash: schemaHash,
            circuitId: circuitId,
            memberRoot: memberRoot
        });
        emit DatasetRegistered(
            datasetId, msg.sender, commitment, schemaHash, recordCount, circuitId, memberRoot
        );
    }

    /// @notice Retires a dataset: it can no longer be targeted by new queries. Queries already
    /// targeting it may still be answered.
    /// @param datasetId The dataset to retire.
    function retire(uint256 datasetId) external {
        Dataset storage d = _dataset(datasetId);
        if (d.custodian != msg.sender) revert NotCustodian(datasetId, msg.sender);
        if (d.retired) revert DatasetAlreadyRetired(datasetId);
        d.retired = true;
        emit DatasetRetired(datasetId, msg.sender);
    }

    /// @notice Returns a registered dataset.
    /// @param datasetId The dataset id.
    /// @return The dataset record.
    function dataset(uint256 datasetId) external view returns (Dataset memory) {
        return _dataset(datasetId);
    }

    /// @notice Returns the dataset whose membership tree has this root.
    /// @param memberRoot A registered, non-zero membership root.
    /// @return datasetId The dataset id.
    /// @return d The dataset record.
    function datasetByMemberRoot(bytes32 memberRoot)
        external
        view
        returns (uint256 datasetId, Dataset memory d)
    {
        datasetId = datasetOfMemberRoot[memberRoot];
        if (memberRoot == 0 || datasetId == 0) revert UnknownMemberRoot(memberRoot);
        d = _datasets[datasetId];
    }

    function _dataset(uint256 datasetId) internal view returns (Dataset storage d) {
        d = _datasets[datasetId];
        if (d.custodian == address(0)) revert UnknownDataset(datasetId);
    }
}
