// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Test} from "forge-std/Test.sol";
import {ProofGate} from "../contracts/libraries/ProofGate.sol";
import {IProofGated} from "../contracts/interfaces/IProofGated.sol";

/// @notice Exposes `ProofGate.dataCommitment`, which reads calldata, to the test.
contract DataCommitmentHarness {
    function dataCommitment(bytes calldata proof, uint256 dataColumns)
        external
        pure
        returns (bytes32)
    {
        return ProofGate.dataCommitment(proof, dataColumns);
    }
}

/// @notice `ProofGate.dataCommitment`: the dataset commitment a commit-and-prove proof carries
/// in its first `64 * W` bytes, as the registry stores it.
contract ProofGateTest is Test {
    uint256 internal constant R = ProofGate.SNARK_SCALAR_FIELD;
    DataCommitmentHarness internal gate;

    function setUp() public {
        gate = new DataCommitmentHarness();
    }

    /// `keccak256(proof[:64 * W]) mod r`, for an input whose hash is at least r (so the
    /// reduction is exercised); the bytes after the data columns are not hashed.
    function test_dataCommitmentIsKeccakOfTheColumnsModR() public view {
        bytes memory columns = abi.encodePacked(uint256(1), uint256(2), uint256(3), uint256(4));
        uint256 raw = uint256(keccak256(columns));
        assertGe(raw, R, "the hash of these bytes is not a field element");
        bytes memory proof = bytes.concat(columns, hex"deadbeef");
        bytes32 c = gate.dataCommitment(proof, 2);
        assertEq(uint256(c), raw % R);
        assertLt(uint256(c), R);
        assertEq(
            uint256(gate.dataCommitment(proof, 1)),
            uint256(keccak256(abi.encodePacked(uint256(1), uint256(2)))) % R,
            "W = 1 hashes the first 64 bytes"
        );
        assertEq(gate.dataCommitment(columns, 2), c, "a proof of exactly 64 * W bytes");
    }

    /// A proof shorter than its data columns is refused, naming both lengths.
    function test_dataCommitmentRevertsOnShortProof() public {
        bytes memory proof = new bytes(127);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.ProofTooShort.selector, 128, 127));
        gate.dataCommitment(proof, 2);
        vm.expectRevert(abi.encodeWithSelector(IProofGated.ProofTooShort.selector, 512, 0));
        gate.dataCommitment("", 8);
    }

    /// Only the first `64 * W` bytes matter: any tail gives the same commitment, and changing
    /// any one byte of the columns changes it.
    function testFuzz_onlyTheDataColumnsMatter(
        uint256 seed,
        uint8 w,
        bytes calldata tailA,
        bytes calldata tailB,
        uint256 flipAt
    ) public view {
        uint256 columns = bound(w, 1, 8);
        bytes memory head = new bytes(64 * columns);
        for (uint256 i; i < head.length; i += 32) {
            bytes32 word = keccak256(abi.encode(seed, i));
            assembly {
                mstore(add(add(head, 32), i), word)
            }
        }
        bytes32 a = gate.dataCommitment(bytes.concat(head, tailA), columns);
        assertEq(a, gate.dataCommitment(bytes.concat(head, tailB), columns), "tail ignored");
        assertEq(uint256(a), uint256(keccak256(head)) % R);
        flipAt = bound(flipAt, 0, head.length - 1);
        head[flipAt] = head[flipAt] ^ 0x01;
        assertTrue(
            gate.dataCommitment(bytes.concat(head, tailA), columns) != a, "a column byte matters"
        );
    }
}
