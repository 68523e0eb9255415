// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {IAccreditationRegistry} from "./interfaces/IAccreditationRegistry.sol";
import {IDatasetRegistry} from "./interfaces/IDatasetRegistry.sol";
import {ITrialMarket} from "./interfaces/ITrialMarket.sol";
import {ProofGate} from "./libraries/ProofGate.sol";
import {ProofGated} from "./base/ProofGated.sol";
import {ConsentPurposes} from "./base/ConsentPurposes.sol";
import {Escrow} from "./base/Escrow.sol";

/// @title TrialMarket
/// @notice Recruitment bounties for clinical trials. A sponsor opens a trial (criteria, bounty
/// per eligible patient, enrolment cap, deadline) and escrows `bounty × cap` in ETH; the trial's
/// id is derived from the chain, this market, the sponsor and a salt (`trialIdOf`). Anyone (the
/// patient, or the custodian referring a batch) enrols patients with a zero-knowledge proof that
/// each one is a record of a registered dataset meeting the criteria with consent; the proof
/// reveals one nullifier per patient and trial, which is spent here, so nobody is counted twice.
/// Each enrolment credits the dataset's custodian, optionally sharing `patientShareBps` with a
/// payout address the proof binds. Payments are pulled; unused escrow returns to the sponsor
/// after the deadline.
/// @dev Public inputs of the eligibility circuit, in order: `[memberRoot, trialId, registrant,
/// criteria..., (nullifier, payout) × B]`, exactly `3 + numConstants + 2B` words; an empty slot
/// has nullifier and payout 0. `registrant` is the address (below 2^160) that registered the
/// dataset of `memberRoot` in the registry: the proof names one registration, so another
/// address's copy of the root opens none of its proofs (issue #14, registration squatting).
///
/// Storage after the bases (`ProofGated`, `ConsentPurposes`, `Escrow`): `registry` and `accreditations`
/// (immutable), `spent`,
/// `_trials`. Credits are in ETH (token address(0)).
contract TrialMarket is ITrialMarket, ProofGated, ConsentPurposes, Escrow {
    /// @notice Trial ids are at least 2^128, so a nullifier can never equal a membership leaf.
    uint256 public constant MIN_TRIAL_ID = 1 << 128;
    /// @notice Basis points in a whole.
    uint16 public constant BPS = 10_000;
    /// @notice Index of the first criteria word in an eligibility proof's public inputs (after
    /// `memberRoot`, `trialId` and `registrant`).
    uint256 public constant CRITERIA_AT = 3;
    /// @dev Index of the registrant in an eligibility proof's public inputs.
    uint256 internal constant REGISTRANT_AT = 2;

    /// @notice An open trial.
    struct Trial {
        address sponsor;
        uint64 deadline;
        uint32 cap;
        uint32 enrolled;
        uint16 patientShareBps;
        bool refunded;
        uint32 numCriteria;
        address accreditor;
        uint256 bounty;
        bytes32 specHash;
        bytes32 schemaHash;
        bytes32 criteriaHash;
    }

    /// @notice The dataset registry membership roots are read from.
    IDatasetRegistry public immutable registry;
    /// @notice Where custodians' accreditations are read from.
    IAccreditationRegistry public immutable accreditations;
    /// @notice Whether a nullifier was spent in a trial.
    mapping(uint256 trialId => mapping(uint256 nullifier => bool)) public spent;
    mapping(uint256 trialId => Trial) internal _trials;

    /// @param registry_ The dataset registry.
    /// @param accreditations_ The accreditation registry.
    /// @param owner_ Who may change verifiers.
    /// @param circuitIds Eligibility circuits whose verifiers are set at deployment.
    /// @param circuits_ Verifier, schema and shape (criteria words, patient slots) of each.
    /// @param purposes_ The consent purposes of each schema a trial may name.
    constructor(
        IDatasetRegistry registry_,
        IAccreditationRegistry accreditations_,
        address owner_,
        bytes32[] memory circuitIds,
        Circuit[] memory circuits_,
        ConsentPurpose[] memory purposes_
    ) ProofGated(owner_, circuitIds, circuits_) ConsentPurposes(purposes_) {
        if (address(registry_) == address(0) || address(accreditations_) == address(0)) {
            revert ZeroAddress();
        }
        registry = registry_;
        accreditations = accreditations_;
    }

    /// @notice The id `openTrial` gives the trial `sponsor` opens with `salt` on this market:
    /// `MIN_TRIAL_ID + keccak256(abi.encode(chainid, market, sponsor, salt)) mod (r − MIN_TRIAL_ID)`,
    /// so always in `[MIN_TRIAL_ID, r)`.
    /// @dev Derived, never chosen (issue #14): a front-runner copying a sponsor's `openTrial`
    /// gets another id (its own address is hashed), so the announced trial cannot be squatted;
    /// another chain or deployment derives another id for the same sponsor and salt, so an
    /// enrolment proof (which binds the id) is worth nothing there. A salt rather than a
    /// per-sponsor nonce: the id is known before the trial is opened, whatever else the sponsor
    /// sends meanwhile, so it can be announced and patients can prove against it. The reduction's
    /// bias (2^256 mod a 254-bit range) is negligible.
    /// @param sponsor Who opens the trial.
    /// @param salt Any word the sponsor picks, once per trial.
    /// @return The trial id.
    function trialIdOf(address sponsor, bytes32 salt) public view returns (uint256) {
        uint256 h = uint256(keccak256(abi.encode(block.chainid, address(this), sponsor, salt)));
        return MIN_TRIAL_ID + h % (ProofGate.SNARK_SCALAR_FIELD - MIN_TRIAL_ID);
    }

    /// @notice Opens a trial and escrows `bounty × cap` ETH (send it as value).
    /// @param salt Picks the trial id, `trialIdOf(msg.sender, salt)`: a word the sponsor uses
    /// once (e.g. random), so it can compute and announce the id before opening.
    /// @param spec The trial spec (JSON) that produced `criteria`: its SHA-256 (`spec.hash`,
    /// stored and logged as `specHash`) and the document itself (`spec.document`, its canonical
    /// JSON), which must hash to it and is published in `SpecPublished` so anyone can read the
    /// criteria.
    /// @param schemaHash The schema the criteria are written for.
    /// @param criteria The trial's public constants, as the circuit takes them; its consent
    /// purpose (the last word) must be registered for `schemaHash`.
    /// @param bounty Payment per enrolled patient.
    /// @param patientShareBps Share of the bounty paid to a patient payout address, if any.
    /// @param cap Maximum number of enrolments.
    /// @param deadline Last timestamp at which enrolments are accepted.
    /// @param accreditor Only datasets of custodians this address attests can enrol (checked at
    /// each enrolment). A sponsor that picks its custodians itself accredits them from its own
    /// address and names that.
    /// @return trialId The trial's id (also in `TrialOpened`).
    function openTrial(
        bytes32 salt,
        Spec calldata spec,
        bytes32 schemaHash,
        uint256[] calldata criteria,
        uint256 bounty,
        uint16 patientShareBps,
        uint32 cap,
        uint64 deadline,
        address accreditor
    ) external payable nonReentrant returns (uint256 trialId) {
        trialId = trialIdOf(msg.sender, salt);
        if (_trials[trialId].sponsor != address(0)) revert TrialIdTaken(trialId);
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline);
        if (bounty == 0 || cap == 0 || patientShareBps > BPS || accreditor == address(0)) {
            revert InvalidTerms();
        }
        _checkConstantsCount(schemaHash, criteria.length);
        // The criteria end with the consent purpose.
        _checkConsentPurpose(schemaHash, criteria[criteria.length - 1]);
        ProofGate.checkInField(criteria, CRITERIA_AT);
        Trial storage t = _trials[trialId];
        t.sponsor = msg.sender;
        t.deadline = deadline;
        t.cap = cap;
        t.patientShareBps = patientShareBps;
        t.numCriteria = uint32(criteria.length);
        t.bounty = bounty;
        t.specHash = spec.hash;
        t.schemaHash = schemaHash;
        t.criteriaHash = keccak256(abi.encodePacked(criteria));
        t.accreditor = accreditor;
        _emitOpened(trialId, t, criteria);
        _publishSpec(trialId, spec);
        _collect(address(0), bounty * cap);
    }

    /// @dev Requires `spec.document` to be the document `spec.hash` names, and publishes it.
    function _publishSpec(uint256 trialId, Spec calldata spec) internal {
        bytes32 actual = sha256(spec.document);
        if (actual != spec.hash) revert SpecMismatch(spec.hash, actual);
        emit SpecPublished(trialId, spec.hash, spec.document);
    }

    function _emitOpened(uint256 trialId, Trial storage t, uint256[] calldata criteria) internal {
        emit TrialOpened(
            trialId,
            t.sponsor,
            t.specHash,
            t.schemaHash,
            criteria,
            t.bounty,
            t.patientShareBps,
            t.cap,
            t.deadline,
            t.accreditor
        );
    }

    /// @notice Enrols the patients of one eligibility proof: spends each nullifier and credits
    /// the dataset's custodian and each patient's payout address (withdraw with `withdraw`).
    /// @param trialId The trial.
    /// @param circuitId keccak256 of the eligibility circuit the proof is for.
    /// @param publicInputs The proof's public inputs: exactly as many as the circuit has.
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
        Circuit memory c = _circuit(circuitId, t.schemaHash);
        if (c.numConstants != t.numCriteria) {
            revert WrongConstantsCount(c.numConstants, t.numCriteria);
        }
        _checkInputCount(c, publicInputs);
        (uint256 datasetId, address custodian) = _checkInputs(t, trialId, publicInputs);
        bytes32 proofHash = _verify(circuitId, c, publicInputs, proof);
        enrolled = _enroll(t, trialId, datasetId, custodian, publicInputs, proofHash);
    }

    /// @dev Public inputs (of the circuit's count) must name this trial and its criteria and
    /// open an active dataset of the trial's schema: the one its registrant (input 2) registered
    /// with its membership root (input 0).
    function _checkInputs(Trial storage t, uint256 trialId, uint256[] calldata publicInputs)
        internal
        view
        returns (uint256 datasetId, address custodian)
    {
        ProofGate.checkInField(publicInputs, 0);
        if (publicInputs[1] != trialId) revert TrialMismatch(trialId, publicInputs[1]);
        uint256 registrant = publicInputs[REGISTRANT_AT];
        if (registrant >> 160 != 0) revert InvalidRegistrant(registrant);
        uint256 head = CRITERIA_AT + t.numCriteria;
        if (keccak256(abi.encodePacked(publicInputs[CRITERIA_AT:head])) != t.criteriaHash) {
            revert CriteriaMismatch(trialId);
        }
        IDatasetRegistry.Dataset memory d;
        (datasetId, d) =
            registry.datasetByMemberRoot(address(uint160(registrant)), bytes32(publicInputs[0]));
        if (d.retired) revert DatasetRetired(datasetId);
        if (d.schemaHash != t.schemaHash) revert SchemaMismatch(t.schemaHash, d.schemaHash);
        custodian = d.custodian;
        if (!accreditations.isAccredited(t.accreditor, custodian)) {
            revert CustodianNotAccepted(datasetId, custodian);
        }
    }

    /// @dev Effects of a verified proof: spend nullifiers, count, credit, emit. A slot whose
    /// patient is already enrolled (e.g. the patient enrolled themselves before a hospital's
    /// batch landed) is skipped, so one early enrolment cannot sink a whole referral; a proof
    /// that enrols nobody new reverts.
    function _enroll(
        Trial storage t,
        uint256 trialId,
        uint256 datasetId,
        address custodian,
        uint256[] calldata publicInputs,
        bytes32 proofHash
    ) internal returns (uint256 enrolled) {
        uint256 firstSpent = 0; // nullifiers are never 0 (0 marks an empty slot)
        for (uint256 i = CRITERIA_AT + t.numCriteria; i < publicInputs.length; i += 2) {
            uint256 nullifier = publicInputs[i];
            if (nullifier == 0) continue;
            if (_spend(t, trialId, i, datasetId, custodian, publicInputs, proofHash)) {
                ++enrolled;
            } else if (firstSpent == 0) {
                firstSpent = nullifier;
            }
        }
        if (enrolled == 0) {
            if (firstSpent != 0) revert NullifierSpent(trialId, firstSpent);
            revert EmptyEnrolment();
        }
        uint256 total = t.enrolled + enrolled;
        if (total > t.cap) revert CapReached(trialId, t.cap);
        t.enrolled = uint32(total);
    }

    /// @dev Spends the nullifier of the slot at `publicInputs[at]` and credits the custodian and
    /// the patient's payout address (`publicInputs[at + 1]`); returns false, spending and
    /// crediting nothing, for a nullifier already spent.
    function _spend(
        Trial storage t,
        uint256 trialId,
        uint256 at,
        uint256 datasetId,
        address custodian,
        uint256[] calldata publicInputs,
        bytes32 proofHash
    ) internal returns (bool) {
        (uint256 nullifier, uint256 payout) = (publicInputs[at], publicInputs[at + 1]);
        if (payout >> 160 != 0) revert InvalidPayout(payout);
        if (spent[trialId][nullifier]) {
            emit EnrolmentSkipped(trialId, nullifier);
            return false;
        }
        spent[trialId][nullifier] = true;
        address patient = address(uint160(payout));
        uint256 patientAmount = patient == address(0) ? 0 : t.bounty * t.patientShareBps / BPS;
        uint256 custodianAmount = t.bounty - patientAmount;
        _credit(address(0), custodian, custodianAmount);
        _credit(address(0), patient, patientAmount);
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
        return true;
    }

    /// @notice After the deadline, credits the sponsor with the bounties of unused places.
    /// @param trialId The trial.
    function refund(uint256 trialId) external {
        Trial storage t = _trial(trialId);
        _checkRefund(trialId, t.sponsor, t.deadline, t.refunded);
        t.refunded = true;
        uint256 amount = t.bounty * (t.cap - t.enrolled);
        _credit(address(0), msg.sender, amount);
        emit TrialRefunded(trialId, msg.sender, amount);
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

    /// @dev Eligibility circuits have criteria, at least one patient slot and no data columns.
    function _validShape(Circuit memory c) internal pure override returns (bool) {
        return c.numConstants != 0 && c.batch != 0 && c.cells == 0 && c.dataColumns == 0;
    }

    /// @dev `[memberRoot, trialId, registrant, criteria..., (nullifier, payout) × batch]`.
    function _numInputs(Circuit memory c) internal pure override returns (uint256) {
        return CRITERIA_AT + uint256(c.numConstants) + 2 * uint256(c.batch);
    }
}
