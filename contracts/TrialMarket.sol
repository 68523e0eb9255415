// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Ownable} from "solady/auth/Ownable.sol";
import {ReentrancyGuard} from "solady/utils/ReentrancyGuard.sol";
import {SafeTransferLib} from "solady/utils/SafeTransferLib.sol";
import {DatasetRegistry} from "./DatasetRegistry.sol";
import {ITrialMarketEvents} from "./interfaces/ITrialMarketEvents.sol";

/// @title TrialMarket
/// @notice Recruitment bounties for clinical trials. A sponsor opens a trial (criteria, bounty
/// per eligible patient, enrolment cap, deadline) and escrows `bounty × cap` in ETH. Anyone (the
/// patient, or the custodian referring a batch) enrols patients with a zero-knowledge proof that
/// each one is a record of a registered dataset meeting the criteria with consent; the proof
/// reveals one nullifier per patient and trial, which is spent here, so nobody is counted twice.
/// Each enrolment credits the dataset's custodian, optionally sharing `patientShareBps` with a
/// payout address the proof binds. Payments are pulled; unused escrow returns to the sponsor
/// after the deadline.
/// @dev Public inputs of the eligibility circuit, in order: `[memberRoot, trialId,
/// criteria..., (nullifier, payout) × B]`; an empty slot has nullifier and payout 0.
contract TrialMarket is ITrialMarketEvents, Ownable, ReentrancyGuard {
    /// @dev BN254 scalar field modulus: every public input must be below it.
    uint256 internal constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416711978069531813576695000001;
    /// @notice Trial ids are at least 2^128, so a nullifier can never equal a membership leaf.
    uint256 public constant MIN_TRIAL_ID = 1 << 128;
    /// @notice Gas forwarded to a verifier: a malformed proof can burn all gas it is given.
    uint256 public constant VERIFY_GAS = 1_500_000;
    /// @notice Basis points in a whole.
    uint16 public constant BPS = 10_000;

    struct Trial {
        address sponsor;
        uint64 deadline;
        uint32 cap;
        uint32 enrolled;
        uint16 patientShareBps;
        bool refunded;
        uint32 numCriteria;
        uint256 bounty;
        bytes32 specHash;
        bytes32 schemaHash;
        bytes32 criteriaHash;
    }

    /// @dev An eligibility circuit: its verifier, the schema it was built for, and its shape
    /// (criteria words and patient slots), which fixes its number of public inputs. The
    /// generated verifier reads calldata at fixed offsets and does not check its length, so
    /// the market must: otherwise trailing input words could be moved into the proof bytes.
    struct Circuit {
        address verifier;
        uint32 numCriteria;
        uint32 batch;
        bytes32 schemaHash;
    }

    /// @notice The dataset registry membership roots are read from.
    DatasetRegistry public immutable registry;
    /// @notice Verifier, schema and shape per eligibility circuit id.
    mapping(bytes32 circuitId => Circuit) public circuits;
    /// @notice Criteria words of a schema (2 per value column + the consent purpose), learnt
    /// from its circuits; 0 for a schema no circuit serves.
    mapping(bytes32 schemaHash => uint32) public criteriaCount;
    /// @notice Circuits with a verifier, per schema (when it drops to 0 the schema's criteria
    /// count is forgotten, so a wrong shape can be corrected by removing its circuits).
    mapping(bytes32 schemaHash => uint256) public liveCircuits;
    /// @notice Whether a nullifier was spent in a trial.
    mapping(uint256 trialId => mapping(uint256 nullifier => bool)) public spent;
    /// @notice Credited, not yet withdrawn, ETH per account.
    mapping(address account => uint256) public pendingWithdrawals;
    mapping(uint256 trialId => Trial) internal _trials;

    /// @notice A required address is zero.
    error ZeroAddress();
    /// @notice Constructor arrays differ in length.
    error LengthMismatch();
    /// @notice A verifier must be a deployed contract (or zero, to remove one).
    error NotAContract(address verifier);
    /// @notice A circuit's shape is empty or contradicts the schema's criteria count.
    error InvalidShape(uint32 numCriteria, uint32 batch);
    /// @notice The criteria do not have the schema's number of words (or no circuit serves the
    /// schema).
    error WrongCriteriaCount(uint256 expected, uint256 received);
    /// @notice The trial id is taken, or outside `[MIN_TRIAL_ID, r)`.
    error InvalidTrialId(uint256 trialId);
    /// @notice No trial has this id.
    error UnknownTrial(uint256 trialId);
    /// @notice The deadline is not in the future.
    error DeadlineInPast(uint64 deadline);
    /// @notice Enrolment is closed: the deadline has passed.
    error DeadlinePassed(uint256 trialId, uint64 deadline);
    /// @notice Refunds open only after the deadline.
    error DeadlineNotPassed(uint256 trialId, uint64 deadline);
    /// @notice Bounty and cap must be positive, and the patient share at most 100%.
    error InvalidTerms();
    /// @notice The escrow received differs from bounty × cap.
    error WrongPayment(uint256 expected, uint256 received);
    /// @notice No verifier is set for this eligibility circuit.
    error NoVerifier(bytes32 circuitId);
    /// @notice The circuit, the trial and the dataset do not share one schema.
    error SchemaMismatch(bytes32 expected, bytes32 received);
    /// @notice The number of public inputs does not fit the circuit.
    error WrongInputCount(uint256 expected, uint256 received);
    /// @notice A public input is not below the BN254 scalar field modulus.
    error InputNotInField(uint256 index);
    /// @notice The proof is for another trial.
    error TrialMismatch(uint256 trialId, uint256 received);
    /// @notice The proof is not about the trial's posted criteria.
    error CriteriaMismatch(uint256 trialId);
    /// @notice The dataset of the proof's membership root is retired.
    error DatasetRetired(uint256 datasetId);
    /// @notice The proof enrols nobody.
    error EmptyEnrolment();
    /// @notice A payout is not an address.
    error InvalidPayout(uint256 payout);
    /// @notice This patient is already enrolled in the trial.
    error NullifierSpent(uint256 trialId, uint256 nullifier);
    /// @notice The enrolments would exceed the trial's cap.
    error CapReached(uint256 trialId, uint32 cap);
    /// @notice The verifier rejected the proof.
    error InvalidProof();
    /// @notice Only the trial's sponsor may do this.
    error NotSponsor(uint256 trialId, address caller);
    /// @notice The trial was already refunded.
    error AlreadyRefunded(uint256 trialId);
    /// @notice The caller has no credit.
    error NothingToWithdraw();

    /// @param registry_ The dataset registry.
    /// @param owner_ Who may change verifiers.
    /// @param circuitIds Eligibility circuits whose verifiers are fixed at deployment.
    /// @param circuits_ Verifier, schema and shape of each circuit.
    constructor(
        DatasetRegistry registry_,
        address owner_,
        bytes32[] memory circuitIds,
        Circuit[] memory circuits_
    ) {
        if (address(registry_) == address(0) || owner_ == address(0)) {
            revert ZeroAddress();
        }
        if (circuitIds.length != circuits_.length) revert LengthMismatch();
        registry = registry_;
        _initializeOwner(owner_);
        for (uint256 i; i < circuitIds.length; ++i) {
            _setVerifier(circuitIds[i], circuits_[i]);
        }
    }

    /// @notice Sets, replaces (or, with a zero verifier, removes) the verifier of an
    /// eligibility circuit. Only the owner. The shape must be the one the verifier was generated
    /// for (`contracts/verifiers/eligibility.json`, written with the verifier): the contract
    /// cannot read it from the verifier.
    /// @param circuitId keccak256 of the circuit id.
    /// @param circuit The generated verifier, the schema the circuit was built for, and its
    /// shape (criteria words, patient slots).
    function setVerifier(bytes32 circuitId, Circuit calldata circuit) external onlyOwner {
        _setVerifier(circuitId, circuit);
    }

    /// @notice Opens a trial and escrows `bounty × cap` ETH (send it as value).
    /// @param trialId A fresh id in `[MIN_TRIAL_ID, r)`, chosen at random by the sponsor.
    /// @param specHash SHA-256 of the trial spec (JSON) that produced `criteria`.
    /// @param schemaHash The schema the criteria are written for.
    /// @param criteria The trial's public constants, as the circuit takes them.
    /// @param bounty Payment per enrolled patient.
    /// @param patientShareBps Share of the bounty paid to a patient payout address, if any.
    /// @param cap Maximum number of enrolments.
    /// @param deadline Last timestamp at which enrolments are accepted.
    function openTrial(
        uint256 trialId,
        bytes32 specHash,
        bytes32 schemaHash,
        uint256[] calldata criteria,
        uint256 bounty,
        uint16 patientShareBps,
        uint32 cap,
        uint64 deadline
    ) external payable {
        if (trialId < MIN_TRIAL_ID || trialId >= SNARK_SCALAR_FIELD) {
            revert InvalidTrialId(trialId);
        }
        if (_trials[trialId].sponsor != address(0)) revert InvalidTrialId(trialId);
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline);
        if (bounty == 0 || cap == 0 || patientShareBps > BPS) revert InvalidTerms();
        uint256 expected = criteriaCount[schemaHash];
        if (expected == 0 || criteria.length != expected) {
            revert WrongCriteriaCount(expected, criteria.length);
        }
        for (uint256 i; i < criteria.length; ++i) {
            if (criteria[i] >= SNARK_SCALAR_FIELD) revert InputNotInField(2 + i);
        }
        uint256 total = bounty * cap;
        if (msg.value != total) revert WrongPayment(total, msg.value);
        Trial storage t = _trials[trialId];
        t.sponsor = msg.sender;
        t.deadline = deadline;
        t.cap = cap;
        t.patientShareBps = patientShareBps;
        t.numCriteria = uint32(criteria.length);
        t.bounty = bounty;
        t.specHash = specHash;
        t.schemaHash = schemaHash;
        t.criteriaHash = keccak256(abi.encodePacked(criteria));
        emit TrialOpened(
            trialId,
            msg.sender,
            specHash,
            schemaHash,
            t.criteriaHash,
            criteria,
            bounty,
            patientShareBps,
            cap,
            deadline
        );
    }

    /// @notice Enrols the patients of one eligibility proof: spends each nullifier and credits
    /// the dataset's custodian and each patient's payout address (withdraw with `withdraw`).
    /// @param trialId The trial.
    /// @param circuitId keccak256 of the eligibility circuit the proof is for.
    /// @param publicInputs The proof's public inputs.
    /// @param proof The proof bytes.
    /// @return enrolled Number of patients enrolled.
    function enroll(
        uint256 trialId,
        bytes32 circuitId,
        uint256[] calldata publicInputs,
        bytes calldata proof
    ) external returns (uint256 enrolled) {
        Trial storage t = _trial(trialId);
        if (block.timestamp > t.deadline) revert DeadlinePassed(trialId, t.deadline);
        (uint256 datasetId, address custodian) = _checkInputs(t, trialId, circuitId, publicInputs);
        // Verification is a check: a staticcall with bounded gas, before any state changes. A
        // call to an address without code succeeds with empty data, which the generated
        // verifier also returns on success: so the verifier must still have code.
        address verifier = circuits[circuitId].verifier;
        if (verifier.code.length == 0) revert NoVerifier(circuitId);
        (bool ok, bytes memory ret) =
            verifier.staticcall{gas: VERIFY_GAS}(abi.encodePacked(publicInputs, proof));
        if (!ok || ret.length != 0) revert InvalidProof();
        enrolled = _enroll(t, trialId, datasetId, custodian, publicInputs, keccak256(proof));
    }

    /// @dev Public inputs must be field elements, fit the trial's shape, name this trial and
    /// its criteria, open an active dataset of the trial's schema, and enrol somebody.
    function _checkInputs(
        Trial storage t,
        uint256 trialId,
        bytes32 circuitId,
        uint256[] calldata publicInputs
    ) internal view returns (uint256 datasetId, address custodian) {
        Circuit memory c = circuits[circuitId];
        if (c.verifier == address(0)) revert NoVerifier(circuitId);
        if (c.schemaHash != t.schemaHash) revert SchemaMismatch(t.schemaHash, c.schemaHash);
        uint256 head = 2 + t.numCriteria;
        uint256 n = publicInputs.length;
        if (c.numCriteria != t.numCriteria || n != head + 2 * uint256(c.batch)) {
            revert WrongInputCount(2 + uint256(c.numCriteria) + 2 * uint256(c.batch), n);
        }
        for (uint256 i; i < n; ++i) {
            if (publicInputs[i] >= SNARK_SCALAR_FIELD) revert InputNotInField(i);
        }
        if (publicInputs[1] != trialId) revert TrialMismatch(trialId, publicInputs[1]);
        if (keccak256(abi.encodePacked(publicInputs[2:head])) != t.criteriaHash) {
            revert CriteriaMismatch(trialId);
        }
        DatasetRegistry.Dataset memory d;
        (datasetId, d) = registry.datasetByMemberRoot(bytes32(publicInputs[0]));
        if (d.retired) revert DatasetRetired(datasetId);
        if (d.schemaHash != t.schemaHash) revert SchemaMismatch(t.schemaHash, d.schemaHash);
        custodian = d.custodian;
    }

    /// @dev Effects of a verified proof: spend nullifiers, count, credit, emit.
    function _enroll(
        Trial storage t,
        uint256 trialId,
        uint256 datasetId,
        address custodian,
        uint256[] calldata publicInputs,
        bytes32 proofHash
    ) internal returns (uint256 enrolled) {
        for (uint256 i = 2 + t.numCriteria; i < publicInputs.length; i += 2) {
            if (publicInputs[i] == 0) continue;
            _spend(
                t, trialId, publicInputs[i], publicInputs[i + 1], datasetId, custodian, proofHash
            );
            ++enrolled;
        }
        if (enrolled == 0) revert EmptyEnrolment();
        uint256 total = t.enrolled + enrolled;
        if (total > t.cap) revert CapReached(trialId, t.cap);
        t.enrolled = uint32(total);
    }

    /// @dev Spends one nullifier and credits the custodian and the patient's payout address.
    function _spend(
        Trial storage t,
        uint256 trialId,
        uint256 nullifier,
        uint256 payout,
        uint256 datasetId,
        address custodian,
        bytes32 proofHash
    ) internal {
        if (payout >> 160 != 0) revert InvalidPayout(payout);
        if (spent[trialId][nullifier]) revert NullifierSpent(trialId, nullifier);
        spent[trialId][nullifier] = true;
        address patient = address(uint160(payout));
        uint256 patientAmount = patient == address(0) ? 0 : t.bounty * t.patientShareBps / BPS;
        uint256 custodianAmount = t.bounty - patientAmount;
        pendingWithdrawals[custodian] += custodianAmount;
        if (patientAmount != 0) pendingWithdrawals[patient] += patientAmount;
        emit Enrolled(
            trialId,
            nullifier,
            datasetId,
            custodian,
            patient,
            custodianAmount,
            patientAmount,
            proofHash
        );
    }

    /// @notice After the deadline, credits the sponsor with the bounties of unused places.
    /// @param trialId The trial.
    function refund(uint256 trialId) external {
        Trial storage t = _trial(trialId);
        if (t.sponsor != msg.sender) revert NotSponsor(trialId, msg.sender);
        if (block.timestamp <= t.deadline) revert DeadlineNotPassed(trialId, t.deadline);
        if (t.refunded) revert AlreadyRefunded(trialId);
        t.refunded = true;
        uint256 amount = t.bounty * (t.cap - t.enrolled);
        pendingWithdrawals[msg.sender] += amount;
        emit TrialRefunded(trialId, msg.sender, amount);
    }

    /// @notice Pays out the caller's whole credit.
    function withdraw() external nonReentrant {
        uint256 amount = pendingWithdrawals[msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        pendingWithdrawals[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        SafeTransferLib.safeTransferETH(msg.sender, amount);
    }

    /// @notice Returns a trial.
    /// @param trialId The trial.
    /// @return The trial record.
    function trial(uint256 trialId) external view returns (Trial memory) {
        return _trial(trialId);
    }

    /// @notice Escrow still locked in a trial (places neither filled nor refunded).
    /// @param trialId The trial.
    /// @return The locked amount.
    function locked(uint256 trialId) public view returns (uint256) {
        Trial storage t = _trial(trialId);
        return t.refunded ? 0 : t.bounty * (t.cap - t.enrolled);
    }

    function _trial(uint256 trialId) internal view returns (Trial storage t) {
        t = _trials[trialId];
        if (t.sponsor == address(0)) revert UnknownTrial(trialId);
    }

    function _setVerifier(bytes32 circuitId, Circuit memory c) internal {
        Circuit memory old = circuits[circuitId];
        if (old.verifier != address(0) && --liveCircuits[old.schemaHash] == 0) {
            criteriaCount[old.schemaHash] = 0;
        }
        if (c.verifier != address(0)) {
            if (c.verifier.code.length == 0) revert NotAContract(c.verifier);
            uint32 known = criteriaCount[c.schemaHash];
            if (c.numCriteria == 0 || c.batch == 0 || (known != 0 && known != c.numCriteria)) {
                revert InvalidShape(c.numCriteria, c.batch);
            }
            criteriaCount[c.schemaHash] = c.numCriteria;
            ++liveCircuits[c.schemaHash];
        }
        emit EligibilityVerifierSet(
            circuitId, c.schemaHash, old.verifier, c.verifier, c.numCriteria, c.batch
        );
        circuits[circuitId] = c;
    }
}
