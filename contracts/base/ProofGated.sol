// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Ownable} from "solady/auth/Ownable.sol";
import {IProofGated} from "../interfaces/IProofGated.sol";
import {ProofGate} from "../libraries/ProofGate.sol";

/// @title ProofGated
/// @notice The circuits a market accepts and the verify gate in front of them, shared by both
/// markets: per circuit id a verifier, the schema it was built for and its shape. A query or
/// trial on a schema has n public constants for some n a live circuit of that schema takes;
/// a claim is answered by a circuit taking exactly its n. Circuits fall in three families by
/// their public-input layout (`_family`): `PLAIN`, `dataColumns == 0` (the commitment is
/// input 0, the constants follow); `FOLD`, commit-and-prove (`dataColumns != 0`: the
/// constants are inputs 0..n-1) releasing cells; `VERDICT`, commit-and-prove releasing a
/// verdict (`cells == 0`). One schema may have live circuits of all three, with different
/// constants counts, but never two families for one (schema, n), so the constants of a query
/// always have one layout and one kind of answer.
/// @dev Storage, in declaration order after `Ownable` (which uses a fixed slot of its own):
/// `circuits` (circuitId → Circuit: verifier, numConstants, batch, cells and dataColumns in
/// one slot, schemaHash in the next), `_live` (schemaHash → numConstants → uint80[3]: the live
/// circuits of each family, in one slot), `_constantsCounts` (schemaHash →
/// uint32[]: the n with a live circuit, unordered), `pendingCircuits` (circuitId → Circuit, the
/// same two slots), `pendingEta` (circuitId → uint64).
abstract contract ProofGated is IProofGated, Ownable {
    /// @notice Gas forwarded to a verifier: a malformed proof can burn all gas it is given.
    uint256 public constant VERIFY_GAS = ProofGate.VERIFY_GAS;
    /// @notice Notice between proposing a verifier and applying it.
    uint64 public constant VERIFIER_DELAY = 2 days;

    /// @notice The family of circuits with the commitment as public input 0 (`dataColumns ==
    /// 0`: the Poseidon aggregate circuits and the eligibility circuits).
    uint8 public constant PLAIN = 0;
    /// @notice The family of commit-and-prove circuits releasing cells (`dataColumns != 0`,
    /// `cells != 0`).
    uint8 public constant FOLD = 1;
    /// @notice The family of commit-and-prove circuits releasing a verdict (`dataColumns !=
    /// 0`, `cells == 0`: attestations).
    uint8 public constant VERDICT = 2;

    /// @notice Verifier, schema and shape per circuit id.
    mapping(bytes32 circuitId => Circuit) public circuits;
    /// @dev Live circuits (with a verifier) per schema and constants count, per family
    /// (indexed by `_family`; at most one of the three is non-zero, see `liveCircuitsOf`).
    mapping(bytes32 schemaHash => mapping(uint256 numConstants => uint80[3])) internal _live;
    /// @dev The constants counts of a schema with at least one live circuit, unordered (see
    /// `constantsCountsOf`). A count is forgotten when its last circuit goes.
    mapping(bytes32 schemaHash => uint32[]) internal _constantsCounts;
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
            circuit.cells,
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
                cells: 0,
                dataColumns: 0,
                schemaHash: schemaHash
            })
        );
    }

    /// @notice Live circuits (with a verifier) of a schema taking `numConstants` constants, of
    /// one family.
    /// @param schemaHash The schema.
    /// @param numConstants The constants count.
    /// @param family `PLAIN`, `FOLD` or `VERDICT` (any other value reverts).
    /// @return The number of such circuits.
    function liveCircuitsOf(bytes32 schemaHash, uint32 numConstants, uint8 family)
        external
        view
        returns (uint256)
    {
        return _live[schemaHash][numConstants][family];
    }

    /// @notice Whether a query or trial on `schemaHash` may have `n` constants: some live
    /// circuit of the schema takes `n`.
    /// @param schemaHash The schema.
    /// @param n The number of constants.
    /// @return True if a live circuit of the schema takes `n` constants.
    function acceptsConstants(bytes32 schemaHash, uint256 n) external view returns (bool) {
        return _anyLive(_live[schemaHash][n]);
    }

    /// @notice The constants counts a query or trial on `schemaHash` may have (those of its
    /// live circuits), unordered; empty for a schema no circuit serves.
    /// @param schemaHash The schema.
    /// @return The counts.
    function constantsCountsOf(bytes32 schemaHash) external view returns (uint32[] memory) {
        return _constantsCounts[schemaHash];
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

    /// @dev Reverts unless a live circuit of `schemaHash` takes `n` constants (reporting one
    /// count it could have, or 0 if no circuit serves the schema). Returns the family of the
    /// circuits taking `n` (there is one, see `_checkCircuit`).
    function _checkConstantsCount(bytes32 schemaHash, uint256 n)
        internal
        view
        returns (uint8 family)
    {
        uint80[3] memory live = _live[schemaHash][n];
        if (live[FOLD] != 0) return FOLD;
        if (live[VERDICT] != 0) return VERDICT;
        if (live[PLAIN] != 0) return PLAIN;
        uint32[] storage counts = _constantsCounts[schemaHash];
        revert WrongConstantsCount(counts.length == 0 ? 0 : counts[0], n);
    }

    /// @dev A circuit's family: its public-input layout (see the contract's notes).
    function _family(Circuit memory c) internal pure returns (uint8) {
        if (c.dataColumns == 0) return PLAIN;
        return c.cells == 0 ? VERDICT : FOLD;
    }

    function _anyLive(uint80[3] storage live) private view returns (bool) {
        return live[PLAIN] != 0 || live[FOLD] != 0 || live[VERDICT] != 0;
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
    /// market's kind, and no live circuit of another family taking as many constants on its
    /// schema (`old` itself aside: the only circuit of a count may change family).
    function _checkCircuit(Circuit memory c, Circuit memory old) internal view {
        ProofGate.checkVerifier(c.verifier);
        if (!_validShape(c)) revert InvalidShape(c.numConstants, c.batch, c.cells);
        uint80[3] memory live = _live[c.schemaHash][c.numConstants];
        uint8 family = _family(c);
        uint256 others = uint256(live[PLAIN]) + live[FOLD] + live[VERDICT] - live[family];
        if (
            old.verifier != address(0) && old.schemaHash == c.schemaHash
                && old.numConstants == c.numConstants && _family(old) != family
        ) {
            --others;
        }
        if (others != 0) revert LayoutConflict(c.schemaHash, c.numConstants);
    }

    function _setVerifier(bytes32 circuitId, Circuit memory c) internal {
        Circuit memory old = circuits[circuitId];
        if (c.verifier != address(0)) _checkCircuit(c, old);
        if (old.verifier != address(0)) _untrack(old);
        if (c.verifier != address(0)) _track(c);
        emit VerifierSet(
            circuitId,
            c.schemaHash,
            old.verifier,
            c.verifier,
            c.numConstants,
            c.batch,
            c.cells,
            c.dataColumns
        );
        circuits[circuitId] = c;
    }

    /// @dev Counts a circuit that gets a verifier; its count becomes known to its schema.
    function _track(Circuit memory c) private {
        uint80[3] storage live = _live[c.schemaHash][c.numConstants];
        if (!_anyLive(live)) _constantsCounts[c.schemaHash].push(c.numConstants);
        ++live[_family(c)];
    }

    /// @dev Discounts a circuit whose verifier goes; its count is forgotten with its schema's
    /// last circuit taking it.
    function _untrack(Circuit memory c) private {
        uint80[3] storage live = _live[c.schemaHash][c.numConstants];
        --live[_family(c)];
        if (_anyLive(live)) return;
        uint32[] storage counts = _constantsCounts[c.schemaHash];
        uint256 last = counts.length - 1;
        for (uint256 i; i <= last; ++i) {
            if (counts[i] == c.numConstants) {
                counts[i] = counts[last];
                counts.pop();
                return;
            }
        }
    }
}
