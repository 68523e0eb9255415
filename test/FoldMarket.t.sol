// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Test} from "forge-std/Test.sol";
import {ClinicalPurposes} from "./utils/ClinicalPurposes.sol";
import {AccreditationRegistry} from "../contracts/AccreditationRegistry.sol";
import {DatasetRegistry} from "../contracts/DatasetRegistry.sol";
import {QueryMarket} from "../contracts/QueryMarket.sol";
import {ProofGate} from "../contracts/libraries/ProofGate.sol";
import {IProofGated} from "../contracts/interfaces/IProofGated.sol";
import {IQueryMarket} from "../contracts/interfaces/IQueryMarket.sol";
import {FoldVerifierN48W1} from "../contracts/verifiers/FoldVerifierN48W1.sol";

/// @notice The commit-and-prove aggregate circuit (issue #8, design N(W)) end to end on its
/// generated verifier, with real proofs from `test/fixtures/fold_proofs.json` (written by
/// `cargo test --test fold_market`): three hospitals answer one query (the third suppressed).
/// A dataset's commitment is its data columns' KZG commitments, the first `64 · W` bytes of
/// every proof over it; the market compares their hash with the registry before the verifier
/// sees the proof.
contract FoldMarketTest is Test, IQueryMarket, IProofGated {
    struct Answer {
        bytes32 commitment;
        bytes dataColumns;
        uint64 recordCount;
        uint256[] inputs;
        bytes proof;
        uint256 count;
        uint256 nonmissing;
        uint256 sum;
        uint256 sumOfSquares;
        bool suppressed;
    }

    uint256 internal constant PRICE = 1 ether;

    DatasetRegistry internal registry;
    QueryMarket internal market;
    address internal verifier;
    bytes32 internal circuitId;
    bytes32 internal schemaHash;
    uint32 internal dataColumns;
    uint256[] internal constants;
    Answer[3] internal answers;
    uint256[] internal datasetIds;
    IQueryMarket.Spec internal spec;

    address internal owner = makeAddr("owner");
    address internal sponsor = makeAddr("sponsor");
    address[3] internal hospitals =
        [makeAddr("hospital-a"), makeAddr("hospital-b"), makeAddr("hospital-c")];

    function setUp() public {
        string memory json = vm.readFile("test/fixtures/fold_proofs.json");
        circuitId = keccak256(bytes(vm.parseJsonString(json, ".circuit_id")));
        schemaHash = vm.parseJsonBytes32(json, ".schema_hash");
        dataColumns = uint32(vm.parseJsonUint(json, ".data_columns"));
        spec = IQueryMarket.Spec({
            hash: vm.parseJsonBytes32(json, ".query_hash"),
            document: vm.parseJsonBytes(json, ".query_spec")
        });
        bytes32[] memory c = vm.parseJsonBytes32Array(json, ".constants");
        for (uint256 i; i < c.length; ++i) {
            constants.push(uint256(c[i]));
        }
        for (uint256 i; i < 3; ++i) {
            _read(json, string.concat(".hospitals[", vm.toString(i), "]"), answers[i]);
        }
        assertEq(block.chainid, vm.parseJsonUint(json, ".chain_id"), "fixture chain id");
        address[] memory claimants = vm.parseJsonAddressArray(json, ".claimants");
        for (uint256 i; i < 3; ++i) {
            assertEq(claimants[i], hospitals[i], "fixture claimant");
        }

        registry = new DatasetRegistry();
        verifier = address(new FoldVerifierN48W1());
        bytes32[] memory ids = new bytes32[](1);
        IProofGated.Circuit[] memory circuits = new IProofGated.Circuit[](1);
        ids[0] = circuitId;
        circuits[0] = IProofGated.Circuit({
            verifier: verifier,
            numConstants: uint32(constants.length),
            batch: 0,
            cells: 1,
            dataColumns: dataColumns,
            schemaHash: schemaHash
        });
        // The fixture's proofs are bound (their claim context) to the market at this address.
        address at = vm.parseJsonAddress(json, ".market");
        deployCodeTo(
            "QueryMarket.sol:QueryMarket",
            abi.encode(
                registry,
                new AccreditationRegistry(),
                owner,
                ids,
                circuits,
                ClinicalPurposes.forSchema(schemaHash)
            ),
            at
        );
        market = QueryMarket(at);
        for (uint256 i; i < 3; ++i) {
            vm.prank(hospitals[i]);
            datasetIds.push(
                registry.register(
                    answers[i].commitment, schemaHash, answers[i].recordCount, circuitId, 0
                )
            );
        }
        vm.deal(sponsor, 100 ether);
    }

    function _read(string memory json, string memory at, Answer storage a) internal {
        a.commitment = vm.parseJsonBytes32(json, string.concat(at, ".commitment"));
        a.dataColumns = vm.parseJsonBytes(json, string.concat(at, ".data_commitment"));
        a.recordCount = uint64(vm.parseJsonUint(json, string.concat(at, ".record_count")));
        bytes32[] memory inputs = vm.parseJsonBytes32Array(json, string.concat(at, ".instances"));
        for (uint256 i; i < inputs.length; ++i) {
            a.inputs.push(uint256(inputs[i]));
        }
        a.proof = vm.parseJsonBytes(json, string.concat(at, ".proof"));
        a.count = vm.parseJsonUint(json, string.concat(at, ".count"));
        a.nonmissing = vm.parseJsonUint(json, string.concat(at, ".nonmissing"));
        a.sum = vm.parseJsonUint(json, string.concat(at, ".sum"));
        a.sumOfSquares = vm.parseJsonUint(json, string.concat(at, ".sum_squares"));
        a.suppressed = vm.parseJsonBool(json, string.concat(at, ".suppressed"));
    }

    function _post() internal returns (uint256) {
        vm.prank(sponsor);
        return market.postQuery{value: PRICE * 3}(
            spec,
            constants,
            datasetIds,
            address(0),
            PRICE,
            uint64(block.timestamp + 1 days),
            address(0)
        );
    }

    function _claim(uint256 q, uint256 i, uint256[] memory inputs, bytes memory proof) internal {
        vm.prank(hospitals[i]);
        market.claim(q, datasetIds[i], inputs, proof);
    }

    /// The fixture is what the market reads: each proof starts with its dataset's data
    /// columns, whose hash mod r is the registered commitment.
    function test_fold_proofsStartWithTheRegisteredCommitment() public view {
        for (uint256 i; i < 3; ++i) {
            Answer storage a = answers[i];
            assertEq(a.dataColumns.length, 64 * uint256(dataColumns));
            assertEq(
                bytes32(uint256(keccak256(a.dataColumns)) % ProofGate.SNARK_SCALAR_FIELD),
                a.commitment
            );
            for (uint256 j; j < a.dataColumns.length; ++j) {
                assertEq(a.proof[j], a.dataColumns[j]);
            }
        }
    }

    /// Three real proofs, checked by the generated verifier: two answers pooled, with their
    /// non-missing counts, and a suppressed one that pools nothing; every custodian is paid.
    function test_fold_realProofsArePaidAndPooled() public {
        uint256 q = _post();
        assertEq(q, 1, "the fixture's proofs are bound to query 1");
        for (uint256 i; i < 3; ++i) {
            Answer storage a = answers[i];
            vm.expectEmit(address(market));
            emit Claimed(
                q,
                datasetIds[i],
                hospitals[i],
                keccak256(a.proof),
                a.count,
                a.nonmissing,
                a.sum,
                a.sumOfSquares,
                a.suppressed,
                PRICE
            );
            _claim(q, i, a.inputs, a.proof);
        }
        QueryMarket.Query memory s = market.query(q);
        assertTrue(!answers[0].suppressed && !answers[1].suppressed && answers[2].suppressed);
        assertEq(s.answered, 3);
        assertEq(s.suppressed, 1);
        assertEq(s.totalCount, answers[0].count + answers[1].count);
        assertEq(s.totalCount - s.totalMissing, answers[0].nonmissing + answers[1].nonmissing);
        assertEq(s.totalSum, answers[0].sum + answers[1].sum);
        assertEq(s.totalSumOfSquares, answers[0].sumOfSquares + answers[1].sumOfSquares);
        for (uint256 i; i < 3; ++i) {
            assertEq(market.pendingWithdrawals(address(0), hospitals[i]), PRICE);
        }
        assertEq(market.locked(q), 0);
    }

    /// The demo market's shape: a Poseidon circuit (the generated N48 verifier, 17 constants)
    /// live on the same schema as the fold circuit (5). Real fold proofs are still paid, and
    /// each query is answered by its own family only: a Poseidon dataset cannot claim the fold
    /// query, a fold dataset cannot claim a Poseidon-count query.
    function test_fold_withAPoseidonCircuitLiveOnTheSchema() public {
        string memory json = vm.readFile("test/fixtures/market_proofs.json");
        bytes32[] memory words = vm.parseJsonBytes32Array(json, ".constants");
        uint256[] memory poseidonConstants = new uint256[](words.length);
        for (uint256 i; i < words.length; ++i) {
            poseidonConstants[i] = uint256(words[i]);
        }
        uint32 n = uint32(poseidonConstants.length);
        uint32 foldN = uint32(constants.length);
        assertTrue(n != foldN);
        bytes32 poseidonCircuit = keccak256(bytes(vm.parseJsonString(json, ".circuit_id")));
        IProofGated.Circuit memory c = IProofGated.Circuit({
            verifier: deployCode("AggregateVerifierN48.sol:AggregateVerifierN48"),
            numConstants: n,
            batch: 0,
            cells: 1,
            dataColumns: 0,
            schemaHash: schemaHash
        });
        vm.startPrank(owner);
        market.proposeVerifier(poseidonCircuit, c);
        vm.warp(block.timestamp + market.VERIFIER_DELAY());
        market.applyVerifier(poseidonCircuit);
        vm.stopPrank();
        assertEq(market.liveCircuitsOf(schemaHash, n, market.PLAIN()), 1);
        assertEq(market.liveCircuitsOf(schemaHash, foldN, market.FOLD()), 1);
        vm.prank(hospitals[0]);
        uint256 poseidonDataset = registry.register(
            bytes32(uint256(0xC0FFEE)), schemaHash, answers[0].recordCount, poseidonCircuit, 0
        );

        // A fold query naming the Poseidon dataset is refused at posting: it could never be
        // answered there, and its escrow would stay locked until the deadline.
        uint256[] memory ids = new uint256[](4);
        (ids[0], ids[1], ids[2], ids[3]) =
        (datasetIds[0], datasetIds[1], datasetIds[2], poseidonDataset);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(WrongConstantsCount.selector, n, foldN));
        market.postQuery{value: 4 * PRICE}(
            spec, constants, ids, address(0), PRICE, uint64(block.timestamp + 1 days), address(0)
        );
        // Without it, the fold datasets answer with fold proofs while the Poseidon circuit is
        // live on the schema.
        vm.prank(sponsor);
        uint256 q = market.postQuery{value: 3 * PRICE}(
            spec,
            constants,
            datasetIds,
            address(0),
            PRICE,
            uint64(block.timestamp + 1 days),
            address(0)
        );
        assertEq(q, 1, "the fixture's proofs are bound to query 1");
        for (uint256 i; i < 3; ++i) {
            _claim(q, i, answers[i].inputs, answers[i].proof);
        }
        QueryMarket.Query memory s = market.query(q);
        assertEq(s.answered, 3);
        assertEq(s.totalCount, answers[0].count + answers[1].count);

        // A Poseidon query is posted to the Poseidon dataset alone; naming a fold dataset is
        // refused the same way.
        ids = new uint256[](2);
        (ids[0], ids[1]) = (datasetIds[0], poseidonDataset);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(WrongConstantsCount.selector, foldN, n));
        market.postQuery{value: 2 * PRICE}(
            spec,
            poseidonConstants,
            ids,
            address(0),
            PRICE,
            uint64(block.timestamp + 1 days),
            address(0)
        );
        uint256[] memory alone = new uint256[](1);
        alone[0] = poseidonDataset;
        vm.prank(sponsor);
        uint256 pq = market.postQuery{value: PRICE}(
            spec,
            poseidonConstants,
            alone,
            address(0),
            PRICE,
            uint64(block.timestamp + 1 days),
            address(0)
        );
        // A fold proof offered for it (the fold dataset is no target): refused.
        vm.prank(hospitals[0]);
        vm.expectRevert();
        market.claim(pq, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    /// forge snapshot: a claim of the commit-and-prove circuit, real verification included,
    /// and its verifier alone (plain calls: no 21k base, no calldata).
    function test_gas_foldClaimWithVerification() public {
        uint256 q = _post();
        _claim(q, 0, answers[0].inputs, answers[0].proof);
        uint256 gas = vm.snapshotGasLastCall("FoldMarket", "claim_with_verification");
        emit log_named_uint("fold claim gas (verification included, call only)", gas);
        (bool ok,) = verifier.call(abi.encodePacked(answers[0].inputs, answers[0].proof));
        assertTrue(ok);
        uint256 verify = vm.snapshotGasLastCall("FoldMarket", "verify_fold_n48_w1");
        emit log_named_uint("fold verifier alone (call only)", verify);
    }

    /// A valid proof over other records (hospital B's) cannot answer for hospital A's
    /// dataset: its data columns are not A's registered commitment. Refused before the
    /// verifier is called.
    function test_fold_proofOverAnotherDatasetIsRejected() public {
        uint256 q = _post();
        // B's proof, with A's claim context and record count (so only the data differs).
        uint256[] memory inputs = answers[1].inputs;
        uint256 n = constants.length;
        inputs[n] = market.claimContext(q, hospitals[0]);
        inputs[n + 1] = answers[0].recordCount;
        vm.expectCall(verifier, "", 0);
        vm.expectRevert(abi.encodeWithSelector(CommitmentMismatch.selector, datasetIds[0]));
        _claim(q, 0, inputs, answers[1].proof);
    }

    /// A dataset registered under another commitment (the same records, say, re-committed
    /// under a new salt) opens none of the old proofs.
    function test_fold_commitmentDifferingFromTheRegisteredOneIsRejected() public {
        vm.prank(hospitals[0]);
        uint256 other = registry.register(
            bytes32(uint256(answers[0].commitment) ^ 1),
            schemaHash,
            answers[0].recordCount,
            circuitId,
            0
        );
        uint256[] memory ids = new uint256[](1);
        ids[0] = other;
        vm.prank(sponsor);
        uint256 q = market.postQuery{value: PRICE}(
            spec, constants, ids, address(0), PRICE, uint64(block.timestamp + 1 days), address(0)
        );
        vm.expectRevert(abi.encodeWithSelector(CommitmentMismatch.selector, other));
        vm.prank(hospitals[0]);
        market.claim(q, other, answers[0].inputs, answers[0].proof);
    }

    /// One byte of the data columns changed: the hash no longer matches (CommitmentMismatch);
    /// one byte after them: the verifier rejects the proof.
    function test_fold_tamperedProofBytesAreRejected() public {
        uint256 q = _post();
        bytes memory proof = answers[0].proof;
        uint256 w = 64 * uint256(dataColumns);
        proof[w - 1] = proof[w - 1] ^ 0x01;
        vm.expectRevert(abi.encodeWithSelector(CommitmentMismatch.selector, datasetIds[0]));
        _claim(q, 0, answers[0].inputs, proof);
        proof[w - 1] = proof[w - 1] ^ 0x01;
        for (uint256 at = w; at < proof.length; at += 997) {
            proof[at] = proof[at] ^ 0x01;
            vm.expectRevert(InvalidProof.selector);
            _claim(q, 0, answers[0].inputs, proof);
            proof[at] = proof[at] ^ 0x01;
        }
        _claim(q, 0, answers[0].inputs, proof);
    }

    /// Every result input the market does not check itself is bound by the proof: a changed
    /// count, non-missing count, sum, sum of squares or suppression flag is rejected by the
    /// verifier.
    function test_fold_tamperedResultsAreRejected() public {
        uint256 q = _post();
        uint256 n = constants.length;
        for (uint256 i = n + 2; i < n + 7; ++i) {
            uint256[] memory inputs = answers[0].inputs;
            inputs[i] += 1;
            vm.expectRevert(InvalidProof.selector);
            _claim(q, 0, inputs, answers[0].proof);
        }
    }

    /// The query's constants (bounds, purpose, statistic, floor) are the proof's: a proof of
    /// this query answers no other query, even one whose constants differ only in the
    /// consent purpose.
    function test_fold_proofAnswersOnlyItsQuery() public {
        uint256[] memory other = constants;
        other[other.length - 3] = 1; // consent purpose "trials" instead of "research"
        vm.prank(sponsor);
        uint256 q = market.postQuery{value: PRICE * 3}(
            spec, other, datasetIds, address(0), PRICE, uint64(block.timestamp + 1 days), address(0)
        );
        vm.expectRevert(abi.encodeWithSelector(ConstantsMismatch.selector, q));
        _claim(q, 0, answers[0].inputs, answers[0].proof);
        uint256[] memory inputs = answers[0].inputs;
        inputs[other.length - 3] = 1;
        vm.expectRevert(InvalidProof.selector);
        _claim(q, 0, inputs, answers[0].proof);
    }
}
