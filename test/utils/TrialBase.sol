// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {ProofGate} from "../../contracts/libraries/ProofGate.sol";
import {IProofGated} from "../../contracts/interfaces/IProofGated.sol";
import {Test} from "forge-std/Test.sol";
import {ClinicalPurposes} from "./ClinicalPurposes.sol";
import {AccreditationRegistry} from "../../contracts/AccreditationRegistry.sol";
import {DatasetRegistry} from "../../contracts/DatasetRegistry.sol";
import {TrialMarket} from "../../contracts/TrialMarket.sol";
import {ITrialMarket} from "../../contracts/interfaces/ITrialMarket.sol";
import {EligibilityVerifierB1} from "../../contracts/verifiers/EligibilityVerifierB1.sol";
import {EligibilityVerifierB4} from "../../contracts/verifiers/EligibilityVerifierB4.sol";

/// @notice A deployed registry + trial market + the two real generated eligibility verifiers
/// (single patient and batch of four), and real proofs from `test/fixtures/eligibility_proofs.json`
/// (written by the Rust suite): patients A and B alone, C, D and E in one batch, F with A again
/// in a batch, and A for another trial. All but the last are for the fixture's trial id and
/// criteria; the hospital's dataset (the fixture's membership root) holds all six patients.
/// The trial spec's document (its canonical JSON, which `openTrial` publishes) comes with them.
/// Trial ids are derived on-chain from (chain id, market, sponsor, salt), so the proofs hold
/// for one market only: the fixture names its address, chain id, sponsor and the two salts, and
/// the market is placed at that address (`_deploy`); setUp checks that the contract derives the
/// fixture's ids (which the Rust side computed: `zkcohort::chain::trial_id_of`). Every proof
/// names the dataset's registrant (public input 2): the fixture's `registrant`, which setUp
/// checks is `hospital`, the address that registers the fixture's dataset here.
abstract contract TrialBase is Test {
    /// @notice One real proof: circuit, public inputs, proof bytes, and what it enrols.
    struct Entry {
        bytes32 circuitId;
        uint256[] inputs;
        bytes proof;
        /// Nullifiers of the non-empty slots, in slot order.
        uint256[] nullifiers;
        /// Payout address of every slot (0 for an empty slot).
        address[] payouts;
    }

    /// BN254 scalar field modulus.
    uint256 internal constant R = ProofGate.SNARK_SCALAR_FIELD;
    /// Index of the registrant (the address that registered the proof's dataset) in the public
    /// inputs, after the membership root (0) and the trial id (1).
    uint256 internal constant REGISTRANT_AT = 2;
    /// Index of the first criteria constant in the public inputs.
    uint256 internal constant CRITERIA_AT = 3;
    /// Number of criteria constants the eligibility circuits take.
    uint256 internal constant NUM_CRITERIA = 15;
    /// Index of the first (nullifier, payout) pair in the public inputs.
    uint256 internal constant SLOTS_AT = CRITERIA_AT + NUM_CRITERIA;
    /// Patient slots of the single-patient circuit (`single_*` entries) and of the batch
    /// circuit (`batch_*` entries).
    uint16 internal constant SINGLE_SLOTS = 1;
    uint16 internal constant BATCH_SLOTS = 4;
    /// Public inputs of a proof of each circuit.
    uint256 internal constant SINGLE_INPUTS = SLOTS_AT + 2 * SINGLE_SLOTS;
    uint256 internal constant BATCH_INPUTS = SLOTS_AT + 2 * BATCH_SLOTS;

    uint256 internal constant BOUNTY = 1 ether;
    uint16 internal constant SHARE_BPS = 2_500;
    uint32 internal constant CAP = 10;
    uint64 internal constant DURATION = 30 days;

    DatasetRegistry internal registry;
    AccreditationRegistry internal accreditations;
    TrialMarket internal market;
    address internal verifierB1;
    address internal verifierB4;
    bytes32 internal singleCircuit;
    bytes32 internal batchCircuit;

    bytes32 internal schemaHash;
    bytes32 internal commitment;
    bytes32 internal memberRoot;
    uint64 internal recordCount;
    /// The fixture's trial: `trialIdOf(sponsor, salt)` on the fixture's market.
    uint256 internal trialId;
    /// The other fixture trial: `trialIdOf(sponsor, otherSalt)`.
    uint256 internal otherTrialId;
    bytes32 internal salt;
    bytes32 internal otherSalt;
    /// Where the market is deployed: the address the fixture's trial ids are derived for.
    address internal fixtureMarket;
    /// State before the registry and market were deployed (see `_deploy`).
    uint256 internal beforeDeployment;
    bytes32 internal specHash;
    /// The trial spec's canonical JSON: SHA-256 `specHash`.
    bytes internal specDocument;
    uint256[] internal criteria;

    Entry internal singleA;
    Entry internal singleB;
    Entry internal batchCDE;
    Entry internal batchWithA;
    Entry internal singleAOtherTrial;
    /// The custodian's best attempt at enrolling patient A ahead of them, to its own payout: the
    /// real prover's output for a witness with a secret other than the patient's (the one the
    /// pre-identity scheme derived from the dataset salt, which the custodian holds).
    uint256[] internal custodianInputs;
    bytes internal custodianProof;

    address internal owner = makeAddr("owner");
    /// The fixture's sponsor (the ids are derived for it).
    address internal sponsor;
    address internal hospital = makeAddr("hospital");
    address internal relayer = makeAddr("relayer");
    /// Attests `hospital`; every trial of the tests names it.
    address internal accreditor = makeAddr("accreditor");
    uint256 internal datasetId;

    function setUp() public virtual {
        string memory json = vm.readFile("test/fixtures/eligibility_proofs.json");
        schemaHash = vm.parseJsonBytes32(json, ".schema_hash");
        commitment = vm.parseJsonBytes32(json, ".commitment");
        memberRoot = vm.parseJsonBytes32(json, ".member_root");
        recordCount = uint64(vm.parseJsonUint(json, ".record_count"));
        trialId = uint256(vm.parseJsonBytes32(json, ".trial_id"));
        otherTrialId = uint256(vm.parseJsonBytes32(json, ".other_trial_id"));
        salt = vm.parseJsonBytes32(json, ".salt");
        otherSalt = vm.parseJsonBytes32(json, ".other_salt");
        sponsor = vm.parseJsonAddress(json, ".sponsor");
        vm.label(sponsor, "sponsor");
        fixtureMarket = vm.parseJsonAddress(json, ".market");
        assertEq(block.chainid, vm.parseJsonUint(json, ".chain_id"), "the fixture's chain id");
        assertEq(
            vm.parseJsonAddress(json, ".registrant"),
            hospital,
            "the fixture's proofs name another registrant than the hospital that registers here"
        );
        specHash = vm.parseJsonBytes32(json, ".spec_hash");
        specDocument = vm.parseJsonBytes(json, ".spec");
        criteria = _words(vm.parseJsonBytes32Array(json, ".criteria"));
        singleA = _entry(json, ".single_a");
        singleB = _entry(json, ".single_b");
        batchCDE = _entry(json, ".batch_cde");
        batchWithA = _entry(json, ".batch_with_a");
        singleAOtherTrial = _entry(json, ".single_a_other_trial");
        custodianInputs = _words(vm.parseJsonBytes32Array(json, ".custodian_preempts_a.instances"));
        custodianProof = vm.parseJsonBytes(json, ".custodian_preempts_a.forged_proof");
        singleCircuit = singleA.circuitId;
        batchCircuit = batchCDE.circuitId;

        verifierB1 = address(new EligibilityVerifierB1());
        verifierB4 = address(new EligibilityVerifierB4());
        accreditations = new AccreditationRegistry();
        vm.prank(accreditor);
        accreditations.accredit(hospital);
        beforeDeployment = vm.snapshotState();
        (registry, market) = _deployAtFixture();
        assertEq(
            market.trialIdOf(sponsor, salt),
            trialId,
            "the contract derives another trial id than the fixture's (run make fixtures)"
        );
        assertEq(market.trialIdOf(sponsor, otherSalt), otherTrialId, "other trial id");
        vm.prank(hospital);
        datasetId =
            registry.register(commitment, schemaHash, recordCount, singleCircuit, memberRoot);
    }

    /// @dev A fresh registry (no dataset registered) and a market at the fixture's address,
    /// so the fixture's proofs hold for its trials: the state goes back to before setUp's
    /// deployment (verifiers and accreditations stay; everything since is undone), then both
    /// are deployed again. Call it first in a test.
    function _deploy() internal returns (DatasetRegistry r, TrialMarket m) {
        vm.revertToState(beforeDeployment);
        return _deployAtFixture();
    }

    /// @dev The market's constructor arguments, wired to the real verifiers.
    function _marketArgs(DatasetRegistry r) internal view returns (bytes memory) {
        bytes32[] memory ids = new bytes32[](2);
        IProofGated.Circuit[] memory cs = new IProofGated.Circuit[](2);
        (ids[0], cs[0]) = (singleCircuit, _single(verifierB1, schemaHash));
        (ids[1], cs[1]) = (batchCircuit, _batch(verifierB4, schemaHash));
        return abi.encode(r, accreditations, owner, ids, cs, ClinicalPurposes.forSchema(schemaHash));
    }

    /// @dev A new registry, and a market deployed at `fixtureMarket` (its creation code run
    /// there, then its runtime code, immutables included, left there).
    function _deployAtFixture() internal returns (DatasetRegistry r, TrialMarket m) {
        r = new DatasetRegistry();
        vm.etch(fixtureMarket, abi.encodePacked(type(TrialMarket).creationCode, _marketArgs(r)));
        (bool ok, bytes memory runtime) = fixtureMarket.call("");
        require(ok, "TrialMarket constructor reverted");
        vm.etch(fixtureMarket, runtime);
        m = TrialMarket(fixtureMarket);
    }

    /// @dev Another deployment of the market (a plain `new`, at another address) on the same
    /// registry.
    function _deployElsewhere() internal returns (TrialMarket) {
        return _deployElsewhere(registry);
    }

    /// @dev Another deployment of the market (a plain `new`, at another address) on `r`.
    function _deployElsewhere(DatasetRegistry r) internal returns (TrialMarket) {
        bytes memory init = abi.encodePacked(type(TrialMarket).creationCode, _marketArgs(r));
        address m;
        assembly {
            m := create(0, add(init, 0x20), mload(init))
        }
        require(m != address(0), "TrialMarket constructor reverted");
        return TrialMarket(m);
    }

    /// @dev A circuit of the single-patient shape (15 criteria words, 1 slot).
    function _single(address verifier, bytes32 schema)
        internal
        pure
        returns (IProofGated.Circuit memory)
    {
        return _circuit(verifier, uint32(NUM_CRITERIA), SINGLE_SLOTS, schema);
    }

    /// @dev A circuit of the batch shape (15 criteria words, 4 slots).
    function _batch(address verifier, bytes32 schema)
        internal
        pure
        returns (IProofGated.Circuit memory)
    {
        return _circuit(verifier, uint32(NUM_CRITERIA), BATCH_SLOTS, schema);
    }

    function _circuit(address verifier, uint32 numCriteria, uint16 batch, bytes32 schema)
        internal
        pure
        returns (IProofGated.Circuit memory c)
    {
        c = IProofGated.Circuit({
            verifier: verifier,
            numConstants: numCriteria,
            batch: batch,
            cells: 0,
            dataColumns: 0,
            schemaHash: schema
        });
    }

    /// @dev Sets a circuit as the owner: a removal at once, anything else proposed and
    /// applied after the notice period (time moves on by `VERIFIER_DELAY`).
    function _setCircuit(bytes32 circuitId, IProofGated.Circuit memory c) internal {
        vm.startPrank(owner);
        if (c.verifier == address(0)) {
            market.removeVerifier(circuitId);
        } else {
            market.proposeVerifier(circuitId, c);
            vm.warp(block.timestamp + market.VERIFIER_DELAY());
            market.applyVerifier(circuitId);
        }
        vm.stopPrank();
    }

    /// @dev Registers a consent purpose as the owner, through the timelock (time moves on by
    /// `CONSENT_PURPOSE_DELAY`).
    function _addPurpose(bytes32 schema, uint256 index, bytes32 name) internal {
        vm.prank(owner);
        market.proposeConsentPurpose(schema, index, name);
        vm.warp(block.timestamp + market.CONSENT_PURPOSE_DELAY());
        market.applyConsentPurpose(schema, index);
    }

    function _entry(string memory json, string memory at) internal pure returns (Entry memory e) {
        e.circuitId = keccak256(bytes(vm.parseJsonString(json, string.concat(at, ".circuit_id"))));
        e.inputs = _words(vm.parseJsonBytes32Array(json, string.concat(at, ".instances")));
        e.proof = vm.parseJsonBytes(json, string.concat(at, ".proof"));
        e.nullifiers = _words(vm.parseJsonBytes32Array(json, string.concat(at, ".nullifiers")));
        bytes32[] memory payouts = vm.parseJsonBytes32Array(json, string.concat(at, ".payouts"));
        e.payouts = new address[](payouts.length);
        for (uint256 i; i < payouts.length; ++i) {
            e.payouts[i] = address(uint160(uint256(payouts[i])));
        }
    }

    function _words(bytes32[] memory b) internal pure returns (uint256[] memory w) {
        w = new uint256[](b.length);
        for (uint256 i; i < b.length; ++i) {
            w[i] = uint256(b[i]);
        }
    }

    /// @dev Opens the sponsor's trial of `salt_` with the fixture's spec, schema and criteria;
    /// the sponsor escrows `bounty × cap`. Returns the trial id.
    function _open(bytes32 salt_, uint256 bounty, uint16 shareBps, uint32 cap, uint64 deadline)
        internal
        returns (uint256)
    {
        return _openWith(salt_, criteria, bounty, shareBps, cap, deadline);
    }

    /// @dev The fixture's trial spec as `openTrial` takes it.
    function _spec() internal view returns (ITrialMarket.Spec memory) {
        return ITrialMarket.Spec({hash: specHash, document: specDocument});
    }

    /// @dev Opens a trial with the given criteria.
    function _openWith(
        bytes32 salt_,
        uint256[] memory criteria_,
        uint256 bounty,
        uint16 shareBps,
        uint32 cap,
        uint64 deadline
    ) internal returns (uint256) {
        return _openOn(market, salt_, criteria_, bounty, shareBps, cap, deadline);
    }

    /// @dev Opens a trial with the given criteria on market `m` (the sponsor escrows
    /// `bounty × cap`); returns its id there.
    function _openOn(
        TrialMarket m,
        bytes32 salt_,
        uint256[] memory criteria_,
        uint256 bounty,
        uint16 shareBps,
        uint32 cap,
        uint64 deadline
    ) internal returns (uint256) {
        uint256 total = bounty * cap;
        vm.deal(sponsor, sponsor.balance + total);
        vm.prank(sponsor);
        return m.openTrial{value: total}(
            salt_, _spec(), schemaHash, criteria_, bounty, shareBps, cap, deadline, accreditor
        );
    }

    /// @dev Opens the fixture's trial with the default terms.
    function _openDefault() internal {
        _open(salt, BOUNTY, SHARE_BPS, CAP, uint64(block.timestamp + DURATION));
    }

    /// @dev Opens the fixture's salt with the default terms on another market `m`; returns the
    /// id `m` gives it.
    function _openDefaultOn(TrialMarket m) internal returns (uint256) {
        return
            _openOn(m, salt, criteria, BOUNTY, SHARE_BPS, CAP, uint64(block.timestamp + DURATION));
    }

    /// @dev Submits a real proof to the fixture's trial (from a relayer: anyone may enrol).
    function _enroll(Entry memory e) internal returns (uint256) {
        return _enrollIn(trialId, e);
    }

    function _enrollIn(uint256 id, Entry memory e) internal returns (uint256) {
        vm.prank(relayer);
        return market.enroll(id, e.circuitId, e.inputs, e.proof);
    }

    /// @dev The patient's part of one bounty (for a patient with a payout address).
    function _share(uint256 bounty, uint16 shareBps) internal pure returns (uint256) {
        return bounty * shareBps / 10_000;
    }
}
