// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {ProofGate} from "../contracts/libraries/ProofGate.sol";
import {Test, console2} from "forge-std/Test.sol";
import {
    AggregateVerifierN48 as AggregateVerifier
} from "../contracts/verifiers/AggregateVerifierN48.sol";

/// @notice Checks the generated verifier against a real proof written by the Rust suite
/// (`cargo test --test end_to_end`): it accepts the proof and rejects tampering.
contract AggregateVerifierTest is Test {
    /// BN254 scalar field modulus.
    uint256 internal constant R = ProofGate.SNARK_SCALAR_FIELD;
    /// Gas forwarded to the verifier: a bad curve point burns all of it.
    uint256 internal constant VERIFY_GAS = 1_000_000;

    address internal verifier;
    bytes internal calldata_;
    bytes internal proof;
    bytes32[] internal instances;
    uint256 internal countIndex;

    function setUp() public {
        verifier = address(new AggregateVerifier());
        string memory json = vm.readFile("test/fixtures/aggregate_proof.json");
        calldata_ = vm.parseJsonBytes(json, ".calldata");
        proof = vm.parseJsonBytes(json, ".proof");
        instances = vm.parseJsonBytes32Array(json, ".instances");
        countIndex = vm.parseJsonUint(json, ".count_index");
    }

    function _call(bytes memory data) internal returns (bool ok, uint256 gasUsed) {
        uint256 before = gasleft();
        (ok,) = verifier.call{gas: VERIFY_GAS}(data);
        gasUsed = before - gasleft();
    }

    function _encode(bytes32[] memory inputs, bytes memory p) internal pure returns (bytes memory) {
        return abi.encodePacked(inputs, p);
    }

    function test_fixtureCalldataIsInstancesThenProof() public view {
        assertEq(keccak256(_encode(instances, proof)), keccak256(calldata_));
    }

    function test_acceptsRealProof() public {
        (bool ok, uint256 gasUsed) = _call(calldata_);
        assertTrue(ok, "real proof rejected");
        vm.snapshotValue("AggregateVerifier", "runtime_size_bytes", verifier.code.length);
        vm.snapshotGasLastCall("AggregateVerifier", "verify_n48");
        console2.log("verifier runtime size (bytes):", verifier.code.length);
        console2.log("verify gas (call only):", gasUsed);
        assertLt(verifier.code.length, 24_576, "over EIP-170");
    }

    function test_rejectsTamperedProof() public {
        bytes memory p = bytes(proof);
        p[p.length / 2] = bytes1(uint8(p[p.length / 2]) ^ 0x01);
        (bool ok,) = _call(_encode(instances, p));
        assertFalse(ok);
    }

    function test_rejectsTamperedCount() public {
        bytes32[] memory inputs = instances;
        inputs[countIndex] = bytes32(uint256(inputs[countIndex]) + 1);
        (bool ok,) = _call(_encode(inputs, proof));
        assertFalse(ok);
    }

    function test_rejectsTamperedCommitment() public {
        bytes32[] memory inputs = instances;
        inputs[0] = bytes32(uint256(inputs[0]) ^ 1);
        (bool ok,) = _call(_encode(inputs, proof));
        assertFalse(ok);
    }

    function test_rejectsTruncatedProof() public {
        bytes memory p = new bytes(proof.length - 32);
        for (uint256 i; i < p.length; ++i) {
            p[i] = proof[i];
        }
        (bool ok,) = _call(_encode(instances, p));
        assertFalse(ok);
    }

    /// The generated verifier reduces its inputs mod r, so `x + r` verifies as `x`: this is
    /// why `ProofGate` refuses inputs that are not below r. The verifier accepting the aliased
    /// word pins `ProofGate.SNARK_SCALAR_FIELD` to the verifier's own modulus (a wrong constant
    /// once let `[r, R)` through the gate as forged counts).
    function test_verifierReducesInputsModR() public {
        bytes32[] memory inputs = instances;
        inputs[countIndex] = bytes32(uint256(inputs[countIndex]) + R);
        (bool ok,) = _call(_encode(inputs, proof));
        assertTrue(ok, "SNARK_SCALAR_FIELD is not the verifier's modulus");
    }

    function testFuzz_rejectsAnyFlippedProofByte(uint256 index, uint8 mask) public {
        vm.assume(mask != 0);
        bytes memory p = bytes(proof);
        index = bound(index, 0, p.length - 1);
        p[index] = bytes1(uint8(p[index]) ^ mask);
        (bool ok,) = _call(_encode(instances, p));
        assertFalse(ok);
    }

    function testFuzz_rejectsAnyChangedInput(uint256 index, uint256 delta) public {
        index = bound(index, 0, instances.length - 1);
        delta = bound(delta, 1, R - 1);
        bytes32[] memory inputs = instances;
        inputs[index] = bytes32(addmod(uint256(inputs[index]), delta, R));
        (bool ok,) = _call(_encode(inputs, proof));
        assertFalse(ok);
    }
}
