// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {IDatasetRegistry} from "./interfaces/IDatasetRegistry.sol";
import {ProofGate} from "./libraries/ProofGate.sol";

/// @title DatasetRegistry
/// @notice Custodians publish commitments to their datasets here: a Poseidon commitment over
/// salted, schema-typed records (or, for a commit-and-prove circuit, the hash of its data
/// columns' KZG commitments, `ProofGate.dataCommitment`), plus the schema hash, the record count and the id of the
/// circuit whose proofs open it, and the root of the dataset's per-patient membership tree
/// (what trial eligibility proofs open). Records never leave the custodian; this is all the
/// chain sees.
/// @dev Storage: `datasetCount`, `commitmentUsed`, `datasetOfMemberRoot`, `_datasets`,
/// `cellFloorOf`, `pendingCustodian`. Dataset ids start at 1. Uniqueness is per registrant (the
/// address that called `register`, kept in `Dataset.registrant` and never changed): one
/// registrant registers a commitment, and a non-zero membership root, once, ever (also after
/// retirement), so a proof that names a registrant and a root names one dataset. Another address
/// may register a copy: harmless (issue #14), since its registration opens no proof. An
/// eligibility proof names its registrant (a public input), and an aggregate claim is bound to
/// its claimant by the claim context, so a copier can neither block the hospital's own
/// registration by front-running it nor be paid for the hospital's proofs.
contract DatasetRegistry is IDatasetRegistry {
    /// @notice Number of datasets registered so far (the last id).
    uint256 public datasetCount;
    /// @notice Whether `registrant` has ever registered a commitment.
    mapping(address registrant => mapping(bytes32 commitment => bool)) public commitmentUsed;
    /// @notice The dataset `registrant` registered with a non-zero membership root (0: none).
    mapping(address registrant => mapping(bytes32 memberRoot => uint256)) public
        datasetOfMemberRoot;
    mapping(uint256 datasetId => Dataset) internal _datasets;
    /// @inheritdoc IDatasetRegistry
    mapping(address custodian => uint64) public cellFloorOf;
    /// @notice The address a dataset was offered to by its custodian (0: none).
    mapping(uint256 datasetId => address) public pendingCustodian;

    /// @notice Registers a dataset commitment; the caller becomes its registrant (for good) and
    /// its custodian (until it hands the dataset over). Reverts if the caller registered the
    /// same commitment, or the same non-zero membership root, before; another address's
    /// registration of them does not stand in the way.
    /// @param commitment The Poseidon commitment, or a commit-and-prove circuit's
    /// `ProofGate.dataCommitment` (a BN254 scalar field element, non-zero).
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
        if (commitment == 0 || uint256(commitment) >= ProofGate.SNARK_SCALAR_FIELD) {
            revert InvalidCommitment(commitment);
        }
        if (commitmentUsed[msg.sender][commitment]) revert CommitmentAlreadyRegistered(commitment);
        if (uint256(memberRoot) >= ProofGate.SNARK_SCALAR_FIELD) {
            revert InvalidMemberRoot(memberRoot);
        }
        commitmentUsed[msg.sender][commitment] = true;
        datasetId = ++datasetCount;
        if (memberRoot != 0) {
            if (datasetOfMemberRoot[msg.sender][memberRoot] != 0) {
                revert MemberRootAlreadyRegistered(memberRoot);
            }
            datasetOfMemberRoot[msg.sender][memberRoot] = datasetId;
        }
        _datasets[datasetId] = Dataset({
            custodian: msg.sender,
            recordCount: recordCount,
            retired: false,
            commitment: commitment,
            schemaHash: schemaHash,
            circuitId: circuitId,
            memberRoot: memberRoot,
            registrant: msg.sender
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

    /// @notice Offers a dataset to a new custodian address (a key rotation, or a hand-over), who
    /// must accept it; `to` 0 withdraws an offer. The current custodian stays in charge until
    /// then. Emits `CustodianTransferStarted`.
    /// @dev The new address's own cell floor and accreditations apply from the hand-over: a
    /// market paying only accredited custodians needs the new address accredited too.
    /// @param datasetId The caller's dataset.
    /// @param to The new custodian address, or 0.
    function transferCustodian(uint256 datasetId, address to) external {
        Dataset storage d = _dataset(datasetId);
        if (d.custodian != msg.sender) revert NotCustodian(datasetId, msg.sender);
        pendingCustodian[datasetId] = to;
        emit CustodianTransferStarted(datasetId, msg.sender, to);
    }

    /// @notice Accepts a dataset offered to the caller: the caller becomes its custodian.
    /// Emits `CustodianTransferred`.
    /// @param datasetId The dataset offered to the caller.
    function acceptCustodian(uint256 datasetId) external {
        Dataset storage d = _dataset(datasetId);
        if (msg.sender == address(0) || pendingCustodian[datasetId] != msg.sender) {
            revert NotPendingCustodian(datasetId, msg.sender);
        }
        address from = d.custodian;
        delete pendingCustodian[datasetId];
        d.custodian = msg.sender;
        emit CustodianTransferred(datasetId, from, msg.sender);
    }

    /// @notice Sets the smallest cell the caller, as a custodian, releases: a query whose
    /// `min_cohort` is below it cannot be claimed against the caller's datasets (the protocol
    /// floor of the markets applies anyway). Emits `CellFloorSet`.
    /// @param floor The floor (0 to defer to the protocol floor).
    function setCellFloor(uint64 floor) external {
        cellFloorOf[msg.sender] = floor;
        emit CellFloorSet(msg.sender, floor);
    }

    /// @inheritdoc IDatasetRegistry
    function dataset(uint256 datasetId) external view returns (Dataset memory) {
        return _dataset(datasetId);
    }

    /// @inheritdoc IDatasetRegistry
    function datasetByMemberRoot(address registrant, bytes32 memberRoot)
        external
        view
        returns (uint256 datasetId, Dataset memory d)
    {
        datasetId = datasetOfMemberRoot[registrant][memberRoot];
        if (memberRoot == 0 || datasetId == 0) revert UnknownMemberRoot(registrant, memberRoot);
        d = _datasets[datasetId];
    }

    function _dataset(uint256 datasetId) internal view returns (Dataset storage d) {
        d = _datasets[datasetId];
        if (d.custodian == address(0)) revert UnknownDataset(datasetId);
    }
}
