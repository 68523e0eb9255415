// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {ClinicalPurposes} from "./utils/ClinicalPurposes.sol";
import {IDatasetRegistryEvents} from "../contracts/interfaces/IDatasetRegistry.sol";
import {IEscrow} from "../contracts/interfaces/IEscrow.sol";
import {IProofGated} from "../contracts/interfaces/IProofGated.sol";
import {Ownable} from "solady/auth/Ownable.sol";
import {ReentrancyGuard} from "solady/utils/ReentrancyGuard.sol";
import {DatasetRegistry} from "../contracts/DatasetRegistry.sol";
import {TrialMarket} from "../contracts/TrialMarket.sol";
import {ITrialMarket} from "../contracts/interfaces/ITrialMarket.sol";
import {IConsentPurposes} from "../contracts/interfaces/IConsentPurposes.sol";
import {TrialBase} from "./utils/TrialBase.sol";

/// @notice A verifier that accepts anything (to reach the checks a real proof cannot reach).
contract AcceptingVerifier {
    fallback(bytes calldata) external returns (bytes memory) {
        return "";
    }
}

/// @notice A verifier that "succeeds" by returning `true`, which the generated verifiers never
/// do: the market must not mistake it for an accepted proof.
contract ReturningVerifier {
    fallback(bytes calldata) external returns (bytes memory) {
        return abi.encode(true);
    }
}

/// @notice A custodian contract that re-enters `withdraw` from its receive hook.
contract ReentrantCustodian {
    TrialMarket internal market;
    uint256 public reentries;
    bytes public reentryError;

    constructor(TrialMarket market_) {
        market = market_;
    }

    function acceptCustodian(DatasetRegistry registry, uint256 datasetId) external {
        registry.acceptCustodian(datasetId);
    }

    function withdraw() external {
        market.withdraw(address(0));
    }

    receive() external payable {
        if (reentries == 0) {
            reentries = 1;
            try market.withdraw(address(0)) {}
            catch (bytes memory err) {
                reentryError = err;
            }
        }
    }
}

