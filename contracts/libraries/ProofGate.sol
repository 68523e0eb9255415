// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {IProofGated} from "../interfaces/IProofGated.sol";

/// @title ProofGate
/// @notice The one place where a market hands a proof to a generated verifier.
/// @dev A generated verifier has no ABI: its calldata is the public inputs (32-byte big-endian
/// words, in order) followed by the proof bytes; it returns empty data on success and reverts
/// on failure. Its assumptions, each of which this gate enforces:
/// - it reads the inputs at fixed offsets and never checks the calldata length, so the caller
///   must fix the number of inputs (otherwise words can be moved between the inputs and the
///   proof bytes with identical calldata and a valid proof);
/// - it reduces inputs mod r, so x and x + r both verify: every input must be below r;
/// - an address without code "succeeds" with empty data: the verifier must have code;
/// - a proof with an invalid curve point burns all gas it is given: forward a bounded amount;
/// - success is empty return data.
library ProofGate {
    /// @dev BN254 scalar field modulus r: every public input must be below it.
    uint256 internal constant SNARK_SCALAR_FIELD =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    /// @dev Gas forwarded to a verifier (a verifier call takes ~360k).
    uint256 internal constant VERIFY_GAS = 1_500_000;

    /// @notice Reverts with `InputNotInField(firstIndex + i)` at the first word `i` that is not
    /// below r.
    /// @param words Words that will become public inputs.
    /// @param firstIndex The index of `words[0]` among the public inputs, for the error.
    function checkInField(uint256[] calldata words, uint256 firstIndex) internal pure {
        for (uint256 i; i < words.length; ++i) {
            if (words[i] >= SNARK_SCALAR_FIELD) revert IProofGated.InputNotInField(firstIndex + i);
        }
    }

    /// @notice The context that binds a proof to this chain, the calling contract, an id (a
    /// query's) and the party who may use it: `keccak256(abi.encode(block.chainid,
    /// address(this), id, party)) mod r`, a field element for a public input. The circuits put
    /// it in no constraint: the transcript absorbs every public input, so a proof verifies under
    /// exactly one context.
    /// @param id The query (or other) id.
    /// @param party The address allowed to use the proof.
    /// @return The context.
    function context(uint256 id, address party) internal view returns (uint256) {
        return uint256(keccak256(abi.encode(block.chainid, address(this), id, party)))
            % SNARK_SCALAR_FIELD;
    }

    /// @notice The dataset commitment a commit-and-prove proof carries: its first
    /// `64 * dataColumns` bytes are the KZG commitments of its data columns (each point x then
    /// y, 32-byte big-endian words), the same in every proof over one dataset. Returned as
    /// `keccak256(proof[:64 * dataColumns]) mod r`, the form the dataset registry stores.
    /// Reverts `ProofTooShort` if the proof has fewer bytes.
    /// @param proof The proof bytes.
    /// @param dataColumns The circuit's data columns W.
    /// @return The commitment, a field element.
    function dataCommitment(bytes calldata proof, uint256 dataColumns)
        internal
        pure
        returns (bytes32)
    {
        uint256 needed = 64 * dataColumns;
        if (proof.length < needed) revert IProofGated.ProofTooShort(needed, proof.length);
        return bytes32(uint256(keccak256(proof[:needed])) % SNARK_SCALAR_FIELD);
    }

    /// @notice Reverts unless `verifier` has code.
    /// @param verifier The verifier contract.
    function checkVerifier(address verifier) internal view {
        if (verifier.code.length == 0) revert IProofGated.NotAContract(verifier);
    }

    /// @notice Verifies a proof or reverts: exact input count, inputs below r, verifier with
    /// code, bounded-gas staticcall, empty return data. A check: no state is read or written
    /// besides the verifier's code.
    /// @param verifier The circuit's generated verifier.
    /// @param expectedInputs The circuit's number of public inputs.
    /// @param publicInputs The public inputs.
    /// @param proof The proof bytes.
    function verify(
        address verifier,
        uint256 expectedInputs,
        uint256[] calldata publicInputs,
        bytes calldata proof
    ) internal view {
        uint256 n = publicInputs.length;
        if (n != expectedInputs) revert IProofGated.WrongInputCount(expectedInputs, n);
        checkInField(publicInputs, 0);
        checkVerifier(verifier);
        uint256 gasLimit = VERIFY_GAS;
        bool ok;
        uint256 returned;
        // The verifier's calldata is the inputs' words then the proof bytes, copied straight
        // from calldata into scratch memory past the free memory pointer (never read again).
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let inputBytes := shl(5, n)
            calldatacopy(ptr, publicInputs.offset, inputBytes)
            calldatacopy(add(ptr, inputBytes), proof.offset, proof.length)
            ok := staticcall(gasLimit, verifier, ptr, add(inputBytes, proof.length), 0, 0)
            returned := returndatasize()
        }
        if (!ok || returned != 0) revert IProofGated.InvalidProof();
    }
}
