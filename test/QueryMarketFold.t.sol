// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {ProofGate} from "../contracts/libraries/ProofGate.sol";
import {IProofGated} from "../contracts/interfaces/IProofGated.sol";
import {IQueryMarket} from "../contracts/interfaces/IQueryMarket.sol";
import {QueryMarket} from "../contracts/QueryMarket.sol";
import {MarketBase} from "./utils/MarketBase.sol";

/// @notice Claims against a commit-and-prove ("fold") aggregate circuit (issue #8, design B):
/// W data columns, the dataset commitment is `keccak256(proof[:64 * W]) mod r`, and the inputs
/// are `[constants(n)..., context, records, count, nonmissing, sum, sumOfSquares, suppressed]`.
/// The circuit here is registered on the Poseidon circuit's generated verifier (which rejects
/// every proof of this layout), so these tests reach every check of the market's own up to and
/// including the verifier call; real fold proofs, paid and pooled, are in `FoldMarket.t.sol`.
/// The fold circuit takes the Poseidon fixture's constants count, so the Poseidon circuit is
/// removed first (one family per schema and count, `LayoutConflict`).
contract QueryMarketFoldTest is MarketBase, IQueryMarket, IProofGated {
    uint256 internal constant R = ProofGate.SNARK_SCALAR_FIELD;
    uint32 internal constant W = 2;
    uint64 internal constant RECORDS = 40;
    bytes32 internal foldCircuit = keccak256("fold-test-w2");
    /// The dataset's data-column commitments: `64 * W` bytes.
    bytes internal columns;
    uint256 internal foldDataset;

    function setUp() public override {
        super.setUp();
        columns =
            abi.encodePacked(keccak256("x0"), keccak256("y0"), keccak256("x1"), keccak256("y1"));
        _setCircuit(circuitId, _aggregate(address(0), schemaHash));
        _setCircuit(foldCircuit, _fold(verifier, W));
        vm.prank(hospitals[0]);
        foldDataset = registry.register(_commit(columns), schemaHash, RECORDS, foldCircuit, 0);
    }

    function _fold(address verifier_, uint32 w)
        internal
        view
        returns (IProofGated.Circuit memory c)
    {
        c = _aggregate(verifier_, schemaHash);
        c.dataColumns = w;
    }

    /// The registry's form of a data-column commitment (`ProofGate.dataCommitment`).
    function _commit(bytes memory cols) internal pure returns (bytes32) {
        return bytes32(uint256(keccak256(cols)) % R);
    }

    /// A query on the fold dataset alone.
    function _postFold() internal returns (uint256) {
        uint256[] memory ids = new uint256[](1);
        ids[0] = foldDataset;
        return _post(ids, uint64(block.timestamp + 1 days));
    }

    /// Inputs in the fold layout for a claim of query `q` by `claimant`: the query's constants,
    /// the claim context, the dataset's record count, then the given results.
    function _inputs(uint256 q, address claimant, uint256[5] memory results)
        internal
        view
        returns (uint256[] memory inputs)
    {
        uint256 n = constants.length;
        inputs = new uint256[](n + 7);
        for (uint256 i; i < n; ++i) {
            inputs[i] = constants[i];
        }
        inputs[n] = market.claimContext(q, claimant);
        inputs[n + 1] = RECORDS;
        for (uint256 i; i < 5; ++i) {
            inputs[n + 2 + i] = results[i];
        }
    }

    function _someResults() internal pure returns (uint256[5] memory) {
        return [uint256(30), 25, 1000, 50_000, 0];
    }

    /// The proof bytes after the data columns: a real proof of another circuit, so the
    /// verifier sees a well-formed but wrong proof.
    function _tail() internal view returns (bytes memory) {
        bytes memory p = answers[0].proof;
        bytes memory tail = new bytes(p.length - 64 * W);
        for (uint256 i; i < tail.length; ++i) {
            tail[i] = p[64 * W + i];
        }
        return tail;
    }

    function _claimFold(uint256 q, uint256[] memory inputs, bytes memory proof) internal {
        vm.prank(hospitals[0]);
        market.claim(q, foldDataset, inputs, proof);
    }

    // ---- shape ----

    /// The data columns travel in the circuit and its events; at most `MAX_DATA_COLUMNS`.
    function test_fold_shapeCarriesDataColumns() public {
        (,,,, uint32 w,) = market.circuits(foldCircuit);
        assertEq(w, W);
        IProofGated.Circuit memory c = _fold(verifier, 8);
        uint64 eta = uint64(block.timestamp) + market.VERIFIER_DELAY();
        vm.expectEmit(address(market));
        emit VerifierProposed(
            keccak256("fold-w8"), schemaHash, verifier, uint32(constants.length), 0, 1, 8, eta
        );
        vm.prank(owner);
        market.proposeVerifier(keccak256("fold-w8"), c);
        vm.warp(eta);
        vm.expectEmit(address(market));
        emit VerifierSet(
            keccak256("fold-w8"),
            schemaHash,
            address(0),
            verifier,
            uint32(constants.length),
            0,
            1,
            8
        );
        market.applyVerifier(keccak256("fold-w8"));
    }

    function test_fold_rejectsMoreThanEightDataColumns() public {
        assertEq(market.MAX_DATA_COLUMNS(), 8);
        IProofGated.Circuit memory c = _fold(verifier, 9);
        vm.expectRevert(abi.encodeWithSelector(InvalidShape.selector, constants.length, 0, 1));
        vm.prank(owner);
        market.proposeVerifier(keccak256("fold-w9"), c);
        c.dataColumns = type(uint32).max;
        vm.expectRevert(abi.encodeWithSelector(InvalidShape.selector, constants.length, 0, 1));
        vm.prank(owner);
        market.proposeVerifier(keccak256("fold-w9"), c);
    }

    // ---- claim: the fold layout's checks, in order ----

    /// `n + 7` inputs exactly (the count is checked before anything is read).
    function test_fold_wrongInputCount() public {
        uint256 q = _postFold();
        uint256[] memory good = _inputs(q, hospitals[0], _someResults());
        uint256 n = constants.length;
        for (uint256 k; k < 2; ++k) {
            uint256[] memory bad = new uint256[](k == 0 ? n + 6 : n + 8);
            for (uint256 i; i < bad.length && i < good.length; ++i) {
                bad[i] = good[i];
            }
            vm.expectRevert(abi.encodeWithSelector(WrongInputCount.selector, n + 7, bad.length));
            _claimFold(q, bad, bytes.concat(columns, _tail()));
        }
    }

    /// A proof whose data columns hash to another commitment is refused before the verifier
    /// is called (with the real verifier, a verification first would revert InvalidProof);
    /// so is a proof too short to hold them.
    function test_fold_commitmentMismatchBeforeVerification() public {
        uint256 q = _postFold();
        uint256[] memory inputs = _inputs(q, hospitals[0], _someResults());
        bytes memory other = bytes.concat(columns);
        other[127] = other[127] ^ 0x01;
        assertTrue(_commit(other) != _commit(columns));
        vm.expectCall(verifier, "", 0);
        vm.expectRevert(abi.encodeWithSelector(CommitmentMismatch.selector, foldDataset));
        _claimFold(q, inputs, bytes.concat(other, _tail()));
        vm.expectRevert(abi.encodeWithSelector(ProofTooShort.selector, 128, 127));
        _claimFold(q, inputs, new bytes(127));
        // The legacy place of the commitment (public input 0) means nothing here.
        inputs[0] = uint256(_commit(columns));
        vm.expectRevert(abi.encodeWithSelector(ConstantsMismatch.selector, q));
        _claimFold(q, inputs, bytes.concat(columns, _tail()));
        assertFalse(market.claimed(q, foldDataset));
    }

    /// The matching data columns followed by a proof that is not of these inputs: every
    /// market check passes and the generated verifier rejects it.
    function test_fold_matchingCommitmentGarbageProofIsInvalid() public {
        uint256 q = _postFold();
        uint256[] memory inputs = _inputs(q, hospitals[0], _someResults());
        vm.expectRevert(InvalidProof.selector);
        _claimFold(q, inputs, bytes.concat(columns, _tail()));
        bytes memory zeros = new bytes(answers[0].proof.length - 128);
        vm.expectRevert(InvalidProof.selector);
        _claimFold(q, inputs, bytes.concat(columns, zeros));
        assertFalse(market.claimed(q, foldDataset));
        assertEq(market.pendingWithdrawals(address(0), hospitals[0]), 0);
    }

    /// Context at n, records at n + 1, the cell floor against the last constant (n - 1).
    function test_fold_inputsReadAtTheirOffsets() public {
        uint256 q = _postFold();
        bytes memory proof = bytes.concat(columns, _tail());
        uint256 n = constants.length;
        uint256[] memory inputs = _inputs(q, hospitals[1], _someResults());
        uint256 context = market.claimContext(q, hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(ContextMismatch.selector, context, inputs[n]));
        _claimFold(q, inputs, proof);
        inputs = _inputs(q, hospitals[0], _someResults());
        inputs[n + 1] = RECORDS + 1;
        vm.expectRevert(abi.encodeWithSelector(RecordCountMismatch.selector, RECORDS, RECORDS + 1));
        _claimFold(q, inputs, proof);
        inputs[n + 1] = RECORDS;
        uint256 minCohort = constants[n - 1];
        vm.prank(hospitals[0]);
        registry.setCellFloor(uint64(minCohort + 1));
        vm.expectRevert(abi.encodeWithSelector(CellFloor.selector, minCohort + 1, minCohort));
        _claimFold(q, inputs, proof);
    }

    /// A verifier releasing more non-missing values than matches (none of ours can; a wrong
    /// one, mocked here to accept anything, could) is refused with a clear error, not an
    /// arithmetic panic; an answer that releases at most `count` is pooled.
    function test_fold_nonMissingAboveCountIsRefused() public {
        uint256 q = _postFold();
        bytes memory proof = bytes.concat(columns, _tail());
        vm.mockCall(verifier, bytes(""), bytes(""));
        uint256[] memory inputs = _inputs(q, hospitals[0], [uint256(30), 31, 1000, 50_000, 0]);
        vm.expectRevert(abi.encodeWithSelector(NonMissingAboveCount.selector, 30, 31));
        _claimFold(q, inputs, proof);
        assertFalse(market.claimed(q, foldDataset));
        inputs = _inputs(q, hospitals[0], [uint256(30), 30, 1000, 50_000, 0]);
        _claimFold(q, inputs, proof);
        assertEq(market.query(q).totalCount, 30);
        assertEq(market.query(q).totalMissing, 0);
    }

    /// The constants of a query served by commit-and-prove circuits are public inputs 0..n-1:
    /// a word out of the field is reported at its own index.
    function test_fold_outOfFieldConstantReportedAtItsInput() public {
        uint256[] memory big = constants;
        big[0] = R;
        uint256[] memory ids = new uint256[](1);
        ids[0] = foldDataset;
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(InputNotInField.selector, 0));
        market.postQuery{value: PRICE}(
            _spec(), big, ids, address(0), PRICE, uint64(block.timestamp + 1), address(0)
        );
    }

    // ---- attestations: the VERDICT family ----

    /// The fold circuit as an attestation (`cells == 0`: a verdict instead of a cell).
    function _verdict(address verifier_) internal view returns (IProofGated.Circuit memory c) {
        c = _fold(verifier_, W);
        c.cells = 0;
    }

    /// Inputs in the attestation layout: the constants, the context, the records, the verdict.
    function _verdictInputs(uint256 q, address claimant, uint256 verdict)
        internal
        view
        returns (uint256[] memory inputs)
    {
        uint256 n = constants.length;
        inputs = new uint256[](n + 3);
        for (uint256 i; i < n; ++i) {
            inputs[i] = constants[i];
        }
        inputs[n] = market.claimContext(q, claimant);
        inputs[n + 1] = RECORDS;
        inputs[n + 2] = verdict;
    }

    /// The fold circuit turned into an attestation (the only circuit of its count may change
    /// family), and a second hospital's dataset on it; returns that dataset.
    function _toVerdict() internal returns (uint256 second) {
        _setCircuit(foldCircuit, _verdict(verifier));
        vm.prank(hospitals[1]);
        second = registry.register(_commit(columns), schemaHash, RECORDS, foldCircuit, 0);
    }

    /// A query's kind is its circuits' family: posted against an attestation circuit, it is an
    /// attestation; its claims take `n + 3` inputs.
    function test_verdict_queryIsAnAttestation() public {
        _toVerdict();
        assertEq(market.liveCircuitsOf(schemaHash, uint32(constants.length), market.VERDICT()), 1);
        assertEq(market.liveCircuitsOf(schemaHash, uint32(constants.length), market.FOLD()), 0);
        uint256 q = _postFold();
        assertTrue(market.query(q).attestation);
        uint256[] memory inputs = _inputs(q, hospitals[0], _someResults());
        vm.expectRevert(
            abi.encodeWithSelector(WrongInputCount.selector, constants.length + 3, inputs.length)
        );
        _claimFold(q, inputs, bytes.concat(columns, _tail()));
        // Every check before the verifier holds: the real verifier rejects the garbage proof.
        inputs = _verdictInputs(q, hospitals[0], 1);
        vm.expectRevert(InvalidProof.selector);
        _claimFold(q, inputs, bytes.concat(columns, _tail()));
    }

    /// A yes is paid, a no is recorded and paid nothing, and the no's escrow is the sponsor's
    /// at the refund: the escrow is conserved. (The verifier is mocked to accept; real
    /// attestation proofs are in `FoldMarket.t.sol`.)
    function test_verdict_yesIsPaidNoIsNot() public {
        uint256 second = _toVerdict();
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (foldDataset, second);
        uint64 deadline = uint64(block.timestamp + 1 days);
        uint256 q = _post(ids, deadline);
        bytes memory proof = bytes.concat(columns, _tail());
        vm.mockCall(verifier, bytes(""), bytes(""));
        uint256[] memory yes = _verdictInputs(q, hospitals[0], 1);
        uint256[] memory no = _verdictInputs(q, hospitals[1], 0);
        vm.expectEmit(address(market));
        emit Attested(q, foldDataset, hospitals[0], keccak256(proof), true, PRICE);
        _claimFold(q, yes, proof);
        vm.expectEmit(address(market));
        emit Attested(q, second, hospitals[1], keccak256(proof), false, 0);
        vm.prank(hospitals[1]);
        market.claim(q, second, no, proof);
        assertEq(market.query(q).answered, 1, "one yes");
        assertEq(market.query(q).declined, 1, "one no");
        assertEq(market.query(q).totalCount, 0, "an attestation pools nothing");
        assertEq(market.pendingWithdrawals(address(0), hospitals[0]), PRICE);
        assertEq(market.pendingWithdrawals(address(0), hospitals[1]), 0);
        assertEq(market.locked(q), PRICE, "the no's escrow stays for the refund");
        assertTrue(market.claimed(q, second));
        no[no.length - 1] = 1;
        vm.expectRevert(abi.encodeWithSelector(AlreadyClaimed.selector, q, second));
        vm.prank(hospitals[1]);
        market.claim(q, second, no, proof);
        vm.warp(deadline + 1);
        vm.prank(sponsor);
        market.refund(q);
        assertEq(market.pendingWithdrawals(address(0), sponsor), PRICE);
        assertEq(address(market).balance, 2 * PRICE, "credits equal the escrow");
    }

    /// A verdict is a bit: anything else (no circuit of ours releases it; a wrong verifier
    /// could) is refused.
    function test_verdict_notABitIsRefused() public {
        _toVerdict();
        uint256 q = _postFold();
        vm.mockCall(verifier, bytes(""), bytes(""));
        uint256[] memory inputs = _verdictInputs(q, hospitals[0], 2);
        vm.expectRevert(abi.encodeWithSelector(VerdictNotABit.selector, 2));
        _claimFold(q, inputs, bytes.concat(columns, _tail()));
        assertFalse(market.claimed(q, foldDataset));
    }

    /// A query posted for numbers is not answered by a verdict when the circuit changes family
    /// after posting, nor the reverse.
    function test_verdict_kindChangedAfterPostingIsRefused() public {
        uint256[] memory ids = new uint256[](1);
        ids[0] = foldDataset;
        // Changing a verifier takes `VERIFIER_DELAY`: deadlines beyond two changes.
        uint64 deadline = uint64(block.timestamp + 30 days);
        uint256 numbers = _post(ids, deadline);
        _toVerdict();
        uint256 attestation = _post(ids, deadline);
        vm.mockCall(verifier, bytes(""), bytes(""));
        bytes memory proof = bytes.concat(columns, _tail());
        uint256[] memory verdict = _verdictInputs(numbers, hospitals[0], 1);
        vm.expectRevert(abi.encodeWithSelector(AnswerKindMismatch.selector, numbers));
        _claimFold(numbers, verdict, proof);
        _setCircuit(foldCircuit, _fold(verifier, W));
        uint256[] memory cell = _inputs(attestation, hospitals[0], _someResults());
        vm.expectRevert(abi.encodeWithSelector(AnswerKindMismatch.selector, attestation));
        _claimFold(attestation, cell, proof);
    }

    /// One family per (schema, count): an attestation circuit beside a live fold circuit of
    /// the same count is refused, and so is the reverse; a stratified circuit (several cells)
    /// and an attestation without data columns are not accepted.
    function test_verdict_layoutConflictsAndShapes() public {
        IProofGated.Circuit memory v = _verdict(verifier);
        vm.startPrank(owner);
        vm.expectRevert(abi.encodeWithSelector(LayoutConflict.selector, schemaHash, v.numConstants));
        market.proposeVerifier(keccak256("attest"), v);
        v.cells = 2;
        vm.expectRevert(abi.encodeWithSelector(InvalidShape.selector, v.numConstants, 0, 2));
        market.proposeVerifier(keccak256("strata"), v);
        v.cells = 0;
        v.dataColumns = 0;
        vm.expectRevert(abi.encodeWithSelector(InvalidShape.selector, v.numConstants, 0, 0));
        market.proposeVerifier(keccak256("attest-w0"), v);
        vm.stopPrank();
        _toVerdict();
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(LayoutConflict.selector, schemaHash, v.numConstants));
        market.proposeVerifier(keccak256("numbers"), _fold(verifier, W));
    }
}
