// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Ownable} from "solady/auth/Ownable.sol";
import {ReentrancyGuard} from "solady/utils/ReentrancyGuard.sol";
import {SafeTransferLib} from "solady/utils/SafeTransferLib.sol";
import {DatasetRegistry} from "./DatasetRegistry.sol";
import {IQueryMarketEvents} from "./interfaces/IQueryMarketEvents.sol";

/// @title QueryMarket
/// @notice Sponsors post cohort queries and escrow payment per targeted dataset; custodians
/// claim by submitting a zero-knowledge proof that the generated verifier of the dataset's
/// circuit accepts. Results of all datasets of a query are pooled on-chain (count, sum, sum of
/// squares), so the sponsor reads a multi-site mean and variance. Payments are pulled.
/// @dev The events are the regulator's audit trail: who asked what (spec hash and public
/// constants), against which commitments, with which proof (its hash; the calldata holds it),
/// and who was paid.
///
/// Public inputs of the aggregate circuit, in order: `[commitment, constants..., records,
/// count, sum, sumOfSquares, suppressed]`.
contract QueryMarket is IQueryMarketEvents, Ownable, ReentrancyGuard {
    /// @dev BN254 scalar field modulus: every public input must be below it.
    uint256 internal constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416711978069531813576695000001;
    /// @notice Gas forwarded to a verifier: a malformed proof can burn all gas it is given.
    uint256 public constant VERIFY_GAS = 1_500_000;
    /// @notice Public inputs after the query constants.
    uint256 internal constant RESULT_INPUTS = 5;

    struct Query {
        address sponsor;
        uint64 deadline;
        bool refunded;
        address token;
        uint32 numConstants;
        uint32 targets;
        uint32 answered;
        uint32 suppressed;
        uint256 price;
        bytes32 specHash;
        bytes32 constantsHash;
        uint256 totalCount;
        uint256 totalSum;
        uint256 totalSumOfSquares;
    }

    /// @notice The dataset registry this market reads commitments from.
    DatasetRegistry public immutable registry;
    /// @notice Verifier contract per circuit id.
    mapping(bytes32 circuitId => address) public verifierOf;
    /// @notice Number of queries posted so far (the last id).
    uint256 public queryCount;
    /// @notice Credited, not yet withdrawn, per token (address(0) = ETH) and account.
    mapping(address token => mapping(address account => uint256)) public pendingWithdrawals;
    /// @notice Whether a dataset is a target of a query.
    mapping(uint256 queryId => mapping(uint256 datasetId => bool)) public isTarget;
    /// @notice Whether a (query, dataset) pair has been answered.
    mapping(uint256 queryId => mapping(uint256 datasetId => bool)) public claimed;
    mapping(uint256 queryId => Query) internal _queries;

    /// @notice A required address is zero.
    error ZeroAddress();
    /// @notice Circuit ids and verifiers differ in length.
    error LengthMismatch();
    /// @notice No query has this id.
    error UnknownQuery(uint256 queryId);
    /// @notice The deadline is not in the future.
    error DeadlineInPast(uint64 deadline);
    /// @notice Claims are closed: the deadline has passed.
    error DeadlinePassed(uint256 queryId, uint64 deadline);
    /// @notice Refunds open only after the deadline.
    error DeadlineNotPassed(uint256 queryId, uint64 deadline);
    /// @notice A query must target at least one dataset.
    error NoTargets();
    /// @notice Dataset ids must be strictly increasing (so each appears once).
    error TargetsNotStrictlyIncreasing();
    /// @notice A retired dataset cannot be targeted.
    error DatasetRetired(uint256 datasetId);
    /// @notice The price per dataset must be positive.
    error ZeroPrice();
    /// @notice The escrow received differs from price × targets.
    error WrongPayment(uint256 expected, uint256 received);
    /// @notice The dataset is not a target of the query.
    error NotTarget(uint256 queryId, uint256 datasetId);
    /// @notice The (query, dataset) pair was already answered.
    error AlreadyClaimed(uint256 queryId, uint256 datasetId);
    /// @notice Only the dataset's custodian may claim for it.
    error NotCustodian(uint256 datasetId, address caller);
    /// @notice No verifier is set for the dataset's circuit.
    error NoVerifier(bytes32 circuitId);
    /// @notice The number of public inputs does not fit the query.
    error WrongInputCount(uint256 expected, uint256 received);
    /// @notice A public input is not below the BN254 scalar field modulus.
    error InputNotInField(uint256 index);
    /// @notice The proof is not about the dataset's registered commitment.
    error CommitmentMismatch(uint256 datasetId);
    /// @notice The proof is not about the query's posted constants.
    error ConstantsMismatch(uint256 queryId);
    /// @notice The proof's record count differs from the registered one.
    error RecordCountMismatch(uint256 expected, uint256 received);
    /// @notice The verifier rejected the proof.
    error InvalidProof();
    /// @notice Only the query's sponsor may do this.
    error NotSponsor(uint256 queryId, address caller);
    /// @notice The query was already refunded.
    error AlreadyRefunded(uint256 queryId);
    /// @notice The caller has no credit in this token.
    error NothingToWithdraw();

    /// @param registry_ The dataset registry.
    /// @param owner_ Who may change verifiers.
    /// @param circuitIds Circuits whose verifiers are fixed at deployment.
    /// @param verifiers The verifier of each circuit id.
    constructor(
        DatasetRegistry registry_,
        address owner_,
        bytes32[] memory circuitIds,
        address[] memory verifiers
    ) {
        if (address(registry_) == address(0) || owner_ == address(0)) {
            revert ZeroAddress();
        }
        registry = registry_;
        _initializeOwner(owner_);
        if (circuitIds.length != verifiers.length) revert LengthMismatch();
        for (uint256 i; i < circuitIds.length; ++i) {
            _setVerifier(circuitIds[i], verifiers[i]);
        }
    }

    /// @notice Sets or replaces the verifier of a circuit. Only the owner; emits VerifierSet.
    /// @param circuitId keccak256 of the circuit id.
    /// @param verifier The generated verifier contract.
    function setVerifier(bytes32 circuitId, address verifier) external onlyOwner {
        _setVerifier(circuitId, verifier);
    }

    /// @notice Posts a query and escrows `price` for each targeted dataset.
    /// @param specHash SHA-256 of the query spec (JSON) that produced `constants`.
    /// @param constants The query's public constants, as the circuit takes them.
    /// @param datasetIds Targeted datasets, strictly increasing, all active.
    /// @param token Payment token, or address(0) for ETH (then send `price * n` as value).
    /// @param price Payment per answered dataset.
    /// @param deadline Last timestamp at which claims are accepted.
    /// @return queryId The new query's id.
    function postQuery(
        bytes32 specHash,
        uint256[] calldata constants,
        uint256[] calldata datasetIds,
        address token,
        uint256 price,
        uint64 deadline
    ) external payable nonReentrant returns (uint256 queryId) {
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline);
        if (datasetIds.length == 0) revert NoTargets();
        if (price == 0) revert ZeroPrice();
        for (uint256 i; i < constants.length; ++i) {
            if (constants[i] >= SNARK_SCALAR_FIELD) revert InputNotInField(i + 1);
        }
        uint256 total = price * datasetIds.length;
        queryId = ++queryCount;
        uint256 previous;
        for (uint256 i; i < datasetIds.length; ++i) {
            uint256 id = datasetIds[i];
            if (id <= previous) revert TargetsNotStrictlyIncreasing();
            previous = id;
            if (registry.dataset(id).retired) revert DatasetRetired(id);
            isTarget[queryId][id] = true;
        }
        Query storage q = _queries[queryId];
        q.sponsor = msg.sender;
        q.deadline = deadline;
        q.token = token;
        q.numConstants = uint32(constants.length);
        q.targets = uint32(datasetIds.length);
        q.price = price;
        q.specHash = specHash;
        q.constantsHash = keccak256(abi.encodePacked(constants));
        _emitPosted(queryId, q, constants, datasetIds);
        _collect(token, total);
    }

    function _emitPosted(
        uint256 queryId,
        Query storage q,
        uint256[] calldata constants,
        uint256[] calldata datasetIds
    ) internal {
        emit QueryPosted(
            queryId,
            q.sponsor,
            q.specHash,
            q.constantsHash,
            constants,
            datasetIds,
            q.token,
            q.price,
            q.deadline
        );
    }

    /// @dev Takes `total` into escrow: exactly `total` ETH, or exactly `total` tokens received
    /// (fee-on-transfer tokens are refused).
    function _collect(address token, uint256 total) internal {
        if (token == address(0)) {
            if (msg.value != total) revert WrongPayment(total, msg.value);
        } else {
            if (msg.value != 0) revert WrongPayment(0, msg.value);
            uint256 before = SafeTransferLib.balanceOf(token, address(this));
            SafeTransferLib.safeTransferFrom(token, msg.sender, address(this), total);
            uint256 received = SafeTransferLib.balanceOf(token, address(this)) - before;
            if (received != total) revert WrongPayment(total, received);
        }
    }

    /// @notice Answers a query for one dataset with a proof; on success the result is pooled
    /// and the custodian credited `price` (withdraw with `withdraw`).
    /// @param queryId The query.
    /// @param datasetId The caller's dataset, a target of the query.
    /// @param publicInputs The proof's public inputs (commitment, constants, results).
    /// @param proof The proof bytes.
    function claim(
        uint256 queryId,
        uint256 datasetId,
        uint256[] calldata publicInputs,
        bytes calldata proof
    ) external {
        Query storage q = _query(queryId);
        if (block.timestamp > q.deadline) revert DeadlinePassed(queryId, q.deadline);
        if (!isTarget[queryId][datasetId]) revert NotTarget(queryId, datasetId);
        if (claimed[queryId][datasetId]) revert AlreadyClaimed(queryId, datasetId);
        DatasetRegistry.Dataset memory d = registry.dataset(datasetId);
        if (d.custodian != msg.sender) revert NotCustodian(datasetId, msg.sender);
        address verifier = verifierOf[d.circuitId];
        if (verifier == address(0)) revert NoVerifier(d.circuitId);
        _checkInputs(q, queryId, datasetId, d, publicInputs);
        // Verification is a check: a staticcall with bounded gas, before any state changes.
        (bool ok, bytes memory ret) =
            verifier.staticcall{gas: VERIFY_GAS}(abi.encodePacked(publicInputs, proof));
        if (!ok || ret.length != 0) revert InvalidProof();
        _record(q, queryId, datasetId, publicInputs[1 + q.numConstants:], keccak256(proof));
    }

    /// @dev Public inputs must be field elements, name the dataset's commitment and record
    /// count, and carry exactly the query's constants.
    function _checkInputs(
        Query storage q,
        uint256 queryId,
        uint256 datasetId,
        DatasetRegistry.Dataset memory d,
        uint256[] calldata publicInputs
    ) internal view {
        uint256 n = q.numConstants;
        if (publicInputs.length != 1 + n + RESULT_INPUTS) {
            revert WrongInputCount(1 + n + RESULT_INPUTS, publicInputs.length);
        }
        for (uint256 i; i < publicInputs.length; ++i) {
            if (publicInputs[i] >= SNARK_SCALAR_FIELD) revert InputNotInField(i);
        }
        if (bytes32(publicInputs[0]) != d.commitment) revert CommitmentMismatch(datasetId);
        if (keccak256(abi.encodePacked(publicInputs[1:1 + n])) != q.constantsHash) {
            revert ConstantsMismatch(queryId);
        }
        if (publicInputs[1 + n] != d.recordCount) {
            revert RecordCountMismatch(d.recordCount, publicInputs[1 + n]);
        }
    }

    /// @dev Effects of a verified claim. `results` = [records, count, sum, sumOfSquares, suppressed].
    function _record(
        Query storage q,
        uint256 queryId,
        uint256 datasetId,
        uint256[] calldata results,
        bytes32 proofHash
    ) internal {
        bool suppressed = results[4] == 1;
        claimed[queryId][datasetId] = true;
        q.answered += 1;
        if (suppressed) {
            q.suppressed += 1;
        } else {
            q.totalCount += results[1];
            q.totalSum += results[2];
            q.totalSumOfSquares += results[3];
        }
        uint256 price = q.price;
        pendingWithdrawals[q.token][msg.sender] += price;
        emit Claimed(
            queryId,
            datasetId,
            msg.sender,
            proofHash,
            results[1],
            results[2],
            results[3],
            suppressed,
            price
        );
    }

    /// @notice After the deadline, credits the sponsor with the escrow of unanswered datasets.
    /// @param queryId The query.
    function refund(uint256 queryId) external {
        Query storage q = _query(queryId);
        if (q.sponsor != msg.sender) revert NotSponsor(queryId, msg.sender);
        if (block.timestamp <= q.deadline) revert DeadlineNotPassed(queryId, q.deadline);
        if (q.refunded) revert AlreadyRefunded(queryId);
        q.refunded = true;
        uint256 amount = q.price * (q.targets - q.answered);
        pendingWithdrawals[q.token][msg.sender] += amount;
        emit Refunded(queryId, msg.sender, amount);
    }

    /// @notice Pays out the caller's whole credit in `token` (address(0) = ETH).
    /// @param token The token to withdraw.
    function withdraw(address token) external nonReentrant {
        uint256 amount = pendingWithdrawals[token][msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        pendingWithdrawals[token][msg.sender] = 0;
        emit Withdrawn(msg.sender, token, amount);
        if (token == address(0)) {
            SafeTransferLib.safeTransferETH(msg.sender, amount);
        } else {
            SafeTransferLib.safeTransfer(token, msg.sender, amount);
        }
    }

    /// @notice Returns a query, including its pooled results.
    /// @param queryId The query.
    /// @return The query record.
    function query(uint256 queryId) external view returns (Query memory) {
        return _query(queryId);
    }

    /// @notice Escrow still locked in a query (not yet claimed or refunded).
    /// @param queryId The query.
    /// @return The locked amount.
    function locked(uint256 queryId) public view returns (uint256) {
        Query storage q = _query(queryId);
        return q.refunded ? 0 : q.price * (q.targets - q.answered);
    }

    function _query(uint256 queryId) internal view returns (Query storage q) {
        q = _queries[queryId];
        if (q.sponsor == address(0)) revert UnknownQuery(queryId);
    }

    function _setVerifier(bytes32 circuitId, address verifier) internal {
        emit VerifierSet(circuitId, verifierOf[circuitId], verifier);
        verifierOf[circuitId] = verifier;
    }
}
