// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title IDatasetRegistryEvents
/// @notice The dataset registry's record type, events and errors (no functions, so tests and
/// clients can inherit them).
interface IDatasetRegistryEvents {
    /// @notice A registered dataset.
    /// @param custodian Who holds it now (its registrant, or the address it was last handed
    /// over to: `transferCustodian`/`acceptCustodian`); the only account paid for answers about
    /// it and enrolments from it.
    /// @param recordCount Records committed (aggregate proofs must report the same number).
    /// @param retired Whether new queries may still target it.
    /// @param commitment Poseidon commitment to the salted records, or the hash of a
    /// commit-and-prove circuit's data-column commitments (`ProofGate.dataCommitment`).
    /// @param schemaHash SHA-256 of the dataset schema.
    /// @param circuitId keccak256 of the id of the aggregate circuit that opens `commitment`.
    /// @param memberRoot Root of the per-patient membership tree (0: no trial enrolment).
    /// @param registrant Who registered it, never changed (a custodian rotation keeps it):
    /// with `memberRoot`, what an eligibility proof names (its public input 2), so a copy of
    /// the root registered by another address opens none of the registrant's proofs.
    struct Dataset {
        address custodian;
        uint64 recordCount;
        bool retired;
        bytes32 commitment;
        bytes32 schemaHash;
        bytes32 circuitId;
        bytes32 memberRoot;
        address registrant;
    }

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
    /// @notice A custodian set the smallest cell it releases (its disclosure policy).
    event CellFloorSet(address indexed custodian, uint64 floor);
    /// @notice A custodian offered its dataset to a new address (`to` 0: the offer withdrawn).
    event CustodianTransferStarted(
        uint256 indexed datasetId, address indexed from, address indexed to
    );
    /// @notice The new address accepted: it is now the dataset's custodian, paid for every
    /// answer and enrolment from here on.
    event CustodianTransferred(uint256 indexed datasetId, address indexed from, address indexed to);

    /// @notice The caller registered this commitment before.
    error CommitmentAlreadyRegistered(bytes32 commitment);
    /// @notice The commitment is zero or not a BN254 scalar field element.
    error InvalidCommitment(bytes32 commitment);
    /// @notice The caller registered this membership root before.
    error MemberRootAlreadyRegistered(bytes32 memberRoot);
    /// @notice The membership root is not a BN254 scalar field element.
    error InvalidMemberRoot(bytes32 memberRoot);
    /// @notice `registrant` registered no dataset with this membership root.
    error UnknownMemberRoot(address registrant, bytes32 memberRoot);
    /// @notice No dataset has this id.
    error UnknownDataset(uint256 datasetId);
    /// @notice Only the dataset's custodian may do this.
    error NotCustodian(uint256 datasetId, address caller);
    /// @notice The dataset is already retired.
    error DatasetAlreadyRetired(uint256 datasetId);
    /// @notice Only the address the custodian offered the dataset to may accept it.
    error NotPendingCustodian(uint256 datasetId, address caller);
}

/// @title IDatasetRegistry
/// @notice What the markets read from the dataset registry: commitments published by
/// custodians, each with its schema, record count, circuit id and membership root.
interface IDatasetRegistry is IDatasetRegistryEvents {
    /// @notice Returns a registered dataset; reverts with `UnknownDataset` for an unused id.
    /// @param datasetId The dataset id.
    /// @return The dataset record.
    function dataset(uint256 datasetId) external view returns (Dataset memory);

    /// @notice The smallest cell `custodian` releases (0: the protocol floor alone applies).
    /// @param custodian The custodian.
    /// @return The custodian's floor.
    function cellFloorOf(address custodian) external view returns (uint64);

    /// @notice Returns the dataset `registrant` registered with this membership root (one at
    /// most); reverts with `UnknownMemberRoot` for a root `registrant` did not register (another
    /// address's registration of the same root is another dataset).
    /// @param registrant The address that registered the dataset (not its current custodian
    /// after a rotation).
    /// @param memberRoot A registered, non-zero membership root.
    /// @return datasetId The dataset id.
    /// @return d The dataset record.
    function datasetByMemberRoot(address registrant, bytes32 memberRoot)
        external
        view
        returns (uint256 datasetId, Dataset memory d);
}
