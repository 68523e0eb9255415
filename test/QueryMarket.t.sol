// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {ProofGate} from "../contracts/libraries/ProofGate.sol";
import {ClinicalPurposes} from "./utils/ClinicalPurposes.sol";
import {IDatasetRegistryEvents} from "../contracts/interfaces/IDatasetRegistry.sol";
import {IEscrow} from "../contracts/interfaces/IEscrow.sol";
import {IProofGated} from "../contracts/interfaces/IProofGated.sol";
import {Ownable} from "solady/auth/Ownable.sol";
import {ERC20} from "solady/tokens/ERC20.sol";
import {QueryMarket} from "../contracts/QueryMarket.sol";
import {DatasetRegistry} from "../contracts/DatasetRegistry.sol";
import {MarketBase} from "./utils/MarketBase.sol";
import {
    AggregateVerifierN48 as AggregateVerifier
} from "../contracts/verifiers/AggregateVerifierN48.sol";
import {IQueryMarket} from "../contracts/interfaces/IQueryMarket.sol";
import {IConsentPurposes} from "../contracts/interfaces/IConsentPurposes.sol";

contract TestToken is ERC20 {
    function name() public pure override returns (string memory) {
        return "Test";
    }

    function symbol() public pure override returns (string memory) {
        return "TST";
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @notice A token whose balances change by themselves: it reports 10% less than it holds for
/// any account above 1 ether (a stand-in for a negative rebase).
contract RebasingToken is TestToken {
    function balanceOf(address owner) public view override returns (uint256) {
        uint256 b = super.balanceOf(owner);
        return b > 1 ether ? b - b / 10 : b;
    }
}

/// @notice A custodian contract that re-enters `withdraw` from its receive hook.
contract ReentrantCustodian {
    QueryMarket internal market;
    uint256 public reentries;
    bool public reentryFailed;

    constructor(QueryMarket market_) {
        market = market_;
    }

    function register(DatasetRegistry registry, bytes32 c, bytes32 s, uint64 n, bytes32 id)
        external
        returns (uint256)
    {
        return registry.register(c, s, n, id, 0);
    }

    function claim(uint256 q, uint256 d, uint256[] calldata inputs, bytes calldata proof) external {
        market.claim(q, d, inputs, proof);
    }

    function withdraw() external {
        market.withdraw(address(0));
    }

    receive() external payable {
        if (reentries == 0) {
            reentries = 1;
            try market.withdraw(address(0)) {}
            catch {
                reentryFailed = true;
            }
        }
    }
}

contract QueryMarketTest is MarketBase, IQueryMarket, IProofGated, IEscrow {
    uint256 internal constant R = ProofGate.SNARK_SCALAR_FIELD;

    // ---- setVerifier ----

    /// Regression (issue #14): the owner could swap a verifier at once. A change is now
    /// proposed with an event and applies only after `VERIFIER_DELAY`, by anyone.
    function test_attack_verifierChangeWithoutNotice() public {
        address replacement = address(new AggregateVerifier());
        uint64 eta = uint64(block.timestamp) + market.VERIFIER_DELAY();
        vm.expectEmit(address(market));
        emit VerifierProposed(
            circuitId, schemaHash, replacement, uint32(constants.length), 0, 1, 0, eta
        );
        vm.prank(owner);
        market.proposeVerifier(circuitId, _aggregate(replacement, schemaHash));
        (address v,,,,,) = market.circuits(circuitId);
        assertEq(v, verifier, "nothing changes at once");
        vm.expectRevert(abi.encodeWithSelector(VerifierNotYetDue.selector, circuitId, eta));
        market.applyVerifier(circuitId);
        vm.warp(eta);
        vm.expectEmit(address(market));
        emit VerifierSet(
            circuitId, schemaHash, verifier, replacement, uint32(constants.length), 0, 1, 0
        );
        vm.prank(sponsor);
        market.applyVerifier(circuitId);
        (address now_, uint32 n, uint16 b, uint16 cells,, bytes32 s) = market.circuits(circuitId);
        assertEq(cells, 1);
        assertEq(now_, replacement);
        assertEq(n, constants.length);
        assertEq(b, 0);
        assertEq(s, schemaHash);
        assertEq(market.liveCircuitsOf(schemaHash, uint32(constants.length), market.PLAIN()), 1);
        vm.expectRevert(abi.encodeWithSelector(NoPendingVerifier.selector, circuitId));
        market.applyVerifier(circuitId);
    }

    /// Issue #14: a query's consent purpose (third constant from the end) must be registered
    /// for the targets' schema; a purpose added through the timelock is accepted from then on.
    function test_attack_queryWithAnUnregisteredPurposeIsRefused() public {
        uint256[] memory c = constants;
        uint256 at = c.length - 3;
        assertEq(c[at], 0, "the fixture's query asks for research consent");
        c[at] = 4;
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(IConsentPurposes.UnknownConsentPurpose.selector, 4));
        market.postQuery{value: PRICE}(
            _spec(), c, _one(datasetIds[0]), address(0), PRICE, _later(), address(0)
        );
        _addPurpose(schemaHash, 4, "biobank");
        vm.prank(sponsor);
        market.postQuery{value: PRICE}(
            _spec(), c, _one(datasetIds[0]), address(0), PRICE, _later(), address(0)
        );
    }

    function test_ownerCancelsAProposalAndRemovesAtOnce() public {
        vm.startPrank(owner);
        market.proposeVerifier(circuitId, _aggregate(address(new AggregateVerifier()), schemaHash));
        vm.expectEmit(address(market));
        emit VerifierProposalCancelled(circuitId);
        market.cancelVerifier(circuitId);
        vm.expectRevert(abi.encodeWithSelector(NoPendingVerifier.selector, circuitId));
        market.cancelVerifier(circuitId);
        market.removeVerifier(circuitId);
        vm.stopPrank();
        (address v,,,,,) = market.circuits(circuitId);
        assertEq(v, address(0));
        assertFalse(market.acceptsConstants(schemaHash, constants.length));
        assertEq(market.constantsCountsOf(schemaHash).length, 0);
        vm.warp(block.timestamp + 3 days);
        vm.expectRevert(abi.encodeWithSelector(NoPendingVerifier.selector, circuitId));
        market.applyVerifier(circuitId);
    }

    /// Every accepted proof names the circuit and the verifier that checked it, so an audit can
    /// re-verify it against the right key even after a verifier change.
    function test_claimEmitsProofAccepted() public {
        uint256 q = _postAll();
        vm.expectEmit(address(market));
        emit ProofAccepted(circuitId, verifier, keccak256(answers[0].proof));
        _claim(q, 0);
    }

    /// The manifest the deploy script reads gives the fixture circuit's shape.
    function test_fixtureShapeMatchesManifest() public view {
        string memory m = vm.readFile("contracts/verifiers/verifiers.json");
        string memory key = ".AggregateVerifierN48";
        assertEq(
            keccak256(bytes(vm.parseJsonString(m, string.concat(key, ".circuit_id")))), circuitId
        );
        assertEq(vm.parseJsonString(m, string.concat(key, ".kind")), "aggregate");
        assertEq(vm.parseJsonUint(m, string.concat(key, ".constants")), constants.length);
        assertEq(vm.parseJsonUint(m, string.concat(key, ".batch")), 0);
        assertEq(vm.parseJsonBytes32(m, string.concat(key, ".schema_hash")), schemaHash);
        assertEq(answers[0].inputs.length, 1 + constants.length + 1 + 5);
    }

    function test_attack_unauthorisedVerifierChange() public {
        vm.startPrank(hospitals[0]);
        vm.expectRevert(Ownable.Unauthorized.selector);
        market.proposeVerifier(circuitId, _aggregate(address(0xBAD), schemaHash));
        vm.expectRevert(Ownable.Unauthorized.selector);
        market.removeVerifier(circuitId);
        vm.expectRevert(Ownable.Unauthorized.selector);
        market.cancelVerifier(circuitId);
        vm.stopPrank();
        (address v,,,,,) = market.circuits(circuitId);
        assertEq(v, verifier);
    }

    /// An aggregate circuit has constants and no patient slots; the circuits of one schema
    /// taking one constants count share one input layout.
    function test_setVerifierRejectsWrongShapes() public {
        IProofGated.Circuit memory c = _aggregate(verifier, schemaHash);
        vm.startPrank(owner);
        c.batch = 1;
        vm.expectRevert(abi.encodeWithSelector(InvalidShape.selector, c.numConstants, 1, 1));
        market.proposeVerifier(keccak256("other"), c);
        c.batch = 0;
        c.numConstants = 0;
        vm.expectRevert(abi.encodeWithSelector(InvalidShape.selector, 0, 0, 1));
        market.proposeVerifier(keccak256("other"), c);
        c.numConstants = uint32(constants.length);
        c.dataColumns = 1;
        vm.expectRevert(abi.encodeWithSelector(LayoutConflict.selector, schemaHash, c.numConstants));
        market.proposeVerifier(keccak256("other"), c);
        vm.stopPrank();
    }

    // ---- circuit families: one schema, Poseidon and commit-and-prove circuits ----

    /// Constants count of the commit-and-prove circuit these tests add to the fixture's schema
    /// (the fold fixture's; the Poseidon fixture's circuit takes 17).
    uint32 internal constant FOLD_N = 5;
    bytes32 internal constant FOLD_CIRCUIT = keccak256("fold-n5-w1");

    /// A commit-and-prove circuit of the fixture's schema taking `n` constants. Its verifier is
    /// the Poseidon circuit's (any contract with code: no claim here reaches it).
    function _foldCircuit(uint32 n) internal view returns (IProofGated.Circuit memory c) {
        c = _aggregate(verifier, schemaHash);
        c.numConstants = n;
        c.dataColumns = 1;
    }

    /// A fold query's constants: research consent (purpose 0), statistic 0, `min_cohort` 11.
    function _foldConstants() internal pure returns (uint256[] memory c) {
        c = new uint256[](FOLD_N);
        c[FOLD_N - 1] = 11;
    }

    /// Adds the fold circuit and a dataset of hospital A served by it; returns the dataset.
    function _addFold() internal returns (uint256 foldDataset) {
        _setCircuit(FOLD_CIRCUIT, _foldCircuit(FOLD_N));
        vm.prank(hospitals[0]);
        foldDataset = registry.register(
            bytes32(uint256(0xF01D)), schemaHash, answers[0].recordCount, FOLD_CIRCUIT, 0
        );
    }

    /// Both families live on one schema with different counts; each query is answered only by
    /// its own family: a Poseidon dataset cannot claim a fold-count query nor the reverse, and
    /// the Poseidon query is still paid on real proofs.
    function test_families_bothLiveEachQueryClaimedByItsOwn() public {
        uint256 foldDataset = _addFold();
        uint32 n = uint32(constants.length);
        assertEq(market.liveCircuitsOf(schemaHash, n, market.PLAIN()), 1);
        assertEq(market.liveCircuitsOf(schemaHash, FOLD_N, market.FOLD()), 1);
        assertEq(market.liveCircuitsOf(schemaHash, FOLD_N, market.PLAIN()), 0);
        assertTrue(market.acceptsConstants(schemaHash, n));
        assertTrue(market.acceptsConstants(schemaHash, FOLD_N));
        assertFalse(market.acceptsConstants(schemaHash, FOLD_N + 1));
        assertEq(market.constantsCountsOf(schemaHash).length, 2);

        // A query naming a target of the other family is refused at posting (it could never
        // be answered there); each family's query is posted to its own targets.
        uint256[] memory ids = new uint256[](4);
        (ids[0], ids[1], ids[2], ids[3]) =
        (datasetIds[0], datasetIds[1], datasetIds[2], foldDataset);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(WrongConstantsCount.selector, FOLD_N, n));
        market.postQuery{value: 4 * PRICE}(
            _spec(), constants, ids, address(0), PRICE, _later(), address(0)
        );
        uint256 q = _post(datasetIds, _later()); // query 1, the fixture proofs' query
        for (uint256 i; i < 3; ++i) {
            _claim(q, i);
        }
        assertEq(market.query(q).answered, 3);

        uint256[] memory both = new uint256[](2);
        (both[0], both[1]) = (datasetIds[2], foldDataset);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(WrongConstantsCount.selector, n, FOLD_N));
        market.postQuery{value: 2 * PRICE}(
            _spec(), _foldConstants(), both, address(0), PRICE, _later(), address(0)
        );
        vm.prank(sponsor);
        market.postQuery{value: PRICE}(
            _spec(), _foldConstants(), _one(foldDataset), address(0), PRICE, _later(), address(0)
        );
    }

    /// A circuit of the other family taking a count already served on the schema is refused,
    /// when proposed and again when applied (the count may have been taken in between).
    function test_families_conflictingFamilyIsRefused() public {
        _addFold();
        vm.startPrank(owner);
        IProofGated.Circuit memory c = _aggregate(verifier, schemaHash);
        c.numConstants = FOLD_N;
        vm.expectRevert(abi.encodeWithSelector(LayoutConflict.selector, schemaHash, FOLD_N));
        market.proposeVerifier(keccak256("poseidon-n5"), c);
        vm.expectRevert(
            abi.encodeWithSelector(LayoutConflict.selector, schemaHash, constants.length)
        );
        market.proposeVerifier(keccak256("fold-n17"), _foldCircuit(uint32(constants.length)));
        // Another count is free: proposed, then taken by a Poseidon circuit before it applies.
        market.proposeVerifier(keccak256("fold-n9"), _foldCircuit(9));
        vm.stopPrank();
        c.numConstants = 9;
        _setCircuit(keccak256("poseidon-n9"), c);
        vm.expectRevert(abi.encodeWithSelector(LayoutConflict.selector, schemaHash, 9));
        market.applyVerifier(keccak256("fold-n9"));
        assertEq(market.liveCircuitsOf(schemaHash, 9, market.FOLD()), 0);
        assertEq(market.liveCircuitsOf(schemaHash, 9, market.PLAIN()), 1);
    }

    /// The only circuit of a count may change family or count (its own entry is discounted);
    /// one of two may not change family.
    function test_families_onlyCircuitOfACountMayChangeShape() public {
        uint32 n = uint32(constants.length);
        _setCircuit(circuitId, _foldCircuit(n));
        assertEq(market.liveCircuitsOf(schemaHash, n, market.FOLD()), 1);
        assertEq(market.liveCircuitsOf(schemaHash, n, market.PLAIN()), 0);
        _setCircuit(circuitId, _foldCircuit(12));
        assertFalse(market.acceptsConstants(schemaHash, n));
        assertTrue(market.acceptsConstants(schemaHash, 12));
        assertEq(market.constantsCountsOf(schemaHash).length, 1);
        _setCircuit(circuitId, _aggregate(verifier, schemaHash));
        _setCircuit(keccak256("second"), _aggregate(verifier, schemaHash));
        assertEq(market.liveCircuitsOf(schemaHash, n, market.PLAIN()), 2);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(LayoutConflict.selector, schemaHash, n));
        market.proposeVerifier(circuitId, _foldCircuit(n));
    }

    /// Removing the last circuit of a count forgets that count (queries with it are refused,
    /// naming a count still served), and leaves the schema's other counts alone.
    function test_families_removingTheLastCircuitOfACountForgetsIt() public {
        uint256 foldDataset = _addFold();
        _setCircuit(FOLD_CIRCUIT, _aggregate(address(0), schemaHash));
        assertFalse(market.acceptsConstants(schemaHash, FOLD_N));
        assertEq(market.liveCircuitsOf(schemaHash, FOLD_N, market.FOLD()), 0);
        uint32[] memory counts = market.constantsCountsOf(schemaHash);
        assertEq(counts.length, 1);
        assertEq(counts[0], constants.length);
        vm.prank(sponsor);
        vm.expectRevert(
            abi.encodeWithSelector(WrongConstantsCount.selector, constants.length, FOLD_N)
        );
        market.postQuery{value: PRICE}(
            _spec(), _foldConstants(), _one(datasetIds[0]), address(0), PRICE, _later(), address(0)
        );
        // The fold dataset has no verifier now: no query can target it.
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(NoVerifier.selector, FOLD_CIRCUIT));
        market.postQuery{value: PRICE}(
            _spec(), constants, _one(foldDataset), address(0), PRICE, _later(), address(0)
        );
        _postAll();
    }

    /// Register/replace/remove sequences over four circuit ids, two counts and both families
    /// of one schema: a change is refused exactly when another live circuit of its count has
    /// the other family, and the views always match a model of the live circuits.
    function testFuzz_families_registerRemoveSequences(uint8[10] calldata ops) public {
        bytes32 schema = keccak256("fuzz-schema");
        bool[4] memory live;
        uint32[4] memory count;
        bool[4] memory fold;
        for (uint256 k; k < ops.length; ++k) {
            uint256 i = ops[k] & 3;
            bytes32 id = keccak256(abi.encode("fuzz", i));
            if (ops[k] >> 5 == 7) {
                _setCircuit(id, _aggregate(address(0), schema));
                live[i] = false;
            } else {
                IProofGated.Circuit memory c = _aggregate(verifier, schema);
                c.numConstants = (ops[k] & 4) == 0 ? 3 : 4;
                c.dataColumns = (ops[k] & 8) == 0 ? 0 : 1;
                bool conflict;
                for (uint256 j; j < 4; ++j) {
                    if (
                        j != i && live[j] && count[j] == c.numConstants
                            && fold[j] != (c.dataColumns != 0)
                    ) {
                        conflict = true;
                    }
                }
                if (conflict) {
                    vm.prank(owner);
                    vm.expectRevert(
                        abi.encodeWithSelector(LayoutConflict.selector, schema, c.numConstants)
                    );
                    market.proposeVerifier(id, c);
                } else {
                    _setCircuit(id, c);
                    (live[i], count[i], fold[i]) = (true, c.numConstants, c.dataColumns != 0);
                }
            }
            uint256 counts;
            for (uint32 n = 3; n <= 4; ++n) {
                uint256[2] memory expected;
                for (uint256 j; j < 4; ++j) {
                    if (live[j] && count[j] == n) ++expected[fold[j] ? 1 : 0];
                }
                assertEq(market.liveCircuitsOf(schema, n, market.PLAIN()), expected[0]);
                assertEq(market.liveCircuitsOf(schema, n, market.FOLD()), expected[1]);
                assertTrue(expected[0] == 0 || expected[1] == 0, "one family per count");
                bool served = expected[0] + expected[1] != 0;
                assertEq(market.acceptsConstants(schema, n), served);
                if (served) ++counts;
            }
            assertEq(market.constantsCountsOf(schema).length, counts);
        }
    }

    /// Regression (issue #11): `QueryMarket` did not check that a verifier has code. A
    /// staticcall to an address without code succeeds with empty return data, which is what a
    /// generated verifier returns on success: one owner mistake and every claim paid.
    function test_attack_verifierWithoutCode() public {
        address eoa = makeAddr("not-a-verifier");
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(NotAContract.selector, eoa));
        market.proposeVerifier(circuitId, _aggregate(eoa, schemaHash));

        // A verifier whose code is gone after it was set (selfdestruct; here vm.etch) is
        // caught at claim time, with a garbage proof.
        uint256 q = _postAll();
        vm.etch(verifier, "");
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(NotAContract.selector, verifier));
        market.claim(q, datasetIds[0], answers[0].inputs, hex"00");
        assertFalse(market.claimed(q, datasetIds[0]));
    }

    /// Regression (issue #14): a query that names an accreditor pays only custodians it
    /// attests: an unvetted custodian's dataset cannot be targeted, and a custodian whose
    /// accreditation is revoked after posting cannot claim (its escrow goes back at refund).
    function test_attack_unaccreditedCustodianIsNotPaid() public {
        address fabricator = makeAddr("fabricator");
        vm.prank(fabricator);
        uint256 fake = registry.register(
            bytes32(uint256(123)), schemaHash, answers[0].recordCount, circuitId, 0
        );
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (datasetIds[0], fake);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(CustodianNotAccepted.selector, fake, fabricator));
        market.postQuery{value: 2 * PRICE}(
            _spec(), constants, ids, address(0), PRICE, _later(), accreditor
        );
        vm.prank(sponsor);
        uint256 q = market.postQuery{value: 3 * PRICE}(
            _spec(), constants, datasetIds, address(0), PRICE, _later(), accreditor
        );
        _claim(q, 0);
        vm.prank(accreditor);
        accreditations.revoke(hospitals[1]);
        vm.prank(hospitals[1]);
        vm.expectRevert(
            abi.encodeWithSelector(CustodianNotAccepted.selector, datasetIds[1], hospitals[1])
        );
        market.claim(q, datasetIds[1], answers[1].inputs, answers[1].proof);
        assertEq(market.query(q).answered, 1);
    }

    /// Regression (issue #14): the cell floor was the sponsor's to lower (`min_cohort` 1 turned
    /// small-cell suppression off). The protocol floor is 11; a custodian may set a higher one
    /// for its datasets, which a claim must meet.
    function test_attack_sponsorLowersTheCellFloor() public {
        uint256[] memory lowered = constants;
        lowered[lowered.length - 1] = 1;
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(CellFloor.selector, 11, 1));
        market.postQuery{value: 3 * PRICE}(
            _spec(), lowered, datasetIds, address(0), PRICE, _later(), address(0)
        );
        uint256 q = _postAll();
        vm.prank(hospitals[0]);
        registry.setCellFloor(20);
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(CellFloor.selector, 20, 11));
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
        _claim(q, 1);
    }

    /// Regression (issue #11): the realignment attack. The generated verifier reads calldata
    /// at fixed offsets and never checks its length, so moving the last words of the public
    /// inputs to the front of the proof bytes leaves the calldata, and the proof's validity,
    /// unchanged. The market used to take the input count from the sponsor's query
    /// (`numConstants`), and accepted queries across schemas: with a query whose constants
    /// count is not the circuit's, a custodian realigned a real proof so that the market read
    /// the query's own constants as "results", pooled them and paid. Now the circuit fixes the
    /// count: such a query cannot be posted (these tests), and realigned inputs cannot be
    /// claimed (`test_attack_realignedInputsAreRefused`).
    function test_attack_realignment_verifierAcceptsTheSplit() public view {
        (uint256[] memory head, bytes memory moved) = _realign(answers[0], SHIFT);
        (bool ok, bytes memory ret) = verifier.staticcall(abi.encodePacked(head, moved));
        assertTrue(ok && ret.length == 0, "the precondition: the verifier ignores the split");
    }

    function test_attack_realignment_queryWithFewerConstantsThanTheCircuit() public {
        uint256[] memory truncated = _truncated();
        vm.prank(sponsor);
        vm.expectRevert(
            abi.encodeWithSelector(WrongConstantsCount.selector, constants.length, truncated.length)
        );
        market.postQuery{value: PRICE}(
            _spec(), truncated, _one(datasetIds[0]), address(0), PRICE, _later(), address(0)
        );
    }

    /// A query mixing schemas (whose circuits' constants counts differ) is refused, even when
    /// the other schema's circuit is served by the market.
    function test_attack_realignment_queryAcrossSchemas() public {
        uint256[] memory truncated = _truncated();
        bytes32 otherSchema = keccak256("schema-with-one-fewer-value-column");
        bytes32 otherCircuit = keccak256("agg1-other");
        IProofGated.Circuit memory c = _aggregate(verifier, otherSchema);
        c.numConstants = uint32(truncated.length);
        _setCircuit(otherCircuit, c);
        vm.prank(hospitals[2]);
        uint256 otherDataset = registry.register(
            bytes32(uint256(7)), otherSchema, answers[0].recordCount, otherCircuit, 0
        );
        uint256[] memory mixed = new uint256[](2);
        (mixed[0], mixed[1]) = (datasetIds[0], otherDataset);
        // Mixed schemas: the first target's count refuses the other schema's constants, and
        // the first schema's constants meet the other schema's target.
        vm.prank(sponsor);
        vm.expectRevert(
            abi.encodeWithSelector(WrongConstantsCount.selector, constants.length, truncated.length)
        );
        market.postQuery{value: 2 * PRICE}(
            _spec(), truncated, mixed, address(0), PRICE, _later(), address(0)
        );
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(SchemaMismatch.selector, schemaHash, otherSchema));
        market.postQuery{value: 2 * PRICE}(
            _spec(), constants, mixed, address(0), PRICE, _later(), address(0)
        );
        // On its own, the other schema's query is fine: its count is its circuit's (once its
        // consent purpose is registered for that schema).
        truncated[truncated.length - 1] = 11;
        _addPurpose(otherSchema, truncated[truncated.length - 3], "other");
        vm.prank(sponsor);
        market.postQuery{value: PRICE}(
            _spec(), truncated, _one(otherDataset), address(0), PRICE, _later(), address(0)
        );
    }

    /// On a well-formed query, realigned inputs (either way) are refused before the verifier is
    /// called; the honest split is accepted and pooled.
    function test_attack_realignedInputsAreRefused() public {
        uint256 q = _postAll();
        uint256 n = answers[0].inputs.length;
        (uint256[] memory head, bytes memory moved) = _realign(answers[0], SHIFT);
        vm.startPrank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(WrongInputCount.selector, n, n - SHIFT));
        market.claim(q, datasetIds[0], head, moved);
        (uint256[] memory longer, bytes memory shorter) = _borrow(answers[0], SHIFT);
        vm.expectRevert(abi.encodeWithSelector(WrongInputCount.selector, n, n + SHIFT));
        market.claim(q, datasetIds[0], longer, shorter);
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
        vm.stopPrank();
        QueryMarket.Query memory s = market.query(q);
        assertEq(s.totalCount, answers[0].count);
        assertEq(s.totalSum, answers[0].sum);
        assertEq(s.totalSumOfSquares, answers[0].sumOfSquares);
    }

    uint256 internal constant SHIFT = 2;

    /// The query's constants less the last `SHIFT`.
    function _truncated() internal view returns (uint256[] memory t) {
        t = new uint256[](constants.length - SHIFT);
        for (uint256 i; i < t.length; ++i) {
            t[i] = constants[i];
        }
    }

    /// The last `shift` input words moved to the front of the proof bytes.
    function _realign(Answer memory a, uint256 shift)
        internal
        pure
        returns (uint256[] memory head, bytes memory proof)
    {
        uint256 n = a.inputs.length;
        head = new uint256[](n - shift);
        uint256[] memory tail = new uint256[](shift);
        for (uint256 i; i < n; ++i) {
            if (i < n - shift) head[i] = a.inputs[i];
            else tail[i - (n - shift)] = a.inputs[i];
        }
        proof = bytes.concat(abi.encodePacked(tail), a.proof);
    }

    /// The first `shift` words of the proof bytes moved to the end of the inputs.
    function _borrow(Answer memory a, uint256 shift)
        internal
        pure
        returns (uint256[] memory inputs, bytes memory proof)
    {
        uint256 n = a.inputs.length;
        inputs = new uint256[](n + shift);
        for (uint256 i; i < n; ++i) {
            inputs[i] = a.inputs[i];
        }
        bytes memory p = a.proof;
        for (uint256 i; i < shift; ++i) {
            uint256 w;
            assembly {
                w := mload(add(add(p, 32), mul(i, 32)))
            }
            inputs[n + i] = w;
        }
        proof = new bytes(p.length - 32 * shift);
        for (uint256 i; i < proof.length; ++i) {
            proof[i] = p[i + 32 * shift];
        }
    }

    function _one(uint256 id) internal pure returns (uint256[] memory ids) {
        ids = new uint256[](1);
        ids[0] = id;
    }

    function _later() internal view returns (uint64) {
        return uint64(block.timestamp + 1 days);
    }

    // ---- postQuery ----

    function test_postQueryEscrowsAndRecords() public {
        uint256 q = _postAll();
        assertEq(address(market).balance, 3 * PRICE);
        QueryMarket.Query memory s = market.query(q);
        assertEq(s.sponsor, sponsor);
        assertEq(s.targets, 3);
        assertEq(s.specHash, specHash);
        assertEq(s.constantsHash, keccak256(abi.encodePacked(constants)));
        assertEq(market.locked(q), 3 * PRICE);
        assertTrue(market.isTarget(q, datasetIds[1]));
    }

    function test_postQueryRejectsBadArguments() public {
        uint256[] memory none = new uint256[](0);
        uint64 later = uint64(block.timestamp + 1);
        vm.startPrank(sponsor);
        vm.expectRevert(IQueryMarket.NoTargets.selector);
        market.postQuery(_spec(), constants, none, address(0), PRICE, later, address(0));
        vm.expectRevert(
            abi.encodeWithSelector(IQueryMarket.DeadlineInPast.selector, uint64(block.timestamp))
        );
        market.postQuery{value: 3 * PRICE}(
            _spec(), constants, datasetIds, address(0), PRICE, uint64(block.timestamp), address(0)
        );
        vm.expectRevert(abi.encodeWithSelector(IEscrow.WrongPayment.selector, 3 * PRICE, PRICE));
        market.postQuery{value: PRICE}(
            _spec(), constants, datasetIds, address(0), PRICE, later, address(0)
        );
        vm.expectRevert(IQueryMarket.ZeroPrice.selector);
        market.postQuery(_spec(), constants, datasetIds, address(0), 0, later, address(0));
        uint256[] memory dup = new uint256[](2);
        (dup[0], dup[1]) = (datasetIds[1], datasetIds[1]);
        vm.expectRevert(IQueryMarket.TargetsNotStrictlyIncreasing.selector);
        market.postQuery{value: 2 * PRICE}(
            _spec(), constants, dup, address(0), PRICE, later, address(0)
        );
        uint256[] memory big = constants;
        big[0] = R;
        vm.expectRevert(abi.encodeWithSelector(IProofGated.InputNotInField.selector, 1));
        market.postQuery{value: 3 * PRICE}(
            _spec(), big, datasetIds, address(0), PRICE, later, address(0)
        );
        vm.stopPrank();
    }

    function test_postQueryRejectsRetiredOrUnknownDataset() public {
        vm.prank(hospitals[1]);
        registry.retire(datasetIds[1]);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(IQueryMarket.DatasetRetired.selector, datasetIds[1]));
        market.postQuery{value: 3 * PRICE}(
            _spec(),
            constants,
            datasetIds,
            address(0),
            PRICE,
            uint64(block.timestamp + 1),
            address(0)
        );
        uint256[] memory unknown = new uint256[](1);
        unknown[0] = 99;
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(IDatasetRegistryEvents.UnknownDataset.selector, 99));
        market.postQuery{value: PRICE}(
            _spec(), constants, unknown, address(0), PRICE, uint64(block.timestamp + 1), address(0)
        );
    }

    /// The spec document is published with the query, byte for byte, after `QueryPosted`.
    function test_postQueryPublishesTheSpec() public {
        vm.expectEmit(true, true, true, true, address(market));
        emit SpecPublished(1, specHash, specDocument);
        uint256 q = _postAll();
        assertEq(q, 1);
        assertEq(sha256(specDocument), specHash, "the fixture's document is the hashed one");
    }

    /// A document that is not the one `spec.hash` names is refused, whatever it differs in (one
    /// byte, a missing byte, nothing at all), and nothing is posted.
    function test_postQueryRefusesAMismatchingSpec() public {
        bytes memory flipped = bytes.concat(specDocument);
        flipped[10] = bytes1(uint8(flipped[10]) ^ 1);
        bytes memory truncated = new bytes(specDocument.length - 1);
        for (uint256 i; i < truncated.length; ++i) {
            truncated[i] = specDocument[i];
        }
        bytes[3] memory bad = [flipped, truncated, bytes("")];
        for (uint256 i; i < bad.length; ++i) {
            vm.prank(sponsor);
            vm.expectRevert(abi.encodeWithSelector(SpecMismatch.selector, specHash, sha256(bad[i])));
            market.postQuery{value: 3 * PRICE}(
                Spec({hash: specHash, document: bad[i]}),
                constants,
                datasetIds,
                address(0),
                PRICE,
                _later(),
                address(0)
            );
        }
        assertEq(market.queryCount(), 0);
        assertEq(address(market).balance, 0);
    }

    // ---- claim: the happy path with real proofs ----

    function test_claimsVerifyPoolAndCredit() public {
        uint256 q = _postAll();
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(address(market));
            emit Claimed(
                q,
                datasetIds[i],
                hospitals[i],
                keccak256(answers[i].proof),
                answers[i].count,
                answers[i].count,
                answers[i].sum,
                answers[i].sumOfSquares,
                answers[i].suppressed,
                PRICE
            );
            _claim(q, i);
            assertEq(market.pendingWithdrawals(address(0), hospitals[i]), PRICE);
        }
        QueryMarket.Query memory s = market.query(q);
        assertEq(s.answered, 3);
        assertEq(s.suppressed, 1, "the small hospital's result is suppressed");
        assertEq(s.totalCount, answers[0].count + answers[1].count);
        assertEq(s.totalMissing, 0, "no nonmissing output: every match counts");
        assertEq(s.totalSum, answers[0].sum + answers[1].sum);
        assertEq(s.totalSumOfSquares, answers[0].sumOfSquares + answers[1].sumOfSquares);
        assertEq(market.locked(q), 0);
    }

    /// forge snapshot: claim gas, real verification included.
    function test_gas_claimWithVerification() public {
        uint256 q = _postAll();
        vm.prank(hospitals[0]);
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
        // Written to snapshots/QueryMarket.json; the call's gas, without the 21k base and calldata.
        uint256 gas = vm.snapshotGasLastCall("QueryMarket", "claim_with_verification");
        emit log_named_uint("claim gas (verification included, call only)", gas);
    }

    /// forge snapshot: posting the fixture's query to the three datasets (ETH escrow), its spec
    /// document checked against the hash and published.
    function test_gas_postQuery() public {
        _postAll();
        uint256 gas = vm.snapshotGasLastCall("QueryMarket", "post_query");
        emit log_named_uint("postQuery, 3 targets, spec published (call only)", gas);
    }

    // ---- claim: attacks ----

    function test_attack_tamperedProof() public {
        uint256 q = _postAll();
        bytes memory p = answers[0].proof;
        p[200] = bytes1(uint8(p[200]) ^ 0x04);
        vm.prank(hospitals[0]);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.claim(q, datasetIds[0], answers[0].inputs, p);
    }

    function test_attack_tamperedPublicInput() public {
        uint256 q = _postAll();
        uint256[] memory inputs = answers[0].inputs;
        inputs[inputs.length - 4] += 1; // one more patient than proven
        vm.prank(hospitals[0]);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.claim(q, datasetIds[0], inputs, answers[0].proof);
    }

    // ---- claim context: a proof pays on one chain, market, query and claimant only ----

    /// The Rust prover's context (`ClaimBinding::context`) is the market's `claimContext`.
    function test_claimContextIsTheProvers() public view {
        uint256 n = constants.length;
        for (uint256 i; i < 3; ++i) {
            assertEq(market.claimContext(1, hospitals[i]), answers[i].inputs[1 + n]);
        }
        assertTrue(market.claimContext(1, hospitals[0]) < R);
    }

    /// Regression (issue #14): a copier registers a hospital's commitment on a second
    /// deployment (same chain) and replays the hospital's published claim there.
    function test_attack_claimReplayOnASecondDeployment() public {
        DatasetRegistry registry2 = new DatasetRegistry();
        bytes32[] memory ids = new bytes32[](1);
        IProofGated.Circuit[] memory cs = new IProofGated.Circuit[](1);
        (ids[0], cs[0]) = (circuitId, _aggregate(verifier, schemaHash));
        QueryMarket market2 = new QueryMarket(
            registry2, accreditations, owner, ids, cs, ClinicalPurposes.forSchema(schemaHash)
        );
        address copier = makeAddr("copier");
        vm.prank(copier);
        uint256 d = registry2.register(
            answers[0].commitment, schemaHash, answers[0].recordCount, circuitId, 0
        );
        uint256[] memory targets = new uint256[](1);
        targets[0] = d;
        vm.prank(sponsor);
        uint256 q = market2.postQuery{value: PRICE}(
            _spec(),
            constants,
            targets,
            address(0),
            PRICE,
            uint64(block.timestamp + 1 days),
            address(0)
        );
        assertEq(q, 1, "the same query id as the proof's");
        uint256 n = constants.length;
        uint256 expected = market2.claimContext(q, copier);
        vm.prank(copier);
        vm.expectRevert(
            abi.encodeWithSelector(ContextMismatch.selector, expected, answers[0].inputs[1 + n])
        );
        market2.claim(q, d, answers[0].inputs, answers[0].proof);
        // Rewriting the context to the copier's makes the proof itself fail.
        uint256[] memory inputs = answers[0].inputs;
        inputs[1 + n] = expected;
        vm.prank(copier);
        vm.expectRevert(InvalidProof.selector);
        market2.claim(q, d, inputs, answers[0].proof);
    }

    /// A proof made for query 1 does not answer query 2, even with identical constants.
    function test_attack_proofForAnotherQueryWithTheSameConstants() public {
        _postAll();
        uint256 q2 = _postAll();
        uint256 expected = market.claimContext(q2, hospitals[0]);
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                ContextMismatch.selector, expected, answers[0].inputs[1 + constants.length]
            )
        );
        market.claim(q2, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    /// After a custodian rotation the new address cannot spend the old address's proof.
    function test_attack_proofOfAnotherClaimantAfterRotation() public {
        address rotated = makeAddr("hospital-a-new");
        vm.prank(hospitals[0]);
        registry.transferCustodian(datasetIds[0], rotated);
        vm.prank(rotated);
        registry.acceptCustodian(datasetIds[0]);
        uint256 q = _postAll();
        uint256 expected = market.claimContext(q, rotated);
        vm.prank(rotated);
        vm.expectRevert(
            abi.encodeWithSelector(
                ContextMismatch.selector, expected, answers[0].inputs[1 + constants.length]
            )
        );
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    function test_attack_publicInputAliasedModR() public {
        uint256 q = _postAll();
        uint256[] memory inputs = answers[0].inputs;
        inputs[inputs.length - 4] += R;
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IProofGated.InputNotInField.selector, inputs.length - 4)
        );
        market.claim(q, datasetIds[0], inputs, answers[0].proof);
    }

    function test_attack_proofForAnotherDataset() public {
        uint256 q = _postAll();
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IQueryMarket.CommitmentMismatch.selector, datasetIds[0])
        );
        market.claim(q, datasetIds[0], answers[1].inputs, answers[1].proof);
    }

    function test_attack_proofForAnotherQuery() public {
        uint256 q = _postAll();
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(IQueryMarket.ConstantsMismatch.selector, q));
        market.claim(q, datasetIds[0], otherAnswer.inputs, otherAnswer.proof);
    }

    function test_attack_replayedProofByAnotherCustodian() public {
        uint256 q = _postAll();
        _claim(q, 0);
        // Hospital B copies A's proof from A's calldata and submits it for its own dataset.
        vm.prank(hospitals[1]);
        vm.expectRevert(
            abi.encodeWithSelector(IQueryMarket.CommitmentMismatch.selector, datasetIds[1])
        );
        market.claim(q, datasetIds[1], answers[0].inputs, answers[0].proof);
        // Or for A's dataset, which it does not hold.
        vm.prank(hospitals[1]);
        vm.expectRevert(
            abi.encodeWithSelector(IQueryMarket.AlreadyClaimed.selector, q, datasetIds[0])
        );
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    function test_attack_doubleClaim() public {
        uint256 q = _postAll();
        _claim(q, 0);
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(IQueryMarket.AlreadyClaimed.selector, q, datasetIds[0])
        );
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
        assertEq(market.pendingWithdrawals(address(0), hospitals[0]), PRICE);
    }

    function test_attack_claimByNonCustodian() public {
        uint256 q = _postAll();
        vm.prank(sponsor);
        vm.expectRevert(
            abi.encodeWithSelector(IQueryMarket.NotCustodian.selector, datasetIds[0], sponsor)
        );
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    function test_attack_claimAfterDeadline() public {
        uint256 q = _postAll();
        uint64 deadline = market.query(q).deadline;
        vm.warp(deadline + 1);
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(IQueryMarket.DeadlinePassed.selector, q, deadline));
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    function test_claimAtDeadlineIsAccepted() public {
        uint256 q = _postAll();
        vm.warp(market.query(q).deadline);
        _claim(q, 0);
    }

    function test_attack_claimForUntargetedDataset() public {
        uint256[] memory ids = new uint256[](1);
        ids[0] = datasetIds[1];
        uint256 q = _post(ids, uint64(block.timestamp + 1 days));
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(IQueryMarket.NotTarget.selector, q, datasetIds[0]));
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    function test_claimRejectsWrongRecordCountAndShape() public {
        uint256 q = _postAll();
        uint256[] memory shortInputs = new uint256[](3);
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IProofGated.WrongInputCount.selector, answers[0].inputs.length, 3
            )
        );
        market.claim(q, datasetIds[0], shortInputs, answers[0].proof);
        // A registration that misstates its record count cannot be answered: the proof
        // reports the committed number of records.
        registry = new DatasetRegistry();
        bytes32[] memory cids = new bytes32[](1);
        IProofGated.Circuit[] memory cs = new IProofGated.Circuit[](1);
        (cids[0], cs[0]) = (circuitId, _aggregate(verifier, schemaHash));
        market = new QueryMarket(
            registry, accreditations, owner, cids, cs, ClinicalPurposes.forSchema(schemaHash)
        );
        vm.prank(hospitals[0]);
        uint256 id = registry.register(
            answers[0].commitment, schemaHash, answers[0].recordCount + 5, circuitId, 0
        );
        uint256[] memory ids = new uint256[](1);
        ids[0] = id;
        uint256 q2 = _post(ids, uint64(block.timestamp + 1 days));
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                IQueryMarket.RecordCountMismatch.selector,
                answers[0].recordCount + 5,
                answers[0].recordCount
            )
        );
        market.claim(q2, id, answers[0].inputs, answers[0].proof);
    }

    function test_claimWithoutVerifier() public {
        uint256 q = _postAll();
        vm.prank(owner);
        market.removeVerifier(circuitId);
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.NoVerifier.selector, circuitId));
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    // ---- refund ----

    function test_refundUnclaimedAfterDeadline() public {
        uint256 q = _postAll();
        _claim(q, 0);
        vm.warp(market.query(q).deadline + 1);
        vm.expectEmit(address(market));
        emit Refunded(q, sponsor, 2 * PRICE);
        vm.prank(sponsor);
        market.refund(q);
        assertEq(market.pendingWithdrawals(address(0), sponsor), 2 * PRICE);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.AlreadyRefunded.selector, q));
        market.refund(q);
    }

    function test_attack_refundBeforeDeadline() public {
        uint256 q = _postAll();
        uint64 deadline = market.query(q).deadline;
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.DeadlineNotPassed.selector, q, deadline));
        market.refund(q);
    }

    function test_attack_refundByOther() public {
        uint256 q = _postAll();
        vm.warp(block.timestamp + 2 days);
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.NotSponsor.selector, q, hospitals[0]));
        market.refund(q);
    }

    // ---- withdraw ----

    function test_withdrawPaysOnce() public {
        uint256 q = _postAll();
        _claim(q, 0);
        vm.expectEmit(address(market));
        emit Withdrawn(hospitals[0], address(0), PRICE);
        vm.prank(hospitals[0]);
        market.withdraw(address(0));
        assertEq(hospitals[0].balance, PRICE);
        vm.prank(hospitals[0]);
        vm.expectRevert(IEscrow.NothingToWithdraw.selector);
        market.withdraw(address(0));
    }

    function test_attack_reentrancyOnWithdraw() public {
        // Hospital A's custodian address runs a contract that re-enters `withdraw` when paid
        // (placed at that address: the fixture's proof is bound to it as the claimant).
        deployCodeTo("QueryMarket.t.sol:ReentrantCustodian", abi.encode(market), hospitals[0]);
        ReentrantCustodian attacker = ReentrantCustodian(payable(hospitals[0]));
        uint256[] memory targets = new uint256[](2);
        (targets[0], targets[1]) = (datasetIds[0], datasetIds[1]);
        uint256 q = _post(targets, uint64(block.timestamp + 1 days));
        attacker.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
        vm.prank(hospitals[1]);
        market.claim(q, datasetIds[1], answers[1].inputs, answers[1].proof);

        attacker.withdraw();
        assertEq(address(attacker).balance, PRICE, "paid exactly once");
        assertTrue(attacker.reentryFailed(), "re-entry was refused");
        assertEq(address(market).balance, PRICE, "the other custodian's credit is intact");
    }

    // ---- ERC-20 escrow ----

    function test_erc20EscrowClaimAndRefund() public {
        TestToken token = new TestToken();
        vm.expectEmit(address(market));
        emit TokenAllowed(address(token), true);
        vm.prank(owner);
        market.setTokenAllowed(address(token), true);
        token.mint(sponsor, 10 ether);
        vm.startPrank(sponsor);
        token.approve(address(market), type(uint256).max);
        uint256 q = market.postQuery(
            _spec(),
            constants,
            datasetIds,
            address(token),
            2 ether,
            uint64(block.timestamp + 1 days),
            address(0)
        );
        vm.stopPrank();
        assertEq(token.balanceOf(address(market)), 6 ether);
        _claim(q, 1);
        vm.warp(block.timestamp + 2 days);
        vm.prank(sponsor);
        market.refund(q);
        vm.prank(sponsor);
        market.withdraw(address(token));
        vm.prank(hospitals[1]);
        market.withdraw(address(token));
        assertEq(token.balanceOf(sponsor), 8 ether);
        assertEq(token.balanceOf(hospitals[1]), 2 ether);
        assertEq(token.balanceOf(address(market)), 0);
    }

    function test_erc20RejectsEthValue() public {
        TestToken token = new TestToken();
        vm.prank(owner);
        market.setTokenAllowed(address(token), true);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(IEscrow.WrongPayment.selector, 0, 1));
        market.postQuery{value: 1}(
            _spec(),
            constants,
            datasetIds,
            address(token),
            1,
            uint64(block.timestamp + 1),
            address(0)
        );
    }

    /// Regression (issue #14): credits are pooled per token, so a rebasing token left the last
    /// withdrawer of an unrelated query unpaid. Only tokens the owner allowed can be escrowed.
    function test_attack_rebasingTokenIsRefused() public {
        RebasingToken token = new RebasingToken();
        token.mint(sponsor, 10 ether);
        vm.startPrank(sponsor);
        token.approve(address(market), type(uint256).max);
        vm.expectRevert(abi.encodeWithSelector(TokenNotAllowed.selector, address(token)));
        market.postQuery(
            _spec(), constants, datasetIds, address(token), 1 ether, _later(), address(0)
        );
        vm.stopPrank();
        vm.prank(hospitals[0]);
        vm.expectRevert(Ownable.Unauthorized.selector);
        market.setTokenAllowed(address(token), true);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(TokenNotAllowed.selector, address(0)));
        market.setTokenAllowed(address(0), false);
    }

    // ---- fuzz ----

    function testFuzz_escrowEqualsPriceTimesTargets(uint96 price, uint8 mask) public {
        price = uint96(bound(price, 1, 100 ether));
        mask = uint8(bound(mask, 1, 7));
        uint256[] memory ids = new uint256[](_popcount(mask));
        uint256 k;
        for (uint256 i; i < 3; ++i) {
            if (mask & (1 << i) != 0) ids[k++] = datasetIds[i];
        }
        vm.prank(sponsor);
        uint256 q = market.postQuery{value: uint256(price) * ids.length}(
            _spec(), constants, ids, address(0), price, uint64(block.timestamp + 1), address(0)
        );
        assertEq(market.locked(q), uint256(price) * ids.length);
        assertEq(address(market).balance, uint256(price) * ids.length);
    }

    function testFuzz_refundIsUnclaimedShare(uint8 claims, uint32 late) public {
        claims = uint8(bound(claims, 0, 3));
        uint256 q = _postAll();
        for (uint256 i; i < claims; ++i) {
            _claim(q, i);
        }
        vm.warp(uint256(market.query(q).deadline) + 1 + late);
        vm.prank(sponsor);
        market.refund(q);
        assertEq(market.pendingWithdrawals(address(0), sponsor), (3 - claims) * PRICE);
    }

    function testFuzz_anyChangedResultIsRejected(uint256 which, uint256 value) public {
        uint256 q = _postAll();
        uint256[] memory inputs = answers[0].inputs;
        which = bound(which, inputs.length - 4, inputs.length - 1); // count, sum, sum², suppressed
        value = bound(value, 0, R - 1);
        vm.assume(value != inputs[which]);
        inputs[which] = value;
        vm.prank(hospitals[0]);
        vm.expectRevert(IProofGated.InvalidProof.selector);
        market.claim(q, datasetIds[0], inputs, answers[0].proof);
    }

    function testFuzz_onlyTheHashedSpecIsPublished(bytes calldata document, bytes32 hash) public {
        vm.assume(sha256(document) != hash);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(SpecMismatch.selector, hash, sha256(document)));
        market.postQuery{value: 3 * PRICE}(
            Spec({hash: hash, document: document}),
            constants,
            datasetIds,
            address(0),
            PRICE,
            _later(),
            address(0)
        );
        // Any document is accepted under its own hash: the market checks the hash, not the
        // content (which clients and auditors parse and compare with the constants).
        vm.expectEmit(true, true, true, true, address(market));
        emit SpecPublished(1, sha256(document), document);
        vm.prank(sponsor);
        market.postQuery{value: 3 * PRICE}(
            Spec({hash: sha256(document), document: document}),
            constants,
            datasetIds,
            address(0),
            PRICE,
            _later(),
            address(0)
        );
    }

    function _popcount(uint8 x) internal pure returns (uint256 n) {
        for (; x != 0; x &= x - 1) {
            ++n;
        }
    }
}