contract TrialMarketTest is TrialBase, ITrialMarket, IProofGated, IEscrow, IConsentPurposes {
    bytes32 internal constant OTHER_SCHEMA = keccak256("another schema");

    // ---- constructor and setVerifier ----

    function test_constructorWiresVerifiers() public view {
        (address v1, uint32 c1, uint16 b1,,, bytes32 s1) = market.circuits(singleCircuit);
        (address v4, uint32 c4, uint16 b4,,, bytes32 s4) = market.circuits(batchCircuit);
        assertEq(v1, verifierB1);
        assertEq(v4, verifierB4);
        assertEq(c1, NUM_CRITERIA);
        assertEq(c4, NUM_CRITERIA);
        assertEq(b1, SINGLE_SLOTS);
        assertEq(b4, BATCH_SLOTS);
        assertEq(s1, schemaHash);
        assertEq(s4, schemaHash);
        assertEq(market.liveCircuitsOf(schemaHash, uint32(NUM_CRITERIA), market.PLAIN()), 2);
        assertEq(market.liveCircuitsOf(schemaHash, uint32(NUM_CRITERIA), market.FOLD()), 0);
        assertTrue(market.acceptsConstants(schemaHash, NUM_CRITERIA));
        assertEq(market.constantsCountsOf(schemaHash).length, 1);
        assertEq(market.constantsCountsOf(schemaHash)[0], NUM_CRITERIA);
        assertFalse(market.acceptsConstants(OTHER_SCHEMA, NUM_CRITERIA));
        assertEq(market.constantsCountsOf(OTHER_SCHEMA).length, 0);
        assertEq(market.owner(), owner);
        assertEq(address(market.registry()), address(registry));
        assertEq(registry.dataset(datasetId).custodian, hospital);
    }

    /// The shapes the tests (and the deployment manifest) give the circuits are those of the
    /// real proofs: 15 criteria words, and 1 or 4 patient slots.
    function test_fixtureShapesMatchCircuits() public view {
        assertEq(criteria.length, NUM_CRITERIA);
        Entry[] memory es = new Entry[](5);
        (es[0], es[1], es[2], es[3], es[4]) =
        (singleA, singleB, singleAOtherTrial, batchCDE, batchWithA);
        assertEq(market.CRITERIA_AT(), CRITERIA_AT);
        for (uint256 i; i < es.length; ++i) {
            bool single = i < 3;
            assertEq(es[i].inputs[0], uint256(memberRoot));
            assertEq(es[i].inputs[REGISTRANT_AT], uint160(hospital), "the proof names the hospital");
            assertEq(es[i].circuitId, single ? singleCircuit : batchCircuit);
            assertEq(es[i].inputs.length, single ? SINGLE_INPUTS : BATCH_INPUTS);
            assertEq(es[i].payouts.length, single ? SINGLE_SLOTS : BATCH_SLOTS);
        }
        string memory shapes = vm.readFile("contracts/verifiers/verifiers.json");
        string[2] memory names = [".EligibilityVerifierB1", ".EligibilityVerifierB4"];
        uint16[2] memory slots = [SINGLE_SLOTS, BATCH_SLOTS];
        for (uint256 i; i < names.length; ++i) {
            assertEq(vm.parseJsonString(shapes, string.concat(names[i], ".kind")), "eligibility");
            assertEq(vm.parseJsonUint(shapes, string.concat(names[i], ".constants")), NUM_CRITERIA);
            assertEq(vm.parseJsonUint(shapes, string.concat(names[i], ".batch")), slots[i]);
            assertEq(
                vm.parseJsonBytes32(shapes, string.concat(names[i], ".schema_hash")), schemaHash
            );
        }
    }

    function test_constructorRejectsZeroAddressesAndLengthMismatch() public {
        bytes32[] memory ids = new bytes32[](1);
        IProofGated.Circuit[] memory cs = new IProofGated.Circuit[](1);
        cs[0] = _single(verifierB1, schemaHash);
        vm.expectRevert(IProofGated.ZeroAddress.selector);
        new TrialMarket(
            DatasetRegistry(address(0)),
            accreditations,
            owner,
            ids,
            cs,
            ClinicalPurposes.forSchema(schemaHash)
        );
        vm.expectRevert(IProofGated.ZeroAddress.selector);
        new TrialMarket(
            registry, accreditations, address(0), ids, cs, ClinicalPurposes.forSchema(schemaHash)
        );
        vm.expectRevert(IProofGated.LengthMismatch.selector);
        new TrialMarket(
            registry,
            accreditations,
            owner,
            new bytes32[](2),
            cs,
            ClinicalPurposes.forSchema(schemaHash)
        );
        vm.expectRevert(IProofGated.LengthMismatch.selector);
        new TrialMarket(
            registry,
            accreditations,
            owner,
            ids,
            new IProofGated.Circuit[](0),
            ClinicalPurposes.forSchema(schemaHash)
        );
    }

    /// The constructor applies the same checks as `setVerifier`.
    function test_constructorRejectsBadCircuits() public {
        bytes32[] memory ids = new bytes32[](2);
        (ids[0], ids[1]) = (singleCircuit, batchCircuit);
        IProofGated.Circuit[] memory cs = new IProofGated.Circuit[](2);
        (cs[0], cs[1]) = (_single(verifierB1, schemaHash), _batch(address(0xBEEF), schemaHash));
        vm.expectRevert(abi.encodeWithSelector(IProofGated.NotAContract.selector, address(0xBEEF)));
        new TrialMarket(
            registry, accreditations, owner, ids, cs, ClinicalPurposes.forSchema(schemaHash)
        );
        cs[1] = _circuit(verifierB4, 0, BATCH_SLOTS, schemaHash);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.InvalidShape.selector, 0, BATCH_SLOTS, 0)
        );
        new TrialMarket(
            registry, accreditations, owner, ids, cs, ClinicalPurposes.forSchema(schemaHash)
        );
        cs[1] = _circuit(verifierB4, uint32(NUM_CRITERIA), 0, schemaHash);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.InvalidShape.selector, NUM_CRITERIA, 0, 0)
        );
        new TrialMarket(
            registry, accreditations, owner, ids, cs, ClinicalPurposes.forSchema(schemaHash)
        );
    }

    /// An eligibility circuit has no data columns (those are the commit-and-prove aggregate
    /// circuits' alone): refused at deployment and when proposed.
    function test_rejectsCircuitWithDataColumns() public {
        IProofGated.Circuit memory c = _single(verifierB1, schemaHash);
        c.dataColumns = 1;
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = singleCircuit;
        IProofGated.Circuit[] memory cs = new IProofGated.Circuit[](1);
        cs[0] = c;
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.InvalidShape.selector, NUM_CRITERIA, SINGLE_SLOTS, 0)
        );
        new TrialMarket(
            registry, accreditations, owner, ids, cs, ClinicalPurposes.forSchema(schemaHash)
        );
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.InvalidShape.selector, NUM_CRITERIA, SINGLE_SLOTS, 0)
        );
        vm.prank(owner);
        market.proposeVerifier(keccak256("elig-with-columns"), c);
        assertEq(market.pendingEta(keccak256("elig-with-columns")), 0, "nothing pending");
    }

    function test_ownerSetsVerifierWithEvent() public {
        address fake = address(new AcceptingVerifier());
        vm.prank(owner);
        market.proposeVerifier(singleCircuit, _single(fake, OTHER_SCHEMA));
        vm.warp(block.timestamp + market.VERIFIER_DELAY());
        vm.expectEmit(address(market));
        emit VerifierSet(
            singleCircuit, OTHER_SCHEMA, verifierB1, fake, uint32(NUM_CRITERIA), SINGLE_SLOTS, 0, 0
        );
        market.applyVerifier(singleCircuit);
        (address v, uint32 c, uint16 b,,, bytes32 s) = market.circuits(singleCircuit);
        assertEq(v, fake);
        assertEq(c, NUM_CRITERIA);
        assertEq(b, SINGLE_SLOTS);
        assertEq(s, OTHER_SCHEMA);
        uint32 n = uint32(NUM_CRITERIA);
        assertEq(
            market.liveCircuitsOf(OTHER_SCHEMA, n, market.PLAIN()), 1, "learnt from the circuit"
        );
        assertEq(
            market.liveCircuitsOf(schemaHash, n, market.PLAIN()), 1, "the batch circuit is left"
        );
    }

    /// A removal takes effect at once (an emergency stop), and emits the verifier it removes.
    function test_ownerRemovesVerifierWithEvent() public {
        vm.expectEmit(address(market));
        emit VerifierSet(batchCircuit, schemaHash, verifierB4, address(0), 0, 0, 0, 0);
        _setCircuit(batchCircuit, _batch(address(0), schemaHash));
        (address v,,,,,) = market.circuits(batchCircuit);
        assertEq(v, address(0));
    }

    function test_attack_unauthorisedVerifierChange() public {
        address fake = address(new AcceptingVerifier());
        address[3] memory callers = [sponsor, hospital, relayer];
        for (uint256 i; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(Ownable.Unauthorized.selector);
            market.proposeVerifier(singleCircuit, _single(fake, schemaHash));
        }
        (address v,,,,,) = market.circuits(singleCircuit);
        assertEq(v, verifierB1);
    }

    /// Finding 3: a verifier address without code (an EOA, a typo, a not-yet-deployed or
    /// self-destructed contract) answers every staticcall with success and no data, which the
    /// market took for an accepted proof: anyone could enrol with any proof bytes. Such an
    /// address can no longer be set.
    function test_attack_verifierWithoutCode() public {
        _openDefault();
        address eoa = address(0xBEEF);
        assertEq(eoa.code.length, 0);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.NotAContract.selector, eoa));
        market.proposeVerifier(singleCircuit, _single(eoa, schemaHash));
        (address v,,,,,) = market.circuits(singleCircuit);
        assertEq(v, verifierB1, "the real verifier stays");
        // The scratch reproduction's junk proof is therefore refused by the real verifier.
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, singleA.inputs, hex"00");
        assertFalse(market.spent(trialId, singleA.nullifiers[0]));
        // Nor under a new circuit id (here with the hospital's account, an EOA).
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.NotAContract.selector, hospital));
        market.proposeVerifier(keccak256("elig1-new"), _batch(hospital, schemaHash));
    }

    /// A circuit with no criteria words or no patient slot is refused. Another criteria count
    /// on a schema is a second count its trials may have, not a contradiction: a trial is
    /// enrolled only through circuits of its own count.
    function test_attack_invalidCircuitShape() public {
        address fake = address(new AcceptingVerifier());
        bytes32 id = keccak256("elig1-new");
        uint32 n = uint32(NUM_CRITERIA);
        IProofGated.Circuit[4] memory bad = [
            _circuit(verifierB4, n, 0, schemaHash),
            _circuit(verifierB4, 0, BATCH_SLOTS, schemaHash),
            _circuit(fake, 0, 0, OTHER_SCHEMA),
            _circuit(verifierB1, 0, SINGLE_SLOTS, schemaHash)
        ];
        for (uint256 i; i < bad.length; ++i) {
            vm.prank(owner);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IProofGated.InvalidShape.selector,
                    bad[i].numConstants,
                    bad[i].batch,
                    bad[i].cells
                )
            );
            market.proposeVerifier(i % 2 == 0 ? id : singleCircuit, bad[i]);
        }
        (address v, uint32 c, uint16 b,,,) = market.circuits(singleCircuit);
        assertEq(v, verifierB1);
        assertEq(c, n);
        assertEq(b, SINGLE_SLOTS);
        assertEq(market.constantsCountsOf(schemaHash).length, 1);
        assertEq(market.constantsCountsOf(OTHER_SCHEMA).length, 0);
        // A second count on the schema: trials may have either, each enrolled through the
        // circuits of its own count.
        _setCircuit(id, _circuit(fake, 9, 2, schemaHash));
        assertTrue(market.acceptsConstants(schemaHash, 9));
        assertTrue(market.acceptsConstants(schemaHash, n));
        assertFalse(market.acceptsConstants(schemaHash, 10));
        assertEq(market.constantsCountsOf(schemaHash).length, 2);
        uint256[] memory nine = new uint256[](9);
        nine[8] = criteria[n - 1];
        uint256 t =
            _openWith(salt, nine, BOUNTY, SHARE_BPS, CAP, uint64(block.timestamp + DURATION));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.WrongConstantsCount.selector, n, 9));
        market.enroll(t, singleCircuit, singleA.inputs, singleA.proof);
    }

    /// @notice A wrong shape for a schema can be corrected: removing the schema's last
    /// circuit forgets its criteria count (and trials can no longer be opened for it).
    function test_removingTheLastCircuitOfASchemaForgetsItsCount() public {
        bytes32 id = keccak256("elig1-other");
        _setCircuit(id, _circuit(verifierB1, 13, 2, OTHER_SCHEMA));
        assertTrue(market.acceptsConstants(OTHER_SCHEMA, 13));
        assertEq(market.liveCircuitsOf(OTHER_SCHEMA, 13, market.PLAIN()), 1);
        _setCircuit(id, _circuit(address(0), 0, 0, OTHER_SCHEMA));
        assertFalse(market.acceptsConstants(OTHER_SCHEMA, 13));
        assertEq(market.liveCircuitsOf(OTHER_SCHEMA, 13, market.PLAIN()), 0);
        assertEq(market.constantsCountsOf(OTHER_SCHEMA).length, 0);
        _setCircuit(id, _circuit(verifierB1, 15, 1, OTHER_SCHEMA));
        assertTrue(market.acceptsConstants(OTHER_SCHEMA, 15));
        assertFalse(market.acceptsConstants(OTHER_SCHEMA, 13));
        // Removing one of two circuits of a schema keeps its count.
        _setCircuit(batchCircuit, _circuit(address(0), 0, 0, schemaHash));
        assertTrue(market.acceptsConstants(schemaHash, NUM_CRITERIA));
        assertEq(market.liveCircuitsOf(schemaHash, uint32(NUM_CRITERIA), market.PLAIN()), 1);
    }

    /// @notice A verifier whose code is gone (self-destructed, or never deployed on this
    /// chain) would accept everything: a call to it succeeds with empty data. Enrolment checks.
    /// Regression (issue #14): anyone could drain a trial with invented patients. An address
    /// nobody vetted registers a cohort in which every record meets the criteria, issues itself
    /// credentials and enrols with valid proofs. Now a trial names an accreditor, and only
    /// datasets of custodians it attests can enrol: the fabricator takes nothing and the
    /// sponsor's refund is whole. The fabricator's proofs name it as the registrant, so here
    /// the fixture's registrant plays it, with no accreditation.
    function test_attack_fabricatedCohortCannotDrainATrial() public {
        (address fabricator, uint256 fake) = (hospital, datasetId);
        vm.prank(accreditor);
        accreditations.revoke(fabricator);
        _openDefault();
        vm.expectRevert(abi.encodeWithSelector(CustodianNotAccepted.selector, fake, fabricator));
        _enroll(singleA);
        vm.expectRevert(abi.encodeWithSelector(CustodianNotAccepted.selector, fake, fabricator));
        _enroll(batchCDE);
        assertEq(market.pendingWithdrawals(address(0), fabricator), 0);
        vm.warp(block.timestamp + DURATION + 1);
        vm.prank(sponsor);
        market.refund(trialId);
        assertEq(market.pendingWithdrawals(address(0), sponsor), BOUNTY * CAP);
    }

    /// A trial must name an accreditor; a revoked accreditation stops further enrolments.
    function test_accreditationIsRequiredAndRevocable() public {
        vm.deal(sponsor, BOUNTY * CAP);
        vm.prank(sponsor);
        vm.expectRevert(InvalidTerms.selector);
        market.openTrial{value: BOUNTY * CAP}(
            salt,
            _spec(),
            schemaHash,
            criteria,
            BOUNTY,
            SHARE_BPS,
            CAP,
            uint64(block.timestamp + DURATION),
            address(0)
        );
        _openDefault();
        _enroll(singleA);
        vm.prank(accreditor);
        accreditations.revoke(hospital);
        vm.expectRevert(abi.encodeWithSelector(CustodianNotAccepted.selector, datasetId, hospital));
        _enroll(singleB);
        assertEq(market.trial(trialId).enrolled, 1);
    }

    function test_attack_verifierCodeVanished() public {
        _openDefault();
        vm.etch(verifierB1, "");
        vm.expectRevert(abi.encodeWithSelector(IProofGated.NotAContract.selector, verifierB1));
        market.enroll(trialId, singleCircuit, singleA.inputs, hex"00");
    }

    // ---- openTrial ----

    function test_openTrialEscrowsAndEmits() public {
        uint64 deadline = uint64(block.timestamp + DURATION);
        bytes32 criteriaHash = keccak256(abi.encodePacked(criteria));
        vm.expectEmit(address(market));
        emit TrialOpened(
            trialId,
            sponsor,
            specHash,
            schemaHash,
            criteria,
            BOUNTY,
            SHARE_BPS,
            CAP,
            deadline,
            accreditor
        );
        _open(salt, BOUNTY, SHARE_BPS, CAP, deadline);
        assertEq(address(market).balance, BOUNTY * CAP);
        assertEq(sponsor.balance, 0);
        assertEq(market.locked(trialId), BOUNTY * CAP);
        TrialMarket.Trial memory t = market.trial(trialId);
        assertEq(t.sponsor, sponsor);
        assertEq(t.deadline, deadline);
        assertEq(t.cap, CAP);
        assertEq(t.enrolled, 0);
        assertEq(t.patientShareBps, SHARE_BPS);
        assertFalse(t.refunded);
        assertEq(t.numCriteria, NUM_CRITERIA);
        assertEq(t.bounty, BOUNTY);
        assertEq(t.specHash, specHash);
        assertEq(t.accreditor, accreditor);
        assertEq(t.schemaHash, schemaHash);
        assertEq(t.criteriaHash, criteriaHash);
    }

    /// The spec document is published with the trial, byte for byte, after `TrialOpened`.
    function test_openTrialPublishesTheSpec() public {
        vm.expectEmit(true, true, true, true, address(market));
        emit SpecPublished(trialId, specHash, specDocument);
        _openDefault();
        assertEq(sha256(specDocument), specHash, "the fixture's document is the hashed one");
    }

    /// A document that is not the one `spec.hash` names is refused (one byte flipped, or
    /// nothing at all), and no trial is opened.
    function test_openTrialRefusesAMismatchingSpec() public {
        bytes memory flipped = bytes.concat(specDocument);
        flipped[flipped.length - 2] = bytes1(uint8(flipped[flipped.length - 2]) ^ 1);
        bytes[2] memory bad = [flipped, bytes("")];
        uint64 deadline = uint64(block.timestamp + DURATION);
        vm.deal(sponsor, BOUNTY * CAP);
        for (uint256 i; i < bad.length; ++i) {
            vm.prank(sponsor);
            vm.expectRevert(abi.encodeWithSelector(SpecMismatch.selector, specHash, sha256(bad[i])));
            market.openTrial{value: BOUNTY * CAP}(
                salt,
                Spec({hash: specHash, document: bad[i]}),
                schemaHash,
                criteria,
                BOUNTY,
                SHARE_BPS,
                CAP,
                deadline,
                accreditor
            );
        }
        assertEq(address(market).balance, 0);
        vm.expectRevert(abi.encodeWithSelector(UnknownTrial.selector, trialId));
        market.trial(trialId);
    }

    /// Trial ids are derived: `trialIdOf(sponsor, salt)`, in `[MIN_TRIAL_ID, r)`, what
    /// `openTrial` returns and logs; a sponsor cannot open the same salt twice.
    function test_trialIdsAreDerivedFromChainMarketSponsorAndSalt() public {
        uint64 deadline = uint64(block.timestamp + DURATION);
        uint256 expected = market.MIN_TRIAL_ID()
            + uint256(keccak256(abi.encode(block.chainid, address(market), sponsor, salt)))
            % (R - market.MIN_TRIAL_ID());
        assertEq(market.trialIdOf(sponsor, salt), expected);
        assertEq(expected, trialId, "the fixture's id (computed by the Rust client)");
        assertEq(_open(salt, BOUNTY, SHARE_BPS, CAP, deadline), trialId, "returned");
        assertEq(market.trial(trialId).sponsor, sponsor);
        // Another salt, another id; the same salt twice is refused, on any terms.
        assertEq(_open(otherSalt, 1, 0, 1, deadline), otherTrialId);
        assertTrue(trialId != otherTrialId);
        vm.deal(sponsor, 1);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(TrialIdTaken.selector, trialId));
        market.openTrial{value: 1}(
            salt, _spec(), schemaHash, criteria, 1, 0, 1, deadline, accreditor
        );
        assertEq(market.trial(trialId).bounty, BOUNTY);
        // Another chain derives another id (same market address, sponsor and salt).
        uint256 here = block.chainid;
        vm.chainId(here + 1);
        assertTrue(market.trialIdOf(sponsor, salt) != trialId, "chain id bound");
        vm.chainId(here);
    }

    /// Every id the derivation gives is a valid trial id: at least 2^128 (a nullifier can never
    /// equal a membership leaf) and below r (a public input), whatever the sponsor and salt.
    function testFuzz_derivedIdsAreInRange(address who, bytes32 s) public view {
        uint256 id = market.trialIdOf(who, s);
        assertGe(id, market.MIN_TRIAL_ID());
        assertLt(id, R);
    }

    /// Regression (issue #14, trial-id squatting): ids were chosen by the caller, so a
    /// front-runner who saw the announced id (or the sponsor's pending `openTrial`) opened it
    /// first for 1 wei and a one-second deadline: the sponsor's call reverted and the patients'
    /// proofs, which bind the id, could only be spent in the squatter's trial. Now the id is
    /// derived from the opener's address: the squatter's copy (same salt, same everything)
    /// opens another trial, the sponsor's own call opens the announced id, and the patients'
    /// proofs enrol there.
    function test_attack_trialIdSquattingFails() public {
        address squatter = makeAddr("squatter");
        uint256 announced = market.trialIdOf(sponsor, salt);
        assertEq(announced, trialId);
        vm.deal(squatter, 1);
        vm.prank(squatter);
        uint256 squatted = market.openTrial{value: 1}(
            salt, _spec(), schemaHash, criteria, 1, 0, 1, uint64(block.timestamp + 1), accreditor
        );
        assertTrue(squatted != announced, "the squatter gets an id of its own");
        assertEq(squatted, market.trialIdOf(squatter, salt));
        vm.expectRevert(abi.encodeWithSelector(UnknownTrial.selector, announced));
        market.trial(announced);
        // The sponsor opens the announced trial.
        _openDefault();
        assertEq(market.trial(announced).sponsor, sponsor);
        // The patients' proofs enrol in it, and are worthless in the squatter's trial.
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(TrialMismatch.selector, squatted, announced));
        market.enroll(squatted, singleCircuit, singleA.inputs, singleA.proof);
        assertEq(_enroll(singleA), 1);
        assertEq(_enroll(batchCDE), 3);
        assertEq(market.trial(announced).enrolled, 4);
        assertEq(market.trial(squatted).enrolled, 0);
        assertEq(market.pendingWithdrawals(address(0), squatter), 0);
    }

    /// Regression (issue #14, cross-deployment replay): a second deployment accepted a trial
    /// opened under the same id, and with it every enrolment proof made for the first, paying
    /// each patient again. Now the second market derives another id for the same sponsor and
    /// salt, so the proofs (which bind the first market's id) are refused there.
    function test_attack_crossDeploymentEnrolmentReplayFails() public {
        _openDefault();
        assertEq(_enroll(singleA), 1);
        TrialMarket second = _deployElsewhere();
        uint256 there = second.trialIdOf(sponsor, salt);
        assertTrue(there != trialId, "another deployment, another id");
        uint256 total = BOUNTY * CAP;
        assertEq(_openDefaultOn(second), there);
        vm.startPrank(relayer);
        vm.expectRevert(abi.encodeWithSelector(TrialMismatch.selector, there, trialId));
        second.enroll(there, singleCircuit, singleA.inputs, singleA.proof);
        vm.expectRevert(abi.encodeWithSelector(TrialMismatch.selector, there, trialId));
        second.enroll(there, batchCircuit, batchCDE.inputs, batchCDE.proof);
        // Nor is there a trial of the first market's id to replay them into.
        vm.expectRevert(abi.encodeWithSelector(UnknownTrial.selector, trialId));
        second.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
        vm.stopPrank();
        assertEq(second.trial(there).enrolled, 0);
        assertEq(second.locked(there), total);
        assertEq(second.pendingWithdrawals(address(0), hospital), 0);
        assertEq(second.pendingWithdrawals(address(0), singleA.payouts[0]), 0);
    }

    function test_openTrialRejectsDeadlineInPast() public {
        vm.warp(1_000_000);
        uint64[2] memory bad = [uint64(block.timestamp), uint64(block.timestamp - 1)];
        for (uint256 i; i < bad.length; ++i) {
            vm.prank(sponsor);
            vm.expectRevert(abi.encodeWithSelector(ITrialMarket.DeadlineInPast.selector, bad[i]));
            market.openTrial(salt, _spec(), schemaHash, criteria, 1, 0, 1, bad[i], accreditor);
        }
    }

    function test_openTrialRejectsBadTerms() public {
        uint64 deadline = uint64(block.timestamp + 1);
        vm.deal(sponsor, 10 ether);
        vm.startPrank(sponsor);
        vm.expectRevert(ITrialMarket.InvalidTerms.selector);
        market.openTrial(salt, _spec(), schemaHash, criteria, 0, 0, 1, deadline, accreditor);
        vm.expectRevert(ITrialMarket.InvalidTerms.selector);
        market.openTrial(salt, _spec(), schemaHash, criteria, 1, 0, 0, deadline, accreditor);
        vm.expectRevert(ITrialMarket.InvalidTerms.selector);
        market.openTrial{value: 1}(
            salt, _spec(), schemaHash, criteria, 1, 10_001, 1, deadline, accreditor
        );
        // A 100% patient share is allowed.
        market.openTrial{value: 1}(
            salt, _spec(), schemaHash, criteria, 1, 10_000, 1, deadline, accreditor
        );
        vm.stopPrank();
    }

    function test_openTrialRejectsWrongPayment() public {
        uint64 deadline = uint64(block.timestamp + 1);
        vm.deal(sponsor, 100 ether);
        vm.startPrank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.WrongPayment.selector, BOUNTY * CAP, BOUNTY));
        market.openTrial{value: BOUNTY}(
            salt, _spec(), schemaHash, criteria, BOUNTY, SHARE_BPS, CAP, deadline, accreditor
        );
        vm.expectRevert(
            abi.encodeWithSelector(IEscrow.WrongPayment.selector, BOUNTY * CAP, BOUNTY * CAP + 1)
        );
        market.openTrial{value: BOUNTY * CAP + 1}(
            salt, _spec(), schemaHash, criteria, BOUNTY, SHARE_BPS, CAP, deadline, accreditor
        );
        vm.expectRevert(abi.encodeWithSelector(IEscrow.WrongPayment.selector, BOUNTY * CAP, 0));
        market.openTrial(
            salt, _spec(), schemaHash, criteria, BOUNTY, SHARE_BPS, CAP, deadline, accreditor
        );
        vm.stopPrank();
        assertEq(address(market).balance, 0);
    }

    /// Finding 2: the criteria count was not tied to the schema. A trial opened with the first 13
    /// of the 15 criteria words read the real proof's last two criteria words as a patient slot
    /// (crediting address 0x1 and spending "nullifier" 63). Now refused at opening.
    function test_attack_trialWithTruncatedCriteria() public {
        uint256[] memory c13 = new uint256[](13);
        for (uint256 i; i < 13; ++i) {
            c13[i] = criteria[i];
        }
        uint64 deadline = uint64(block.timestamp + 1);
        vm.deal(sponsor, BOUNTY * CAP);
        vm.prank(sponsor);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.WrongConstantsCount.selector, NUM_CRITERIA, 13)
        );
        market.openTrial{value: BOUNTY * CAP}(
            salt, _spec(), schemaHash, c13, BOUNTY, SHARE_BPS, CAP, deadline, accreditor
        );
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.UnknownTrial.selector, trialId));
        market.trial(trialId);
        // Nor can the proof be replayed against it: there is no trial.
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.UnknownTrial.selector, trialId));
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
        assertEq(market.pendingWithdrawals(address(0), address(1)), 0);
        assertEq(address(market).balance, 0);
    }

    /// Any criteria length other than the schema's is refused, longer ones and empty included.
    function test_openTrialRejectsWrongCriteriaCount() public {
        uint256[4] memory lengths = [0, 1, NUM_CRITERIA - 1, NUM_CRITERIA + 1];
        for (uint256 i; i < lengths.length; ++i) {
            uint256[] memory c = new uint256[](lengths[i]);
            vm.prank(sponsor);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IProofGated.WrongConstantsCount.selector, NUM_CRITERIA, lengths[i]
                )
            );
            market.openTrial(
                salt, _spec(), schemaHash, c, 1, 0, 1, uint64(block.timestamp + 1), accreditor
            );
        }
    }

    /// A schema no circuit serves has no criteria count: no trial can be opened for it (its
    /// escrow could only ever be refunded).
    function test_attack_trialForSchemaWithoutCircuit() public {
        vm.deal(sponsor, 1);
        vm.prank(sponsor);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.WrongConstantsCount.selector, 0, NUM_CRITERIA)
        );
        market.openTrial{value: 1}(
            salt, _spec(), OTHER_SCHEMA, criteria, 1, 0, 1, uint64(block.timestamp + 1), accreditor
        );
        uint256[] memory none = new uint256[](0);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.WrongConstantsCount.selector, 0, 0));
        market.openTrial{value: 1}(
            salt, _spec(), OTHER_SCHEMA, none, 1, 0, 1, uint64(block.timestamp + 1), accreditor
        );
    }

    function test_openTrialRejectsNonFieldCriteria() public {
        uint256[] memory bad = criteria;
        bad[3] = R;
        vm.prank(sponsor);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.InputNotInField.selector, CRITERIA_AT + 3)
        );
        market.openTrial(
            salt, _spec(), schemaHash, bad, 1, 0, 1, uint64(block.timestamp + 1), accreditor
        );
    }

    // ---- enroll: the happy path with real proofs ----

    function test_enrollSingleSpendsNullifierCreditsAndEmits() public {
        _openDefault();
        address patient = singleA.payouts[0];
        uint256 toPatient = _share(BOUNTY, SHARE_BPS);
        vm.expectEmit(address(market));
        emit Enrolled(
            trialId,
            singleA.nullifiers[0],
            datasetId,
            hospital,
            patient,
            BOUNTY - toPatient,
            toPatient,
            keccak256(singleA.proof)
        );
        assertEq(_enroll(singleA), 1);
        assertTrue(market.spent(trialId, singleA.nullifiers[0]));
        assertEq(market.trial(trialId).enrolled, 1);
        assertEq(market.pendingWithdrawals(address(0), hospital), BOUNTY - toPatient);
        assertEq(market.pendingWithdrawals(address(0), patient), toPatient);
        assertEq(market.pendingWithdrawals(address(0), relayer), 0, "the submitter earns nothing");
        assertEq(market.locked(trialId), BOUNTY * (CAP - 1));

        vm.expectEmit(address(market));
        emit Withdrawn(hospital, address(0), BOUNTY - toPatient);
        vm.prank(hospital);
        market.withdraw(address(0));
        vm.expectEmit(address(market));
        emit Withdrawn(patient, address(0), toPatient);
        vm.prank(patient);
        market.withdraw(address(0));
        assertEq(hospital.balance, BOUNTY - toPatient);
        assertEq(patient.balance, toPatient);
        assertEq(market.pendingWithdrawals(address(0), hospital), 0);
        assertEq(market.pendingWithdrawals(address(0), patient), 0);
        assertEq(address(market).balance, market.locked(trialId));
    }

    function test_enrollBatchEnrolsThreeSkippingTheEmptySlot() public {
        _openDefault();
        uint256 toPatient = _share(BOUNTY, SHARE_BPS);
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(address(market));
            emit Enrolled(
                trialId,
                batchCDE.nullifiers[i],
                datasetId,
                hospital,
                batchCDE.payouts[i],
                BOUNTY - toPatient,
                toPatient,
                keccak256(batchCDE.proof)
            );
        }
        assertEq(_enroll(batchCDE), 3);
        assertEq(batchCDE.payouts[3], address(0), "the fourth slot is empty");
        assertEq(market.trial(trialId).enrolled, 3);
        assertEq(market.pendingWithdrawals(address(0), hospital), 3 * (BOUNTY - toPatient));
        for (uint256 i; i < 3; ++i) {
            assertTrue(market.spent(trialId, batchCDE.nullifiers[i]));
            assertEq(market.pendingWithdrawals(address(0), batchCDE.payouts[i]), toPatient);
        }
        assertFalse(market.spent(trialId, 0), "the empty slot spends nothing");
        assertEq(market.pendingWithdrawals(address(0), address(0)), 0);
        assertEq(market.locked(trialId), BOUNTY * (CAP - 3));
        assertEq(address(market).balance, BOUNTY * CAP);
    }

    function test_enrollAllSixFixturePatients() public {
        _openDefault();
        // F (with A) first, then B alone and C, D, E in a batch: six patients.
        assertEq(_enroll(batchWithA), 2);
        assertEq(_enroll(singleB), 1);
        assertEq(_enroll(batchCDE), 3);
        assertEq(market.trial(trialId).enrolled, 6);
        assertEq(market.locked(trialId), BOUNTY * (CAP - 6));
        // A's own single proof now finds A enrolled.
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITrialMarket.NullifierSpent.selector, trialId, singleA.nullifiers[0]
            )
        );
        market.enroll(trialId, singleA.circuitId, singleA.inputs, singleA.proof);
    }

    function test_samePatientEntersTwoTrialsWithUnlinkableNullifiers() public {
        _openDefault();
        _open(otherSalt, BOUNTY, SHARE_BPS, CAP, uint64(block.timestamp + DURATION));
        _enroll(singleA);
        _enrollIn(otherTrialId, singleAOtherTrial);
        assertTrue(singleA.nullifiers[0] != singleAOtherTrial.nullifiers[0]);
        assertTrue(market.spent(otherTrialId, singleAOtherTrial.nullifiers[0]));
        assertFalse(market.spent(otherTrialId, singleA.nullifiers[0]));
        assertEq(
            market.pendingWithdrawals(address(0), singleA.payouts[0]), 2 * _share(BOUNTY, SHARE_BPS)
        );
    }

    function test_enrollAtDeadlineIsAccepted() public {
        _openDefault();
        vm.warp(market.trial(trialId).deadline);
        assertEq(_enroll(singleA), 1);
    }

    function test_zeroShareCreditsOnlyTheCustodian() public {
        _open(salt, BOUNTY, 0, CAP, uint64(block.timestamp + 1));
        _enroll(singleA);
        assertEq(market.pendingWithdrawals(address(0), hospital), BOUNTY);
        assertEq(market.pendingWithdrawals(address(0), singleA.payouts[0]), 0);
    }

    // ---- gas ----

    /// forge snapshot: opening the fixture's trial, its spec document checked against the hash
    /// and published.
    function test_gas_openTrial() public {
        _openDefault();
        uint256 gas = vm.snapshotGasLastCall("TrialMarket", "open_trial");
        emit log_named_uint("openTrial, spec published (call only)", gas);
    }

    /// forge snapshot: one real single-patient enrolment (B1 verification included).
    function test_gas_enrollSingle() public {
        _openDefault();
        _enroll(singleA);
        // Written to snapshots/TrialMarket.json; the call's gas, without the 21k base and calldata.
        uint256 gas = vm.snapshotGasLastCall("TrialMarket", "enroll_single");
        emit log_named_uint("enroll single (call only, B1 verification included)", gas);
        (bool ok,) = verifierB1.call(abi.encodePacked(singleA.inputs, singleA.proof));
        assertTrue(ok);
        uint256 verify = vm.snapshotGasLastCall("TrialMarket", "verify_b1");
        emit log_named_uint("B1 verifier alone", verify);
    }

    /// forge snapshot: one real batch enrolment of three patients (B4 verification included).
    function test_gas_enrollBatch() public {
        _openDefault();
        assertEq(_enroll(batchCDE), 3);
        uint256 gas = vm.snapshotGasLastCall("TrialMarket", "enroll_batch");
        vm.snapshotValue("TrialMarket", "enroll_batch_per_patient", gas / 3);
        emit log_named_uint("enroll batch of 3 (call only, B4 verification included)", gas);
        emit log_named_uint("enroll batch, per patient", gas / 3);
        (bool ok,) = verifierB4.call(abi.encodePacked(batchCDE.inputs, batchCDE.proof));
        assertTrue(ok);
        uint256 verify = vm.snapshotGasLastCall("TrialMarket", "verify_b4");
        emit log_named_uint("B4 verifier alone", verify);
        assertLt(verify, market.VERIFY_GAS(), "the batch verifier fits the forwarded gas");
    }

    // ---- enroll: double enrolment ----

    function test_attack_reusedNullifierSingle() public {
        _openDefault();
        _enroll(singleA);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITrialMarket.NullifierSpent.selector, trialId, singleA.nullifiers[0]
            )
        );
        market.enroll(trialId, singleA.circuitId, singleA.inputs, singleA.proof);
        assertEq(market.trial(trialId).enrolled, 1);
        assertEq(
            market.pendingWithdrawals(address(0), hospital), BOUNTY - _share(BOUNTY, SHARE_BPS)
        );
    }

    /// A batch holding A, already enrolled, skips A (no second payment, `EnrolmentSkipped`) and
    /// enrols F: one early enrolment cannot sink a hospital's referral. Replaying the batch
    /// then enrols nobody new and reverts.
    function test_batchSkipsAnAlreadyEnrolledPatient() public {
        _openDefault();
        _enroll(singleA);
        assertEq(batchWithA.nullifiers[1], singleA.nullifiers[0], "A is in the batch");
        uint256 f = batchWithA.nullifiers[0];
        uint256 cut = BOUNTY - _share(BOUNTY, SHARE_BPS);
        vm.expectEmit(address(market));
        emit EnrolmentSkipped(trialId, singleA.nullifiers[0]);
        assertEq(_enroll(batchWithA), 1);
        assertTrue(market.spent(trialId, f), "F is enrolled");
        assertEq(market.trial(trialId).enrolled, 2);
        assertEq(
            market.pendingWithdrawals(address(0), batchWithA.payouts[0]), _share(BOUNTY, SHARE_BPS)
        );
        assertEq(market.pendingWithdrawals(address(0), hospital), 2 * cut, "A is paid once");
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.NullifierSpent.selector, trialId, f));
        market.enroll(trialId, batchWithA.circuitId, batchWithA.inputs, batchWithA.proof);
    }

    function test_attack_singleAfterBatchWithSamePatient() public {
        _openDefault();
        _enroll(batchWithA);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                ITrialMarket.NullifierSpent.selector, trialId, singleA.nullifiers[0]
            )
        );
        market.enroll(trialId, singleA.circuitId, singleA.inputs, singleA.proof);
    }

    /// The verifier reduces inputs mod r, so `nullifier + r` would verify as the same proof
    /// under a "new" nullifier: the market refuses non-field inputs.
    function test_attack_nullifierAliasedModR() public {
        _openDefault();
        _enroll(singleA);
        uint256[] memory inputs = singleA.inputs;
        inputs[SLOTS_AT] += R;
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.InputNotInField.selector, SLOTS_AT));
        market.enroll(trialId, singleA.circuitId, inputs, singleA.proof);
    }

    // ---- enroll: proofs for something else ----

    function test_attack_proofForAnotherTrial() public {
        _openDefault();
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(ITrialMarket.TrialMismatch.selector, trialId, otherTrialId)
        );
        market.enroll(trialId, singleCircuit, singleAOtherTrial.inputs, singleAOtherTrial.proof);
    }

    function test_attack_proofForTrialIdWithOtherCriteria() public {
        uint256[] memory stricter = criteria;
        stricter[0] += 1;
        _openWith(otherSalt, stricter, BOUNTY, SHARE_BPS, CAP, uint64(block.timestamp + 1));
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(ITrialMarket.CriteriaMismatch.selector, otherTrialId)
        );
        market.enroll(
            otherTrialId, singleCircuit, singleAOtherTrial.inputs, singleAOtherTrial.proof
        );
    }

    function test_attack_tamperedCriteriaInput() public {
        _openDefault();
        for (uint256 i = CRITERIA_AT; i < SLOTS_AT; ++i) {
            uint256[] memory inputs = singleA.inputs;
            inputs[i] ^= 1;
            vm.prank(relayer);
            vm.expectRevert(abi.encodeWithSelector(ITrialMarket.CriteriaMismatch.selector, trialId));
            market.enroll(trialId, singleCircuit, inputs, singleA.proof);
        }
    }

    /// A trial posted with other criteria rejects the real proof; editing the public inputs to
    /// match the trial's criteria breaks the proof.
    function test_attack_trialWithOtherCriteriaRejectsRealProof() public {
        uint256[] memory looser = criteria;
        looser[1] += 10;
        _openWith(salt, looser, BOUNTY, SHARE_BPS, CAP, uint64(block.timestamp + 1));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.CriteriaMismatch.selector, trialId));
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
        uint256[] memory inputs = singleA.inputs;
        inputs[CRITERIA_AT + 1] = looser[1];
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, inputs, singleA.proof);
    }

    function test_attack_tamperedProof() public {
        _openDefault();
        bytes memory p = singleA.proof;
        p[200] = bytes1(uint8(p[200]) ^ 0x04);
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, singleA.inputs, p);
        assertFalse(market.spent(trialId, singleA.nullifiers[0]));
    }

    function test_attack_truncatedProof() public {
        _openDefault();
        bytes memory p = singleA.proof;
        assembly {
            mstore(p, sub(mload(p), 32))
        }
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, singleA.inputs, p);
    }

    /// Minting a fresh nullifier for an enrolled patient breaks the proof.
    function test_attack_tamperedNullifier() public {
        _openDefault();
        _enroll(singleA);
        uint256[] memory inputs = singleA.inputs;
        inputs[SLOTS_AT] ^= 1;
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, inputs, singleA.proof);
    }

    /// The payout address is bound by the proof: a front-runner cannot take the patient share.
    function test_attack_redirectedPayout() public {
        _openDefault();
        address thief = makeAddr("thief");
        uint256[] memory inputs = singleA.inputs;
        inputs[SLOTS_AT + 1] = uint160(thief);
        vm.prank(thief);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, inputs, singleA.proof);
        // Zeroing it (to give the whole bounty to the custodian) fails as well.
        inputs[SLOTS_AT + 1] = 0;
        vm.prank(hospital);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, inputs, singleA.proof);
        // The genuine submission, by anyone, pays the genuine patient.
        vm.prank(thief);
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
        assertEq(market.pendingWithdrawals(address(0), thief), 0);
        assertEq(
            market.pendingWithdrawals(address(0), singleA.payouts[0]), _share(BOUNTY, SHARE_BPS)
        );
    }

    /// The custodian holds each patient's record, blinding, path and identity commitment, but
    /// not the patient's identity secret: its attempt to enrol patient A first, to its own
    /// payout, is rejected by the verifier (before patient-held identities, the secret was
    /// derived from the custodian's salt and this proof was valid). The patient's own proof then
    /// enrols them and pays their address.
    function test_attack_custodianPreemptsAPatient() public {
        _openDefault();
        uint256 slot = SLOTS_AT;
        assertEq(custodianInputs.length, singleA.inputs.length, "a single-patient proof");
        assertEq(custodianInputs[slot + 1], uint160(hospital), "to the custodian's own payout");
        for (uint256 i; i < slot; ++i) {
            assertEq(custodianInputs[i], singleA.inputs[i], "the same root, trial and criteria");
        }
        vm.prank(hospital);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, custodianInputs, custodianProof);
        // With the patient's nullifier instead of its own guess's, the proof fails just as well.
        uint256[] memory inputs = custodianInputs;
        inputs[slot] = singleA.nullifiers[0];
        vm.prank(hospital);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, inputs, custodianProof);
        vm.prank(relayer);
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
        assertEq(
            market.pendingWithdrawals(address(0), singleA.payouts[0]), _share(BOUNTY, SHARE_BPS)
        );
    }

    /// The empty slot of a batch is bound by the proof too: nobody can be smuggled into it.
    function test_attack_fillEmptyBatchSlot() public {
        _openDefault();
        uint256[] memory inputs = batchCDE.inputs;
        uint256 last = inputs.length - 2;
        assertEq(inputs[last], 0);
        inputs[last] = singleB.nullifiers[0];
        inputs[last + 1] = uint160(singleB.payouts[0]);
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, batchCircuit, inputs, batchCDE.proof);
    }

    function test_attack_proofUnderTheOtherCircuit() public {
        _openDefault();
        // As they are, the inputs do not have the other circuit's count.
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IProofGated.WrongInputCount.selector, BATCH_INPUTS, SINGLE_INPUTS
            )
        );
        market.enroll(trialId, batchCircuit, singleA.inputs, singleA.proof);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IProofGated.WrongInputCount.selector, SINGLE_INPUTS, BATCH_INPUTS
            )
        );
        market.enroll(trialId, singleCircuit, batchCDE.inputs, batchCDE.proof);
        // Padded with empty slots, or cut, to the other circuit's count, they fail to verify.
        uint256[] memory padded = new uint256[](BATCH_INPUTS);
        for (uint256 i; i < SINGLE_INPUTS; ++i) {
            padded[i] = singleA.inputs[i];
        }
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, batchCircuit, padded, singleA.proof);
        uint256[] memory cut = new uint256[](SINGLE_INPUTS);
        for (uint256 i; i < SINGLE_INPUTS; ++i) {
            cut[i] = batchCDE.inputs[i];
        }
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, cut, batchCDE.proof);
    }

    function test_attack_nonFieldInputs() public {
        _openDefault();
        for (uint256 i; i < singleA.inputs.length; ++i) {
            uint256[] memory inputs = singleA.inputs;
            inputs[i] = R + i;
            vm.prank(relayer);
            vm.expectRevert(abi.encodeWithSelector(IProofGated.InputNotInField.selector, i));
            market.enroll(trialId, singleCircuit, inputs, singleA.proof);
        }
    }

    function test_enrollRejectsWrongInputCount() public {
        _openDefault();
        uint256[5] memory lengths = [SLOTS_AT + 1, SLOTS_AT, 0, SINGLE_INPUTS + 2, BATCH_INPUTS];
        for (uint256 i; i < lengths.length; ++i) {
            uint256[] memory inputs = new uint256[](lengths[i]);
            for (uint256 j; j < inputs.length && j < SINGLE_INPUTS; ++j) {
                inputs[j] = singleA.inputs[j];
            }
            vm.prank(relayer);
            vm.expectRevert(
                abi.encodeWithSelector(
                    IProofGated.WrongInputCount.selector, SINGLE_INPUTS, lengths[i]
                )
            );
            market.enroll(trialId, singleCircuit, inputs, singleA.proof);
        }
        // The batch circuit takes exactly its own count too.
        uint256[] memory long = new uint256[](BATCH_INPUTS + 2);
        for (uint256 j; j < BATCH_INPUTS; ++j) {
            long[j] = batchCDE.inputs[j];
        }
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IProofGated.WrongInputCount.selector, BATCH_INPUTS, BATCH_INPUTS + 2
            )
        );
        market.enroll(trialId, batchCircuit, long, batchCDE.proof);
    }

    /// @dev The first `keep` public inputs of a real proof, and its proof bytes with the other
    /// inputs moved in front: the calldata the verifier reads is byte for byte the genuine one.
    function _moveInputsIntoProof(Entry memory e, uint256 keep)
        internal
        pure
        returns (uint256[] memory head, bytes memory proof)
    {
        head = new uint256[](keep);
        uint256[] memory tail = new uint256[](e.inputs.length - keep);
        for (uint256 i; i < keep; ++i) {
            head[i] = e.inputs[i];
        }
        for (uint256 i; i < tail.length; ++i) {
            tail[i] = e.inputs[keep + i];
        }
        proof = abi.encodePacked(tail, e.proof);
        assertEq(abi.encodePacked(head, proof), abi.encodePacked(e.inputs, e.proof));
    }

    /// Finding 1: the generated verifier reads calldata at fixed offsets without checking its
    /// length, so a batch proof's trailing input words could be moved into the proof bytes. With
    /// a cap of 2, the batch of three (C, D, E) cut to its first two slots enrolled C and D
    /// instead of reverting `CapReached`. Now the input count must be the circuit's.
    function test_attack_truncatedBatchUnderCap() public {
        _open(salt, BOUNTY, SHARE_BPS, 2, uint64(block.timestamp + 1));
        (uint256[] memory head, bytes memory p) = _moveInputsIntoProof(batchCDE, SLOTS_AT + 4);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.WrongInputCount.selector, BATCH_INPUTS, SLOTS_AT + 4)
        );
        market.enroll(trialId, batchCircuit, head, p);
        // Every cut point is refused, down to a bare header.
        for (uint256 keep = SLOTS_AT; keep < BATCH_INPUTS; ++keep) {
            (head, p) = _moveInputsIntoProof(batchCDE, keep);
            vm.prank(relayer);
            vm.expectRevert(
                abi.encodeWithSelector(IProofGated.WrongInputCount.selector, BATCH_INPUTS, keep)
            );
            market.enroll(trialId, batchCircuit, head, p);
        }
        assertEq(market.trial(trialId).enrolled, 0);
        for (uint256 i; i < 3; ++i) {
            assertFalse(market.spent(trialId, batchCDE.nullifiers[i]));
        }
        assertEq(market.pendingWithdrawals(address(0), hospital), 0);
        assertEq(market.locked(trialId), 2 * BOUNTY);
    }

    /// Finding 1, second form: after A enrolled alone, the batch of F and A (which reverts as a
    /// whole) was cut to F's slot, enrolling F alone. The batch must be taken whole.
    function test_attack_truncatedBatchDropsSpentPatient() public {
        _openDefault();
        _enroll(singleA);
        assertEq(batchWithA.nullifiers[1], singleA.nullifiers[0], "A is in the batch's 2nd slot");
        (uint256[] memory head, bytes memory p) = _moveInputsIntoProof(batchWithA, SLOTS_AT + 2);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.WrongInputCount.selector, BATCH_INPUTS, SLOTS_AT + 2)
        );
        market.enroll(trialId, batchCircuit, head, p);
        // Under the single circuit, whose count it now has, the batch proof does not verify.
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, head, p);
        assertFalse(market.spent(trialId, batchWithA.nullifiers[0]), "F is not enrolled");
        assertEq(market.trial(trialId).enrolled, 1);
        assertEq(market.pendingWithdrawals(address(0), batchWithA.payouts[0]), 0);
        // The honest split still enrols F alone (A is skipped).
        assertEq(_enroll(batchWithA), 1);
        assertEq(market.trial(trialId).enrolled, 2);
    }

    /// Finding 1, converse: padding the inputs (moving proof words into them) is refused as well.
    function test_attack_proofWordsMovedIntoInputs() public {
        _openDefault();
        bytes memory proof = singleA.proof;
        uint256[] memory inputs = new uint256[](SINGLE_INPUTS + 2);
        bytes memory rest = new bytes(proof.length - 64);
        for (uint256 i; i < SINGLE_INPUTS; ++i) {
            inputs[i] = singleA.inputs[i];
        }
        (bytes32 w0, bytes32 w1) = abi.decode(proof, (bytes32, bytes32));
        (inputs[SINGLE_INPUTS], inputs[SINGLE_INPUTS + 1]) = (uint256(w0), uint256(w1));
        for (uint256 i; i < rest.length; ++i) {
            rest[i] = proof[64 + i];
        }
        assertEq(abi.encodePacked(inputs, rest), abi.encodePacked(singleA.inputs, proof));
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IProofGated.WrongInputCount.selector, SINGLE_INPUTS, SINGLE_INPUTS + 2
            )
        );
        market.enroll(trialId, singleCircuit, inputs, rest);
    }

    // ---- enroll: cap and deadline ----

    function test_attack_capReachedBySingle() public {
        _open(salt, BOUNTY, SHARE_BPS, 1, uint64(block.timestamp + 1));
        _enroll(singleA);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.CapReached.selector, trialId, 1));
        market.enroll(trialId, singleCircuit, singleB.inputs, singleB.proof);
        assertFalse(market.spent(trialId, singleB.nullifiers[0]));
        assertEq(market.locked(trialId), 0);
        assertEq(address(market).balance, BOUNTY);
    }

    function test_attack_capReachedByBatch() public {
        _open(salt, BOUNTY, SHARE_BPS, 2, uint64(block.timestamp + 1));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.CapReached.selector, trialId, 2));
        market.enroll(trialId, batchCircuit, batchCDE.inputs, batchCDE.proof);
        assertEq(market.trial(trialId).enrolled, 0);
        assertFalse(market.spent(trialId, batchCDE.nullifiers[0]));
        assertEq(market.pendingWithdrawals(address(0), hospital), 0);
    }

    function test_batchFillsCapExactly() public {
        _open(salt, BOUNTY, SHARE_BPS, 3, uint64(block.timestamp + 1));
        assertEq(_enroll(batchCDE), 3);
        assertEq(market.locked(trialId), 0);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.CapReached.selector, trialId, 3));
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
    }

    function test_attack_enrollAfterDeadline() public {
        _openDefault();
        uint64 deadline = market.trial(trialId).deadline;
        vm.warp(deadline + 1);
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(ITrialMarket.DeadlinePassed.selector, trialId, deadline)
        );
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
    }

    // ---- enroll: trial, dataset, circuit ----

    function test_enrollRejectsUnknownTrial() public {
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.UnknownTrial.selector, trialId));
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
    }

    function test_enrollRejectsUnknownMemberRoot() public {
        // A market whose registry never saw the hospital's dataset.
        (registry, market) = _deploy();
        _openDefault();
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatasetRegistryEvents.UnknownMemberRoot.selector, hospital, memberRoot
            )
        );
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
        // Or a forged root.
        uint256[] memory inputs = singleA.inputs;
        inputs[0] = 12_345;
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatasetRegistryEvents.UnknownMemberRoot.selector, hospital, bytes32(inputs[0])
            )
        );
        market.enroll(trialId, singleCircuit, inputs, singleA.proof);
    }

    /// The registrant (public input 2) must be an address: a word of 2^160 or more (still a
    /// field element) is refused before the registry is asked.
    function test_enrollRejectsNonAddressRegistrant() public {
        _openDefault();
        uint256[3] memory words =
            [uint256(1) << 160, (uint256(1) << 160) | uint160(hospital), R - 1];
        for (uint256 i; i < words.length; ++i) {
            uint256[] memory inputs = singleA.inputs;
            inputs[REGISTRANT_AT] = words[i];
            vm.prank(relayer);
            vm.expectRevert(
                abi.encodeWithSelector(ITrialMarket.InvalidRegistrant.selector, words[i])
            );
            market.enroll(trialId, singleCircuit, inputs, singleA.proof);
        }
        assertEq(market.trial(trialId).enrolled, 0);
    }

    /// Regression (issue #14, registration squatting): a commitment and a membership root were
    /// accepted once globally, so a copier who front-ran the hospital's `register` (same
    /// commitment, same root) became the custodian of record of the hospital's patients: the
    /// hospital could never register, and the copier was paid the custodian share of every
    /// enrolment. Now uniqueness is per registrant and every eligibility proof names its
    /// registrant (public input 2): the hospital still registers, its patients' proofs enrol
    /// through its own dataset and pay it, and the copy opens nothing, even when the copier is
    /// an accredited custodian and re-points a proof at itself (the proof binds the registrant).
    function test_attack_registrationSquattingIsHarmless() public {
        address copier = makeAddr("copier");
        (registry, market) = _deploy();
        vm.prank(accreditor);
        accreditations.accredit(copier);
        // The copier front-runs the hospital's pending registration.
        (uint256 copy, uint256 own) = _registerCopyThenOwn(registry, copier);
        assertTrue(own != copy);
        assertEq(registry.dataset(own).registrant, hospital);
        assertEq(registry.dataset(copy).registrant, copier);
        _openDefault();
        // The patients' proofs name the hospital: they enrol through its dataset and pay it.
        vm.expectEmit(address(market));
        emit Enrolled(
            trialId,
            singleA.nullifiers[0],
            own,
            hospital,
            singleA.payouts[0],
            BOUNTY - _share(BOUNTY, SHARE_BPS),
            _share(BOUNTY, SHARE_BPS),
            keccak256(singleA.proof)
        );
        assertEq(_enroll(singleA), 1);
        assertEq(_enroll(batchCDE), 3);
        uint256 cut = BOUNTY - _share(BOUNTY, SHARE_BPS);
        assertEq(market.pendingWithdrawals(address(0), hospital), 4 * cut);
        // A proof re-pointed at the copier's registration finds the copy, which the verifier
        // then refuses: the proof was made for the hospital's.
        uint256[] memory inputs = singleB.inputs;
        inputs[REGISTRANT_AT] = uint160(copier);
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, inputs, singleB.proof);
        assertEq(market.pendingWithdrawals(address(0), copier), 0);
        assertEq(market.trial(trialId).enrolled, 4);
        // The copier retiring its copy blocks nobody.
        vm.prank(copier);
        registry.retire(copy);
        assertEq(_enroll(singleB), 1);
        assertEq(market.pendingWithdrawals(address(0), hospital), 5 * cut);
        assertEq(market.pendingWithdrawals(address(0), copier), 0);
    }

    /// @dev `copier` registers the fixture's dataset on `r`, then the hospital does; returns
    /// both ids.
    function _registerCopyThenOwn(DatasetRegistry r, address copier)
        internal
        returns (uint256 copy, uint256 own)
    {
        vm.prank(copier);
        copy = r.register(commitment, schemaHash, recordCount, singleCircuit, memberRoot);
        vm.prank(hospital);
        own = r.register(commitment, schemaHash, recordCount, singleCircuit, memberRoot);
    }

    /// Registration squatting on a second deployment: the copier replays the hospital's
    /// registration (public on the first chain) on a fresh registry and market before the
    /// hospital gets there. The hospital still registers there (another registrant's copy is
    /// no obstacle), each lookup by registrant finds its own dataset, and the copier is paid
    /// nothing for the hospital's proofs (re-pointed at it, they fail).
    function test_attack_registrationSquattingOnASecondDeploymentIsHarmless() public {
        address copier = makeAddr("copier");
        vm.prank(accreditor);
        accreditations.accredit(copier);
        DatasetRegistry second = new DatasetRegistry();
        TrialMarket secondMarket = _deployElsewhere(second);
        (uint256 copy, uint256 own) = _registerCopyThenOwn(second, copier);
        (uint256 byHospital, DatasetRegistry.Dataset memory d) =
            second.datasetByMemberRoot(hospital, memberRoot);
        (uint256 byCopier,) = second.datasetByMemberRoot(copier, memberRoot);
        assertEq(byHospital, own);
        assertEq(byCopier, copy);
        assertEq(d.custodian, hospital);
        assertEq(d.registrant, hospital);
        // A sponsor's trial there: the hospital's proofs (bound to the first market's trial)
        // do not enrol, re-pointed at the copier neither.
        uint256 total = BOUNTY * CAP;
        uint256 there = _openDefaultOn(secondMarket);
        uint256[] memory inputs = singleA.inputs;
        inputs[1] = there;
        inputs[REGISTRANT_AT] = uint160(copier);
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        secondMarket.enroll(there, singleCircuit, inputs, singleA.proof);
        assertEq(secondMarket.pendingWithdrawals(address(0), copier), 0);
        assertEq(secondMarket.locked(there), total);
        // On the first deployment the hospital's registration and proofs are untouched.
        _openDefault();
        assertEq(_enroll(singleA), 1);
        assertEq(
            market.pendingWithdrawals(address(0), hospital), BOUNTY - _share(BOUNTY, SHARE_BPS)
        );
    }

    function test_enrollRejectsRetiredDataset() public {
        _openDefault();
        vm.prank(hospital);
        registry.retire(datasetId);
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.DatasetRetired.selector, datasetId));
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
    }

    function test_enrollRejectsCircuitOfAnotherSchema() public {
        _openDefault();
        _setCircuit(singleCircuit, _single(verifierB1, OTHER_SCHEMA));
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.SchemaMismatch.selector, schemaHash, OTHER_SCHEMA)
        );
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
    }

    function test_enrollRejectsDatasetOfAnotherSchema() public {
        (registry, market) = _deploy();
        vm.prank(hospital);
        registry.register(commitment, OTHER_SCHEMA, recordCount, singleCircuit, memberRoot);
        _openDefault();
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.SchemaMismatch.selector, schemaHash, OTHER_SCHEMA)
        );
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
    }

    /// The criteria with another consent purpose (their last word).
    function _withPurpose(uint256 purpose) internal view returns (uint256[] memory c) {
        c = criteria;
        c[c.length - 1] = purpose;
    }

    /// Issue #14: a sponsor could name any consent purpose, one no patient was ever asked
    /// about. Only the purposes registered for the trial's schema (the schema's consent
    /// column, set at deployment) are accepted.
    function test_attack_trialWithAnUnregisteredPurposeIsRefused() public {
        assertEq(market.consentPurposes(schemaHash, 1), bytes32("trials"));
        assertEq(market.consentPurposes(schemaHash, 4), 0, "the schema has four purposes");
        uint64 deadline = uint64(block.timestamp + DURATION);
        for (uint256 i; i < 3; ++i) {
            uint256 purpose = [uint256(4), 255, 1 << 200][i];
            vm.deal(sponsor, BOUNTY);
            vm.prank(sponsor);
            vm.expectRevert(abi.encodeWithSelector(UnknownConsentPurpose.selector, purpose));
            market.openTrial{value: BOUNTY}(
                salt,
                _spec(),
                schemaHash,
                _withPurpose(purpose),
                BOUNTY,
                SHARE_BPS,
                1,
                deadline,
                accreditor
            );
        }
        // A registered purpose of another schema is not one of this schema.
        _setCircuit(keccak256("elig1-other"), _single(verifierB1, OTHER_SCHEMA));
        vm.deal(sponsor, BOUNTY);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(UnknownConsentPurpose.selector, 1));
        market.openTrial{value: BOUNTY}(
            salt,
            _spec(),
            OTHER_SCHEMA,
            criteria,
            BOUNTY,
            SHARE_BPS,
            1,
            uint64(block.timestamp + DURATION),
            accreditor
        );
        // Every registered purpose opens.
        for (uint256 p; p < 4; ++p) {
            _openWith(
                bytes32(uint256(salt) + p),
                _withPurpose(p),
                BOUNTY,
                SHARE_BPS,
                1,
                uint64(block.timestamp + 1)
            );
        }
    }

    /// A purpose is added (or removed) only by the owner, with `CONSENT_PURPOSE_DELAY` notice
    /// and events; the owner may withdraw a proposal.
    function test_consentPurposeChangesAreTimelocked() public {
        uint64 eta = uint64(block.timestamp) + market.CONSENT_PURPOSE_DELAY();
        vm.prank(sponsor);
        vm.expectRevert(Ownable.Unauthorized.selector);
        market.proposeConsentPurpose(schemaHash, 4, "biobank");
        vm.expectEmit(address(market));
        emit ConsentPurposeProposed(schemaHash, 4, "biobank", eta);
        vm.prank(owner);
        market.proposeConsentPurpose(schemaHash, 4, "biobank");
        vm.expectRevert(
            abi.encodeWithSelector(ConsentPurposeNotYetDue.selector, schemaHash, 4, eta)
        );
        market.applyConsentPurpose(schemaHash, 4);
        vm.deal(sponsor, BOUNTY);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(UnknownConsentPurpose.selector, 4));
        market.openTrial{value: BOUNTY}(
            salt,
            _spec(),
            schemaHash,
            _withPurpose(4),
            BOUNTY,
            SHARE_BPS,
            1,
            uint64(block.timestamp + DURATION),
            accreditor
        );
        (bytes32 pendingName, uint64 pendingEta) = market.pendingConsentPurposes(schemaHash, 4);
        assertEq(pendingName, bytes32("biobank"));
        assertEq(pendingEta, eta);
        vm.warp(eta);
        vm.expectEmit(address(market));
        emit ConsentPurposeSet(schemaHash, 4, 0, "biobank");
        vm.prank(relayer); // anyone applies a proposal whose notice has run out
        market.applyConsentPurpose(schemaHash, 4);
        assertEq(market.consentPurposes(schemaHash, 4), bytes32("biobank"));
        vm.expectRevert(abi.encodeWithSelector(NoPendingConsentPurpose.selector, schemaHash, 4));
        market.applyConsentPurpose(schemaHash, 4);
        _openWith(salt, _withPurpose(4), BOUNTY, SHARE_BPS, 1, uint64(block.timestamp + 1));

        // Removal goes through the same notice; a proposal can be withdrawn.
        vm.startPrank(owner);
        market.proposeConsentPurpose(schemaHash, 4, 0);
        vm.expectEmit(address(market));
        emit ConsentPurposeProposalCancelled(schemaHash, 4);
        market.cancelConsentPurpose(schemaHash, 4);
        vm.expectRevert(abi.encodeWithSelector(NoPendingConsentPurpose.selector, schemaHash, 4));
        market.cancelConsentPurpose(schemaHash, 4);
        market.proposeConsentPurpose(schemaHash, 4, 0);
        vm.stopPrank();
        vm.warp(block.timestamp + market.CONSENT_PURPOSE_DELAY());
        vm.expectEmit(address(market));
        emit ConsentPurposeSet(schemaHash, 4, "biobank", 0);
        market.applyConsentPurpose(schemaHash, 4);
        vm.deal(sponsor, BOUNTY);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(UnknownConsentPurpose.selector, 4));
        market.openTrial{value: BOUNTY}(
            keccak256("another trial"),
            _spec(),
            schemaHash,
            _withPurpose(4),
            BOUNTY,
            SHARE_BPS,
            1,
            uint64(block.timestamp + DURATION),
            accreditor
        );
    }

    /// The purposes set at deployment are named, each once, with events.
    function test_constructorRegistersConsentPurposes() public {
        bytes32[] memory ids = new bytes32[](0);
        IProofGated.Circuit[] memory cs = new IProofGated.Circuit[](0);
        IConsentPurposes.ConsentPurpose[] memory p = ClinicalPurposes.forSchema(schemaHash);
        vm.expectEmit();
        emit ConsentPurposeSet(schemaHash, 0, 0, "research");
        TrialMarket m = new TrialMarket(registry, accreditations, owner, ids, cs, p);
        assertEq(m.consentPurposes(schemaHash, 3), bytes32("genomics"));
        p[2].name = 0;
        vm.expectRevert(abi.encodeWithSelector(InvalidConsentPurpose.selector, schemaHash, 2));
        new TrialMarket(registry, accreditations, owner, ids, cs, p);
        p[2] = p[1];
        vm.expectRevert(abi.encodeWithSelector(InvalidConsentPurpose.selector, schemaHash, 1));
        new TrialMarket(registry, accreditations, owner, ids, cs, p);
    }

    function test_enrollRejectsTrialOfAnotherSchema() public {
        // Another schema with the same criteria count, served by another circuit, whose
        // "trials" purpose is registered too.
        _setCircuit(keccak256("elig1-other"), _single(verifierB1, OTHER_SCHEMA));
        _addPurpose(OTHER_SCHEMA, criteria[criteria.length - 1], "trials");
        vm.deal(sponsor, 1);
        vm.prank(sponsor);
        market.openTrial{value: 1}(
            salt, _spec(), OTHER_SCHEMA, criteria, 1, 0, 1, uint64(block.timestamp + 1), accreditor
        );
        vm.prank(relayer);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.SchemaMismatch.selector, OTHER_SCHEMA, schemaHash)
        );
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
    }

    function test_enrollRejectsUnknownCircuit() public {
        _openDefault();
        bytes32 unknown = keccak256("elig1-unknown");
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.NoVerifier.selector, unknown));
        market.enroll(trialId, unknown, singleA.inputs, singleA.proof);
        // A circuit whose verifier was removed is unknown too.
        _setCircuit(singleCircuit, _single(address(0), schemaHash));
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.NoVerifier.selector, singleCircuit));
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
    }

    function test_verifierReturningDataIsNotAnAcceptance() public {
        _openDefault();
        address fake = address(new ReturningVerifier());
        _setCircuit(singleCircuit, _single(fake, schemaHash));
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, singleA.inputs, singleA.proof);
    }

    /// Checks after verification, unreachable with the real circuit (which never outputs an
    /// empty batch or a payout above 160 bits), reached through an accept-all verifier.
    function test_emptyEnrolmentAndNonAddressPayoutRejected() public {
        _openDefault();
        address fake = address(new AcceptingVerifier());
        _setCircuit(singleCircuit, _single(fake, schemaHash));
        uint256[] memory inputs = singleA.inputs;
        inputs[SLOTS_AT] = 0;
        vm.prank(relayer);
        vm.expectRevert(ITrialMarket.EmptyEnrolment.selector);
        market.enroll(trialId, singleCircuit, inputs, singleA.proof);
        inputs[SLOTS_AT] = singleA.nullifiers[0];
        inputs[SLOTS_AT + 1] = 1 << 160;
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.InvalidPayout.selector, 1 << 160));
        market.enroll(trialId, singleCircuit, inputs, singleA.proof);
    }

    // ---- refund ----

    function test_refundCreditsUnusedPlacesOnce() public {
        _openDefault();
        _enroll(batchCDE);
        uint64 deadline = market.trial(trialId).deadline;
        vm.warp(deadline + 1);
        vm.expectEmit(address(market));
        emit TrialRefunded(trialId, sponsor, BOUNTY * (CAP - 3));
        vm.prank(sponsor);
        market.refund(trialId);
        assertEq(market.pendingWithdrawals(address(0), sponsor), BOUNTY * (CAP - 3));
        assertEq(market.locked(trialId), 0);
        assertTrue(market.trial(trialId).refunded);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.AlreadyRefunded.selector, trialId));
        market.refund(trialId);

        vm.prank(sponsor);
        market.withdraw(address(0));
        assertEq(sponsor.balance, BOUNTY * (CAP - 3));
        // What is left is exactly what the custodian and the patients are owed.
        uint256 owed = market.pendingWithdrawals(address(0), hospital);
        for (uint256 i; i < 3; ++i) {
            owed += market.pendingWithdrawals(address(0), batchCDE.payouts[i]);
        }
        assertEq(owed, 3 * BOUNTY);
        assertEq(address(market).balance, owed);
    }

    function test_refundOfFullTrialIsZero() public {
        _open(salt, BOUNTY, SHARE_BPS, 1, uint64(block.timestamp + 1));
        _enroll(singleA);
        vm.warp(block.timestamp + 2);
        vm.prank(sponsor);
        market.refund(trialId);
        assertEq(market.pendingWithdrawals(address(0), sponsor), 0);
        vm.prank(sponsor);
        vm.expectRevert(IEscrow.NothingToWithdraw.selector);
        market.withdraw(address(0));
    }

    function test_attack_refundBeforeDeadline() public {
        _openDefault();
        uint64 deadline = market.trial(trialId).deadline;
        vm.warp(deadline);
        vm.prank(sponsor);
        vm.expectRevert(
            abi.encodeWithSelector(IEscrow.DeadlineNotPassed.selector, trialId, deadline)
        );
        market.refund(trialId);
    }

    function test_attack_refundByOther() public {
        _openDefault();
        vm.warp(block.timestamp + DURATION + 1);
        vm.prank(hospital);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.NotSponsor.selector, trialId, hospital));
        market.refund(trialId);
    }

    function test_refundUnknownTrial() public {
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.UnknownTrial.selector, trialId));
        market.refund(trialId);
        vm.expectRevert(abi.encodeWithSelector(ITrialMarket.UnknownTrial.selector, trialId));
        market.locked(trialId);
    }

    // ---- withdraw ----

    function test_withdrawNothing() public {
        vm.prank(hospital);
        vm.expectRevert(IEscrow.NothingToWithdraw.selector);
        market.withdraw(address(0));
    }

    function test_withdrawPaysOnce() public {
        _openDefault();
        _enroll(singleA);
        vm.prank(hospital);
        market.withdraw(address(0));
        vm.prank(hospital);
        vm.expectRevert(IEscrow.NothingToWithdraw.selector);
        market.withdraw(address(0));
        assertEq(hospital.balance, BOUNTY - _share(BOUNTY, SHARE_BPS));
    }

    function test_attack_reentrancyOnWithdraw() public {
        // The hospital hands its dataset to a contract that re-enters `withdraw` (the proofs
        // keep naming the hospital, its registrant; the contract is paid as its custodian).
        ReentrantCustodian attacker = new ReentrantCustodian(market);
        vm.prank(accreditor);
        accreditations.accredit(address(attacker));
        vm.prank(hospital);
        registry.transferCustodian(datasetId, address(attacker));
        attacker.acceptCustodian(registry, datasetId);
        _openDefault();
        _enroll(singleA);
        _enroll(singleB);
        uint256 custodianCut = 2 * (BOUNTY - _share(BOUNTY, SHARE_BPS));
        assertEq(market.pendingWithdrawals(address(0), address(attacker)), custodianCut);

        attacker.withdraw();
        assertEq(address(attacker).balance, custodianCut, "paid exactly once");
        assertEq(attacker.reentries(), 1);
        assertEq(
            attacker.reentryError(),
            abi.encodeWithSelector(ReentrancyGuard.Reentrancy.selector),
            "re-entry refused by the guard"
        );
        assertEq(
            address(market).balance,
            market.locked(trialId) + 2 * _share(BOUNTY, SHARE_BPS),
            "the patients' credit and the escrow are intact"
        );
    }

    // ---- fuzz ----

    function testFuzz_onlyTheHashedSpecIsPublished(bytes calldata document, bytes32 hash) public {
        vm.assume(sha256(document) != hash);
        uint64 deadline = uint64(block.timestamp + DURATION);
        vm.deal(sponsor, 2);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(SpecMismatch.selector, hash, sha256(document)));
        market.openTrial{value: 1}(
            salt,
            Spec({hash: hash, document: document}),
            schemaHash,
            criteria,
            1,
            0,
            1,
            deadline,
            accreditor
        );
        // Hashed before the prank, which the SHA-256 precompile call would take.
        bytes32 actual = sha256(document);
        vm.expectEmit(true, true, true, true, address(market));
        emit SpecPublished(trialId, actual, document);
        vm.prank(sponsor);
        market.openTrial{value: 1}(
            salt,
            Spec({hash: actual, document: document}),
            schemaHash,
            criteria,
            1,
            0,
            1,
            deadline,
            accreditor
        );
    }

    function testFuzz_singleEnrolmentAccounting(uint256 bounty, uint16 shareBps, uint32 cap)
        public
    {
        bounty = bound(bounty, 1, 1_000 ether);
        shareBps = uint16(bound(shareBps, 0, 10_000));
        cap = uint32(bound(cap, 1, 1_000));
        _open(salt, bounty, shareBps, cap, uint64(block.timestamp + 1));
        uint256 lockedBefore = market.locked(trialId);
        assertEq(lockedBefore, bounty * cap);
        _enroll(singleA);
        uint256 toCustodian = market.pendingWithdrawals(address(0), hospital);
        uint256 toPatient = market.pendingWithdrawals(address(0), singleA.payouts[0]);
        assertEq(toCustodian + toPatient, bounty, "one bounty, split");
        assertEq(toPatient, bounty * shareBps / 10_000, "the patient's share, rounded down");
        assertEq(lockedBefore - market.locked(trialId), bounty, "locked drops by one bounty");
        assertEq(address(market).balance, market.locked(trialId) + toCustodian + toPatient);
    }

    function testFuzz_batchEnrolmentAccounting(uint256 bounty, uint16 shareBps, uint32 cap) public {
        bounty = bound(bounty, 1, 1_000 ether);
        shareBps = uint16(bound(shareBps, 0, 10_000));
        cap = uint32(bound(cap, 3, 1_000));
        _open(salt, bounty, shareBps, cap, uint64(block.timestamp + 1));
        _enroll(batchCDE);
        uint256 credited = market.pendingWithdrawals(address(0), hospital);
        for (uint256 i; i < 3; ++i) {
            uint256 toPatient = market.pendingWithdrawals(address(0), batchCDE.payouts[i]);
            assertEq(toPatient, bounty * shareBps / 10_000);
            credited += toPatient;
        }
        assertEq(credited, 3 * bounty);
        assertEq(market.locked(trialId), bounty * (cap - 3));
        assertEq(address(market).balance, market.locked(trialId) + credited);
    }

    function testFuzz_refundIsUnusedPlaces(uint8 mask, uint32 late) public {
        mask = uint8(bound(mask, 0, 7));
        _openDefault();
        uint256 enrolled;
        if (mask & 1 != 0) enrolled += _enroll(singleA);
        if (mask & 2 != 0) enrolled += _enroll(singleB);
        if (mask & 4 != 0) enrolled += _enroll(batchCDE);
        vm.warp(uint256(market.trial(trialId).deadline) + 1 + late);
        vm.prank(sponsor);
        market.refund(trialId);
        assertEq(market.pendingWithdrawals(address(0), sponsor), BOUNTY * (CAP - enrolled));
        assertEq(market.trial(trialId).enrolled, enrolled);
    }

    /// Any change to a public input of a real proof is refused, each by the check it trips.
    function testFuzz_anyChangedPublicInputIsRejected(uint256 which, uint256 value) public {
        _openDefault();
        uint256[] memory inputs = batchCDE.inputs;
        which = bound(which, 0, inputs.length - 1);
        value = bound(value, 0, R - 1);
        vm.assume(value != inputs[which]);
        inputs[which] = value;
        if (which == 0) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IDatasetRegistryEvents.UnknownMemberRoot.selector, hospital, bytes32(value)
                )
            );
        } else if (which == 1) {
            vm.expectRevert(
                abi.encodeWithSelector(ITrialMarket.TrialMismatch.selector, trialId, value)
            );
        } else if (which == REGISTRANT_AT) {
            // Another address registered no dataset of this root here.
            vm.expectRevert(
                value >> 160 != 0
                    ? abi.encodeWithSelector(ITrialMarket.InvalidRegistrant.selector, value)
                    : abi.encodeWithSelector(
                        IDatasetRegistryEvents.UnknownMemberRoot.selector,
                        address(uint160(value)),
                        memberRoot
                    )
            );
        } else if (which < SLOTS_AT) {
            vm.expectRevert(abi.encodeWithSelector(ITrialMarket.CriteriaMismatch.selector, trialId));
        } else {
            // Nullifiers and payouts, the empty slot's included, are bound by the proof.
            vm.expectRevert(IProofGated.InvalidProof.selector);
        }
        vm.prank(relayer);
        market.enroll(trialId, batchCircuit, inputs, batchCDE.proof);
    }

    function testFuzz_nonFieldInputIsRejected(uint256 which, uint256 value) public {
        _openDefault();
        uint256[] memory inputs = singleA.inputs;
        which = bound(which, 0, inputs.length - 1);
        value = bound(value, R, type(uint256).max);
        inputs[which] = value;
        vm.prank(relayer);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.InputNotInField.selector, which));
        market.enroll(trialId, singleCircuit, inputs, singleA.proof);
    }

    function testFuzz_tamperedProofByteIsRejected(uint256 at, uint8 flip) public {
        _openDefault();
        bytes memory p = singleA.proof;
        at = bound(at, 0, p.length - 1);
        flip = uint8(bound(flip, 1, 255));
        p[at] = bytes1(uint8(p[at]) ^ flip);
        vm.prank(relayer);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.enroll(trialId, singleCircuit, singleA.inputs, p);
    }
}
