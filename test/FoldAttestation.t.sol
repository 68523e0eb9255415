// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Test} from "forge-std/Test.sol";
import {ClinicalPurposes} from "./utils/ClinicalPurposes.sol";
import {AccreditationRegistry} from "../contracts/AccreditationRegistry.sol";
import {DatasetRegistry} from "../contracts/DatasetRegistry.sol";
import {QueryMarket} from "../contracts/QueryMarket.sol";
import {IProofGated} from "../contracts/interfaces/IProofGated.sol";
import {IQueryMarket} from "../contracts/interfaces/IQueryMarket.sol";
import {FoldVerifierN48W1Attest} from "../contracts/verifiers/FoldVerifierN48W1Attest.sol";

/// @notice Signal attestations on the market (issue #13) end to end on the generated verifier
/// of the attestation circuit, with real proofs from `test/fixtures/fold_attest_proofs.json`
/// (written by `cargo test --test fold_market`): the sponsor asks "is the mean BMI of
/// consenting adults at least 26.6?", three hospitals answer with a proven verdict and
/// nothing else. Hospital A's cohort says no, B's yes, C's (below the floor) no: B is paid,
/// A and C are recorded and paid nothing, and their escrow returns to the sponsor.
contract FoldAttestationTest is Test, IQueryMarket, IProofGated {
    struct Answer {
        bytes32 commitment;
        uint64 recordCount;
        uint256[] inputs;
        bytes proof;
        bool verdict;
    }

    uint256 internal constant PRICE = 1 ether;

    DatasetRegistry internal registry;
    QueryMarket internal market;
    address internal verifier;
    bytes32 internal schemaHash;
    uint256[] internal constants;
    Answer[3] internal answers;
    uint256[] internal datasetIds;
    IQueryMarket.Spec internal spec;

    address internal sponsor = makeAddr("sponsor");
    address[3] internal hospitals =
        [makeAddr("hospital-a"), makeAddr("hospital-b"), makeAddr("hospital-c")];

    function setUp() public {
        string memory json = vm.readFile("test/fixtures/fold_attest_proofs.json");
        bytes32 circuitId = keccak256(bytes(vm.parseJsonString(json, ".circuit_id")));
        schemaHash = vm.parseJsonBytes32(json, ".schema_hash");
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
        registry = new DatasetRegistry();
        verifier = address(new FoldVerifierN48W1Attest());
        bytes32[] memory ids = new bytes32[](1);
        ids[0] = circuitId;
        IProofGated.Circuit[] memory circuits = new IProofGated.Circuit[](1);
        circuits[0] = IProofGated.Circuit({
            verifier: verifier,
            numConstants: uint32(constants.length),
            batch: 0,
            cells: 0,
            dataColumns: uint32(vm.parseJsonUint(json, ".data_columns")),
            schemaHash: schemaHash
        });
        // The fixture's proofs are bound (their claim context) to the market at this address.
        address at = vm.parseJsonAddress(json, ".market");
        deployCodeTo(
            "QueryMarket.sol:QueryMarket",
            abi.encode(
                registry,
                new AccreditationRegistry(),
                makeAddr("owner"),
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
        a.recordCount = uint64(vm.parseJsonUint(json, string.concat(at, ".record_count")));
        bytes32[] memory inputs = vm.parseJsonBytes32Array(json, string.concat(at, ".instances"));
        for (uint256 i; i < inputs.length; ++i) {
            a.inputs.push(uint256(inputs[i]));
        }
        a.proof = vm.parseJsonBytes(json, string.concat(at, ".proof"));
        a.verdict = vm.parseJsonBool(json, string.concat(at, ".verdict"));
    }

    function _post(uint64 deadline) internal returns (uint256 q) {
        vm.prank(sponsor);
        q = market.postQuery{value: PRICE * 3}(
            spec, constants, datasetIds, address(0), PRICE, deadline, address(0)
        );
        assertEq(q, 1, "the fixture's proofs are bound to query 1");
    }

    function _claim(uint256 q, uint256 i, uint256[] memory inputs, bytes memory proof) internal {
        vm.prank(hospitals[i]);
        market.claim(q, datasetIds[i], inputs, proof);
    }

    /// The verdict is the last input, after the records total; no count, sum or flag.
    function test_attest_inputsAreConstantsContextRecordsVerdict() public view {
        for (uint256 i; i < 3; ++i) {
            uint256[] storage x = answers[i].inputs;
            assertEq(x.length, constants.length + 3);
            assertEq(x[constants.length + 1], answers[i].recordCount);
            assertEq(x[x.length - 1], answers[i].verdict ? 1 : 0);
        }
        assertTrue(!answers[0].verdict && answers[1].verdict && !answers[2].verdict);
    }

    /// Three real proofs checked by the generated verifier: the yes is paid, the two noes
    /// are recorded and paid nothing, and at the deadline their escrow is refunded.
    function test_attest_yesIsPaidNoesAreRecordedAndRefunded() public {
        uint64 deadline = uint64(block.timestamp + 1 days);
        uint256 q = _post(deadline);
        assertTrue(market.query(q).attestation);
        for (uint256 i; i < 3; ++i) {
            Answer storage a = answers[i];
            vm.expectEmit(address(market));
            emit Attested(
                q, datasetIds[i], hospitals[i], keccak256(a.proof), a.verdict, a.verdict ? PRICE : 0
            );
            _claim(q, i, a.inputs, a.proof);
            assertTrue(market.claimed(q, datasetIds[i]));
            assertEq(market.pendingWithdrawals(address(0), hospitals[i]), a.verdict ? PRICE : 0);
        }
        assertEq(market.query(q).answered, 1);
        assertEq(market.query(q).declined, 2);
        assertEq(market.query(q).totalCount, 0, "nothing pooled");
        assertEq(market.locked(q), 2 * PRICE);
        vm.warp(deadline + 1);
        vm.prank(sponsor);
        market.refund(q);
        assertEq(market.pendingWithdrawals(address(0), sponsor), 2 * PRICE);
        assertEq(address(market).balance, 3 * PRICE, "every credit is escrow");
    }

    /// A flipped verdict does not verify: a no cannot be claimed as a paid yes, nor a yes
    /// hidden as a no.
    function test_attest_flippedVerdictIsRejected() public {
        uint256 q = _post(uint64(block.timestamp + 1 days));
        for (uint256 i; i < 2; ++i) {
            uint256[] memory inputs = answers[i].inputs;
            inputs[inputs.length - 1] = answers[i].verdict ? 0 : 1;
            vm.expectRevert(InvalidProof.selector);
            _claim(q, i, inputs, answers[i].proof);
            assertFalse(market.claimed(q, datasetIds[i]));
        }
        assertEq(market.pendingWithdrawals(address(0), hospitals[0]), 0);
    }

    /// A proof byte after the data columns, or another threshold among the constants (the
    /// posted constants fix it: a custodian cannot answer an easier question).
    function test_attest_tamperedProofAndThresholdAreRejected() public {
        uint256 q = _post(uint64(block.timestamp + 1 days));
        bytes memory proof = answers[1].proof;
        proof[200] = proof[200] ^ 0x01;
        vm.expectRevert(InvalidProof.selector);
        _claim(q, 1, answers[1].inputs, proof);
        uint256[] memory inputs = answers[0].inputs;
        inputs[constants.length - 4] += 1;
        vm.expectRevert(abi.encodeWithSelector(ConstantsMismatch.selector, q));
        _claim(q, 0, inputs, answers[0].proof);
    }

    /// forge snapshot: an attestation claim paid on a yes, real verification included, and
    /// the attestation verifier alone (plain calls: no 21k base, no calldata).
    function test_gas_attestationClaimWithVerification() public {
        uint256 q = _post(uint64(block.timestamp + 1 days));
        _claim(q, 1, answers[1].inputs, answers[1].proof);
        uint256 gas = vm.snapshotGasLastCall("FoldAttestation", "claim_yes_with_verification");
        emit log_named_uint("attestation claim gas (verification included, call only)", gas);
        (bool ok,) = verifier.call(abi.encodePacked(answers[1].inputs, answers[1].proof));
        assertTrue(ok);
        uint256 verify = vm.snapshotGasLastCall("FoldAttestation", "verify_attest_n48_w1");
        emit log_named_uint("attestation verifier alone (call only)", verify);
    }
}
