// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Ownable} from "solady/auth/Ownable.sol";
import {IProofGated} from "../interfaces/IProofGated.sol";
import {ProofGate} from "../libraries/ProofGate.sol";

/// @title ProofGated
/// @notice The circuits a market accepts and the verify gate in front of them, shared by both
/// markets: per circuit id a verifier, the schema it was built for and its shape; per schema
/// the number of public constants its queries or trials have (all circuits of one schema
/// agree on it).
/// @dev Storage, in declaration order after `Ownable` (which uses a fixed slot of its own):
/// `circuits` (circuitId → Circuit: verifier, numConstants, batch and dataColumns in one slot,
/// schemaHash in the next), `constantsOf` (schemaHash → uint32), `liveCircuits` (schemaHash →
/// uint256), `pendingCircuits` (circuitId → Circuit, the same two slots), `pendingEta`
/// (circuitId → uint64).
abstract contract ProofGated is IProofGated, Ownable {
    /// @notice Gas forwarded to a verifier: a malformed proof can burn all gas it is given.
    uint256 public constant VERIFY_GAS = ProofGate.VERIFY_GAS;
    /// @notice Notice between proposing a verifier and applying it.
    uint64 public constant VERIFIER_DELAY = 2 days;

    /// @notice Verifier, schema and shape per circuit id.
    mapping(bytes32 circuitId => Circuit) public circuits;
    /// @notice Public constants of a query or trial on this schema, learnt from its circuits;
    /// 0 for a schema no circuit serves.
    mapping(bytes32 schemaHash => uint32) public constantsOf;
    /// @notice Circuits with a verifier, per schema. When it drops to 0 the schema's constants
    /// count is forgotten, so a wrong shape can be corrected by removing its circuits.
    mapping(bytes32 schemaHash => uint256) public liveCircuits;
    /// @notice A proposed verifier per circuit id, not yet applied.
    mapping(bytes32 circuitId => Circuit) public pendingCircuits;
    /// @notice When each pending proposal may be applied (0: none pending).
    mapping(bytes32 circuitId => uint64) public pendingEta;

    /// @param owner_ Who may change verifiers.
    /// @param circuitIds Circuits whose verifiers are set at deployment.
    /// @param circuits_ Verifier, schema and shape of each circuit.
    constructor(address owner_, bytes32[] memory circuitIds, Circuit[] memory circuits_) {
        if (owner_ == address(0)) revert ZeroAddress();
        if (circuitIds.length != circuits_.length) revert LengthMismatch();
        _initializeOwner(owner_);
        for (uint256 i; i < circuitIds.length; ++i) {
            _setVerifier(circuitIds[i], circuits_[i]);
        }
    }

    /// @notice Proposes a verifier (new or replacing one) for a circuit; it can be applied
    /// after `VERIFIER_DELAY`. Only the owner; checked now (code, shape) and again when
    /// applied. Replaces a pending proposal. Emits `VerifierProposed`.
    /// @param circuitId keccak256 of the circuit id.
    /// @param circuit The verifier and the schema and shape it was generated for
    /// (`contracts/verifiers/verifiers.json`, written with the verifier).
    function proposeVerifier(bytes32 circuitId, Circuit calldata circuit) external onlyOwner {
        _checkCircuit(circuit, circuits[circuitId]);
        uint64 eta = uint64(block.timestamp) + VERIFIER_DELAY;
        pendingCircuits[circuitId] = circuit;
        pendingEta[circuitId] = eta;
        emit VerifierProposed(
            circuitId,
            circuit.schemaHash,
            circuit.verifier,
            circuit.numConstants,
            circuit.batch,
            circuit.dataColumns,
            eta
        );
    }

    /// @notice Applies a proposal whose notice has run out. Anyone may call it. Emits
    /// `VerifierSet`.
    /// @param circuitId keccak256 of the circuit id.
    function applyVerifier(bytes32 circuitId) external {
        uint64 eta = pendingEta[circuitId];
        if (eta == 0) revert NoPendingVerifier(circuitId);
        if (block.timestamp < eta) revert VerifierNotYetDue(circuitId, eta);
        Circuit memory c = pendingCircuits[circuitId];
        delete pendingCircuits[circuitId];
        delete pendingEta[circuitId];
        _setVerifier(circuitId, c);
    }

    /// @notice Withdraws a pending proposal. Only the owner. Emits `VerifierProposalCancelled`.
    /// @param circuitId keccak256 of the circuit id.
    function cancelVerifier(bytes32 circuitId) external onlyOwner {
        if (pendingEta[circuitId] == 0) revert NoPendingVerifier(circuitId);
        delete pendingCircuits[circuitId];
        delete pendingEta[circuitId];
        emit VerifierProposalCancelled(circuitId);
    }

    /// @notice Removes a circuit's verifier at once (an emergency stop: its proofs are refused
    /// until a new verifier is proposed and applied). Only the owner. Emits `VerifierSet`.
    /// @param circuitId keccak256 of the circuit id.
    function removeVerifier(bytes32 circuitId) external onlyOwner {
        bytes32 schemaHash = circuits[circuitId].schemaHash;
        _setVerifier(
            circuitId,
            Circuit({
                verifier: address(0),
                numConstants: 0,
                batch: 0,
                dataColumns: 0,
                schemaHash: schemaHash
            })
        );
    }

    /// @dev Whether a shape is of this market's kind (aggregate or eligibility).
    function _validShape(Circuit memory c) internal pure virtual returns (bool);

    /// @dev The number of public inputs of a circuit of this market's kind.
    function _numInputs(Circuit memory c) internal pure virtual returns (uint256);

    /// @dev The circuit of `circuitId`, which must have a verifier for `schemaHash`.
    function _circuit(bytes32 circuitId, bytes32 schemaHash)
        internal
        view
        returns (Circuit memory c)
    {
        c = circuits[circuitId];
        if (c.verifier == address(0)) revert NoVerifier(circuitId);
        if (c.schemaHash != schemaHash) revert SchemaMismatch(schemaHash, c.schemaHash);
    }

    /// @dev Reverts unless `n` constants is the count of `schemaHash`'s circuits.
    function _checkConstantsCount(bytes32 schemaHash, uint256 n) internal view {
        uint256 expected = constantsOf[schemaHash];
        if (expected == 0 || n != expected) revert WrongConstantsCount(expected, n);
    }

    /// @dev Reverts unless there are exactly as many public inputs as circuit `c` has, so the
    /// caller may read them before verification (the gate checks the count again).
    function _checkInputCount(Circuit memory c, uint256[] calldata publicInputs) internal pure {
        uint256 expected = _numInputs(c);
        if (publicInputs.length != expected) {
            revert WrongInputCount(expected, publicInputs.length);
        }
    }

    /// @dev The verify gate for a proof of circuit `circuitId` (see `ProofGate.verify`); emits
    /// `ProofAccepted` and returns the proof's hash.
    function _verify(
        bytes32 circuitId,
        Circuit memory c,
        uint256[] calldata publicInputs,
        bytes calldata proof
    ) internal returns (bytes32 proofHash) {
        ProofGate.verify(c.verifier, _numInputs(c), publicInputs, proof);
        proofHash = keccak256(proof);
        emit ProofAccepted(circuitId, c.verifier, proofHash);
    }

    /// @dev Reverts unless `c` may replace `old`: a verifier with code, a shape of this
    /// market's kind, and the constants count its schema's other circuits have.
    function _checkCircuit(Circuit memory c, Circuit memory old) internal view {
        ProofGate.checkVerifier(c.verifier);
        uint32 known = constantsOf[c.schemaHash];
        bool onlyOne = liveCircuits[c.schemaHash] == 1 && old.verifier != address(0)
            && old.schemaHash == c.schemaHash;
        if (!_validShape(c) || (known != 0 && known != c.numConstants && !onlyOne)) {
            revert InvalidShape(c.numConstants, c.batch);
        }
    }

    function _setVerifier(bytes32 circuitId, Circuit memory c) internal {
        Circuit memory old = circuits[circuitId];
        if (c.verifier != address(0)) _checkCircuit(c, old);
        if (old.verifier != address(0) && --liveCircuits[old.schemaHash] == 0) {
            constantsOf[old.schemaHash] = 0;
        }
        if (c.verifier != address(0)) {
            constantsOf[c.schemaHash] = c.numConstants;
            ++liveCircuits[c.schemaHash];
        }
        emit VerifierSet(
            circuitId,
            c.schemaHash,
            old.verifier,
            c.verifier,
            c.numConstants,
            c.batch,
            c.dataColumns
        );
        circuits[circuitId] = c;
    }
}
