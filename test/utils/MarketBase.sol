// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Test} from "forge-std/Test.sol";
import {ClinicalPurposes} from "./ClinicalPurposes.sol";
import {AccreditationRegistry} from "../../contracts/AccreditationRegistry.sol";
import {DatasetRegistry} from "../../contracts/DatasetRegistry.sol";
import {QueryMarket} from "../../contracts/QueryMarket.sol";
import {IProofGated} from "../../contracts/interfaces/IProofGated.sol";
import {IQueryMarket} from "../../contracts/interfaces/IQueryMarket.sol";
import {
    AggregateVerifierN48 as AggregateVerifier
} from "../../contracts/verifiers/AggregateVerifierN48.sol";

/// @notice A deployed registry + market + the real generated verifier, and real proofs from
/// `test/fixtures/market_proofs.json` (written by `cargo test --test end_to_end`): three
/// hospitals answering one query (the third suppressed) and one proof of another query, and the
/// query's spec document (its canonical JSON, which `postQuery` publishes).
abstract contract MarketBase is Test {
    struct Answer {
        bytes32 commitment;
        uint64 recordCount;
        uint256[] inputs;
        bytes proof;
        uint256 count;
        uint256 sum;
        uint256 sumOfSquares;
        bool suppressed;
    }

    DatasetRegistry internal registry;
    AccreditationRegistry internal accreditations;
    QueryMarket internal market;
    address internal verifier;
    bytes32 internal circuitId;
    bytes32 internal schemaHash;
    bytes32 internal specHash;
    /// The query spec's canonical JSON: SHA-256 `specHash`.
    bytes internal specDocument;
    uint256[] internal constants;
    uint256[] internal otherConstants;
    Answer[3] internal answers;
    Answer internal otherAnswer;

    address internal owner = makeAddr("owner");
    address internal sponsor = makeAddr("sponsor");
    /// Attests the three hospitals (queries name it only where a test says so).
    address internal accreditor = makeAddr("accreditor");
    address[3] internal hospitals =
        [makeAddr("hospital-a"), makeAddr("hospital-b"), makeAddr("hospital-c")];
    uint256[] internal datasetIds;

    uint256 internal constant PRICE = 1 ether;

    function setUp() public virtual {
        string memory json = vm.readFile("test/fixtures/market_proofs.json");
        circuitId = keccak256(bytes(vm.parseJsonString(json, ".circuit_id")));
        specHash = vm.parseJsonBytes32(json, ".query_hash");
        specDocument = vm.parseJsonBytes(json, ".query_spec");
        constants = _words(vm.parseJsonBytes32Array(json, ".constants"));
        otherConstants = _words(vm.parseJsonBytes32Array(json, ".other_constants"));
        for (uint256 i; i < 3; ++i) {
            answers[i] = _answer(json, string.concat(".hospitals[", vm.toString(i), "]"));
        }
        otherAnswer = _answer(json, ".other_query_proof");
        schemaHash = vm.parseJsonBytes32(json, ".hospitals[0].schema_hash");

        registry = new DatasetRegistry();
        accreditations = new AccreditationRegistry();
        for (uint256 i; i < 3; ++i) {
            vm.prank(accreditor);
            accreditations.accredit(hospitals[i]);
        }
        verifier = address(new AggregateVerifier());
        bytes32[] memory ids = new bytes32[](1);
        IProofGated.Circuit[] memory circuits = new IProofGated.Circuit[](1);
        (ids[0], circuits[0]) = (circuitId, _aggregate(verifier, schemaHash));
        // The fixture's proofs are bound (their claim context) to the query market at the
        // fixture's address, its first query and the hospitals' addresses on this chain.
        address at = vm.parseJsonAddress(json, ".market");
        deployCodeTo(
            "QueryMarket.sol:QueryMarket",
            abi.encode(
                registry,
                accreditations,
                owner,
                ids,
                circuits,
                ClinicalPurposes.forSchema(schemaHash)
            ),
            at
        );
        market = QueryMarket(at);
        assertEq(block.chainid, vm.parseJsonUint(json, ".chain_id"), "fixture chain id");
        address[] memory claimants = vm.parseJsonAddressArray(json, ".claimants");
        for (uint256 i; i < 3; ++i) {
            assertEq(claimants[i], hospitals[i], "fixture claimant");
        }

        for (uint256 i; i < 3; ++i) {
            vm.prank(hospitals[i]);
            datasetIds.push(
                registry.register(
                    answers[i].commitment, schemaHash, answers[i].recordCount, circuitId, 0
                )
            );
        }
        vm.deal(sponsor, 1_000 ether);
    }

    /// @dev The aggregate circuit of the fixture's shape for `verifier` and `schema`.
    function _aggregate(address verifier_, bytes32 schema)
        internal
        view
        returns (IProofGated.Circuit memory)
    {
        return IProofGated.Circuit({
            verifier: verifier_,
            numConstants: uint32(constants.length),
            batch: 0,
            cells: 1,
            dataColumns: 0,
            schemaHash: schema
        });
    }

    /// @dev Sets a circuit as the owner: a removal at once, anything else proposed and
    /// applied after the notice period (time moves on by `VERIFIER_DELAY`).
    function _setCircuit(bytes32 id, IProofGated.Circuit memory c) internal {
        vm.startPrank(owner);
        if (c.verifier == address(0)) {
            market.removeVerifier(id);
        } else {
            market.proposeVerifier(id, c);
            vm.warp(block.timestamp + market.VERIFIER_DELAY());
            market.applyVerifier(id);
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

    function _answer(string memory json, string memory at) internal pure returns (Answer memory a) {
        a.commitment = vm.parseJsonBytes32(json, string.concat(at, ".commitment"));
        a.recordCount = uint64(vm.parseJsonUint(json, string.concat(at, ".record_count")));
        a.inputs = _words(vm.parseJsonBytes32Array(json, string.concat(at, ".instances")));
        a.proof = vm.parseJsonBytes(json, string.concat(at, ".proof"));
        a.count = vm.parseJsonUint(json, string.concat(at, ".count"));
        a.sum = vm.parseJsonUint(json, string.concat(at, ".sum"));
        a.sumOfSquares = vm.parseJsonUint(json, string.concat(at, ".sum_squares"));
        a.suppressed = vm.parseJsonBool(json, string.concat(at, ".suppressed"));
    }

    function _words(bytes32[] memory b) internal pure returns (uint256[] memory w) {
        w = new uint256[](b.length);
        for (uint256 i; i < b.length; ++i) {
            w[i] = uint256(b[i]);
        }
    }

    /// @dev The fixture's query spec as `postQuery` takes it.
    function _spec() internal view returns (IQueryMarket.Spec memory) {
        return IQueryMarket.Spec({hash: specHash, document: specDocument});
    }

    function _post(uint256[] memory ids, uint64 deadline) internal returns (uint256) {
        vm.prank(sponsor);
        return market.postQuery{value: PRICE * ids.length}(
            _spec(), constants, ids, address(0), PRICE, deadline, address(0)
        );
    }

    function _postAll() internal returns (uint256) {
        return _post(datasetIds, uint64(block.timestamp + 1 days));
    }

    function _claim(uint256 queryId, uint256 i) internal {
        vm.prank(hospitals[i]);
        market.claim(queryId, datasetIds[i], answers[i].inputs, answers[i].proof);
    }
}
