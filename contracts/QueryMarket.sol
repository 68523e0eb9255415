// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {IAccreditationRegistry} from "./interfaces/IAccreditationRegistry.sol";
import {IDatasetRegistry} from "./interfaces/IDatasetRegistry.sol";
import {IQueryMarket} from "./interfaces/IQueryMarket.sol";
import {ProofGate} from "./libraries/ProofGate.sol";
import {ProofGated} from "./base/ProofGated.sol";
import {ConsentPurposes} from "./base/ConsentPurposes.sol";
import {Escrow} from "./base/Escrow.sol";

/// @title QueryMarket
/// @notice Sponsors post cohort queries and escrow payment per targeted dataset; custodians
/// claim by submitting a zero-knowledge proof that the generated verifier of the dataset's
/// circuit accepts. Results of all datasets of a query are pooled on-chain (count, sum, sum of
/// squares), so the sponsor reads a multi-site mean and variance. A query may instead ask for
/// an attestation (issue #13, "signal attestations"): each proof releases one verdict, whether
/// the statistic's mean over the cohort reaches the sponsor's threshold over at least
/// `min_cohort` patients; a yes is paid, a no is recorded and paid nothing (its escrow returns
/// to the sponsor with the refund). Payments are pulled.
/// @dev The events are the regulator's audit trail: who asked what (spec hash and public
/// constants), against which commitments, with which proof (its hash; the calldata holds it),
/// and who was paid.
///
/// A query is bound to one schema and one constants count n: every target is a dataset of
/// that schema whose aggregate circuit has a verifier, some live circuit of the schema takes n
/// constants, and a target answers only with a circuit taking n (`ProofGated`). The public
/// inputs of an aggregate circuit, in order, take one of three layouts, by the circuit's
/// family (`dataColumns` W and `cells`; `_numInputs`, `_resultsAt`); the circuits taking one
/// n share one layout, and the query's kind (numbers or attestation) is that family's:
/// - W = 0: `[commitment, constants(n)..., context, records, count, sum, sumOfSquares,
///   suppressed]`, exactly `1 + n + 6` words; the commitment is public input 0.
/// - W > 0 (commit-and-prove): `[constants(n)..., context, records, count, nonmissing, sum,
///   sumOfSquares, suppressed]`, exactly `n + 7` words; the commitment is no input but the
///   proof's first `64 * W` bytes (its data columns' KZG commitments), which must hash to the
///   registered one (`ProofGate.dataCommitment`). `nonmissing` counts the matching records
///   whose statistic is not missing (the mean is `sum / nonmissing`).
/// - W > 0, cells = 0 (an attestation): `[constants(n)..., context, records, verdict]`,
///   exactly `n + 3` words, the commitment as for W > 0; the constants hold the sponsor's
///   threshold (a packed fraction, after the bounds), and the verdict is 1 for yes, 0 for no.
/// In all three the constants end with `purpose, statistic, min_cohort`. For W = 0 `nonmissing` is
/// taken to be `count`. The context (`claimContext`) binds a proof to this chain, this market,
/// the query and the claiming custodian: it pays nowhere else.
///
/// Storage after the bases (`ProofGated`, `ConsentPurposes`, `Escrow`): `registry` and
/// `accreditations` (immutable), `queryCount`, `isTarget`, `claimed`, `_queries` (a `Query` in
/// eleven slots: sponsor, deadline, refunded and attestation; token, numConstants, targets and
/// answered; suppressed, declined and accreditor; then one word for each of the other eight).
contract QueryMarket is IQueryMarket, ProofGated, ConsentPurposes, Escrow {
    /// @notice Public inputs after the query constants when the commitment is an input (W = 0):
    /// the context, then five results (records, count, sum, sumOfSquares, suppressed).
    uint256 internal constant RESULT_INPUTS = 6;
    /// @notice Public inputs after the query constants of a commit-and-prove circuit (W > 0):
    /// the context, then six results (records, count, nonmissing, sum, sumOfSquares,
    /// suppressed).
    uint256 internal constant FOLD_RESULT_INPUTS = 7;
    /// @notice Public inputs after the query constants of an attestation circuit: the context,
    /// then the records total and the verdict.
    uint256 internal constant VERDICT_INPUTS = 3;
    /// @notice The most data columns a commit-and-prove circuit may have.
    uint32 public constant MAX_DATA_COLUMNS = 8;
    /// @notice The smallest cell a query may release (its `min_cohort`, the last constant): a
    /// sponsor cannot turn small-cell suppression off. A custodian may set a higher floor for
    /// its own datasets (`DatasetRegistry.setCellFloor`).
    uint256 public constant MIN_CELL_FLOOR = 11;

    /// @notice A posted query and its pooled results: over the answers not suppressed, the
    /// matching records (`totalCount`), those of them whose statistic is missing
    /// (`totalMissing`; 0 for a circuit without a `nonmissing` output, and for a statistic that
    /// is never missing: stored as the missing rather than the non-missing count so that the
    /// common case writes no new slot), and the sum and sum of squares of the statistic. The
    /// pooled mean is `totalSum / (totalCount − totalMissing)`. An attestation query
    /// (`attestation`) pools nothing: `answered` counts its yes verdicts (each paid) and
    /// `declined` its no verdicts (paid nothing; their escrow stays for the refund).
    struct Query {
        address sponsor;
        uint64 deadline;
        bool refunded;
        bool attestation;
        address token;
        uint32 numConstants;
        uint32 targets;
        uint32 answered;
        uint32 suppressed;
        uint32 declined;
        address accreditor;
        uint256 price;
        bytes32 specHash;
        bytes32 constantsHash;
        bytes32 schemaHash;
        uint256 totalCount;
        uint256 totalMissing;
        uint256 totalSum;
        uint256 totalSumOfSquares;
    }

    /// @notice The dataset registry this market reads commitments from.
    IDatasetRegistry public immutable registry;
    /// @notice Where custodians' accreditations are read from.
    IAccreditationRegistry public immutable accreditations;
    /// @notice Number of queries posted so far (the last id).
    uint256 public queryCount;
    /// @notice Whether a dataset is a target of a query.
    mapping(uint256 queryId => mapping(uint256 datasetId => bool)) public isTarget;
    /// @notice Whether a (query, dataset) pair has been answered.
    mapping(uint256 queryId => mapping(uint256 datasetId => bool)) public claimed;
    mapping(uint256 queryId => Query) internal _queries;

    /// @param registry_ The dataset registry.
    /// @param accreditations_ The accreditation registry.
    /// @param owner_ Who may change verifiers.
    /// @param circuitIds Aggregate circuits whose verifiers are set at deployment.
    /// @param circuits_ Verifier, schema, constants count and data columns of each (batch 0).
    /// @param purposes_ The consent purposes of each schema a query may name.
    constructor(
        IDatasetRegistry registry_,
        IAccreditationRegistry accreditations_,
        address owner_,
        bytes32[] memory circuitIds,
        Circuit[] memory circuits_,
        ConsentPurpose[] memory purposes_
    ) ProofGated(owner_, circuitIds, circuits_) ConsentPurposes(purposes_) {
        if (address(registry_) == address(0) || address(accreditations_) == address(0)) {
            revert ZeroAddress();
        }
        registry = registry_;
        accreditations = accreditations_;
    }

    /// @notice Posts a query and escrows `price` for each targeted dataset.
    /// @param spec The query spec (JSON) that produced `constants`: its SHA-256 (`spec.hash`,
    /// stored and logged as `specHash`) and the document itself (`spec.document`, its canonical
    /// JSON), which must hash to it and is published in `SpecPublished` so anyone can read the
    /// criteria.
    /// @param constants The query's public constants, as the circuit takes them; its consent
    /// purpose (third from the end) must be registered for the targets' schema. Their number
    /// names the family of the circuits answering, and so the query's kind: an attestation
    /// if those circuits release a verdict.
    /// @param datasetIds Targeted datasets: strictly increasing, active, all of one schema, each
    /// with a verifier for its circuit.
    /// @param token Payment token, or address(0) for ETH (then send `price * n` as value).
    /// @param price Payment per answered dataset.
    /// @param deadline Last timestamp at which claims are accepted.
    /// @param accreditor Only custodians this address attests are paid, checked at posting and
    /// again at claim; address(0) trusts the explicit targets alone.
    /// @return queryId The new query's id.
    function postQuery(
        Spec calldata spec,
        uint256[] calldata constants,
        uint256[] calldata datasetIds,
        address token,
        uint256 price,
        uint64 deadline,
        address accreditor
    ) external payable nonReentrant returns (uint256 queryId) {
        if (deadline <= block.timestamp) revert DeadlineInPast(deadline);
        if (datasetIds.length == 0) revert NoTargets();
        if (price == 0) revert ZeroPrice();
        queryId = ++queryCount;
        bytes32 schemaHash = _checkTargets(queryId, datasetIds, accreditor, constants.length);
        // The constants are public inputs 1.. of a circuit with the commitment as input 0,
        // 0.. of a commit-and-prove one; the circuits taking n constants are of one family.
        uint8 family = _checkConstantsCount(schemaHash, constants.length);
        ProofGate.checkInField(constants, family == PLAIN ? 1 : 0);
        // The constants end with `purpose, statistic, min_cohort`.
        _checkConsentPurpose(schemaHash, constants[constants.length - 3]);
        uint256 minCell = constants[constants.length - 1];
        if (minCell < MIN_CELL_FLOOR) revert CellFloor(MIN_CELL_FLOOR, minCell);
        Query storage q = _queries[queryId];
        q.sponsor = msg.sender;
        q.deadline = deadline;
        q.attestation = family == VERDICT;
        q.token = token;
        q.numConstants = uint32(constants.length);
        q.targets = uint32(datasetIds.length);
        q.price = price;
        q.specHash = spec.hash;
        q.constantsHash = keccak256(abi.encodePacked(constants));
        q.schemaHash = schemaHash;
        q.accreditor = accreditor;
        _emitPosted(queryId, q, constants, datasetIds);
        _publishSpec(queryId, spec);
        _collect(token, price * datasetIds.length);
    }

    /// @dev Requires `spec.document` to be the document `spec.hash` names, and publishes it.
    function _publishSpec(uint256 queryId, Spec calldata spec) internal {
        bytes32 actual = sha256(spec.document);
        if (actual != spec.hash) revert SpecMismatch(spec.hash, actual);
        emit SpecPublished(queryId, spec.hash, spec.document);
    }

    /// @dev Marks the targets; they must be strictly increasing, active, of one schema, have a
    /// verifier for that schema taking `numConstants` constants, and custodians the accreditor
    /// (if any) attests. Returns the schema.
    function _checkTargets(
        uint256 queryId,
        uint256[] calldata datasetIds,
        address accreditor,
        uint256 numConstants
    ) internal returns (bytes32 schemaHash) {
        uint256 previous = 0; // dataset ids start at 1, so id 0 is refused too
        for (uint256 i; i < datasetIds.length; ++i) {
            uint256 id = datasetIds[i];
            if (id <= previous) revert TargetsNotStrictlyIncreasing();
            previous = id;
            IDatasetRegistry.Dataset memory d = registry.dataset(id);
            if (d.retired) revert DatasetRetired(id);
            if (i == 0) schemaHash = d.schemaHash;
            if (d.schemaHash != schemaHash) revert SchemaMismatch(schemaHash, d.schemaHash);
            // A target whose circuit reads another number of constants could never answer:
            // refused now rather than locking its escrow until the deadline.
            uint32 takes = _circuit(d.circuitId, schemaHash).numConstants;
            if (takes != numConstants) revert WrongConstantsCount(takes, numConstants);
            _checkAccepted(accreditor, id, d.custodian);
            isTarget[queryId][id] = true;
        }
    }

    function _emitPosted(
        uint256 queryId,
        Query storage q,
        uint256[] calldata constants,
        uint256[] calldata datasetIds
    ) internal {
        emit QueryPosted(
            queryId,
            q.sponsor,
            q.specHash,
            constants,
            datasetIds,
            q.token,
            q.price,
            q.deadline,
            q.accreditor
        );
    }

    /// @notice Answers a query for one dataset with a proof; on success the result is pooled
    /// and the custodian credited `price` (withdraw with `withdraw`). For an attestation query
    /// the proof's verdict is recorded (`Attested`), and only a yes is credited.
    /// @param queryId The query.
    /// @param datasetId The caller's dataset, a target of the query.
    /// @param publicInputs The proof's public inputs (commitment unless the circuit is
    /// commit-and-prove, constants, context, results; see the contract's notes): exactly as
    /// many as the dataset's circuit has.
    /// @param proof The proof bytes (for a commit-and-prove circuit, starting with its data
    /// columns' commitments, which must hash to the dataset's commitment).
    function claim(
        uint256 queryId,
        uint256 datasetId,
        uint256[] calldata publicInputs,
        bytes calldata proof
    ) external {
        Query storage q = _query(queryId);
        if (block.timestamp > q.deadline) revert DeadlinePassed(queryId, q.deadline);
        if (!isTarget[queryId][datasetId]) revert NotTarget(queryId, datasetId);
        if (claimed[queryId][datasetId]) revert AlreadyClaimed(queryId, datasetId);
        IDatasetRegistry.Dataset memory d = registry.dataset(datasetId);
        if (d.custodian != msg.sender) revert NotCustodian(datasetId, msg.sender);
        _checkAccepted(q.accreditor, datasetId, d.custodian);
        Circuit memory c = _circuit(d.circuitId, q.schemaHash);
        // The circuit, not the sponsor, fixes the input count: a target answers only with a
        // circuit taking the query's constants count (its schema may have circuits of other
        // counts, and the verifier may have been replaced since posting).
        if (c.numConstants != q.numConstants) {
            revert WrongConstantsCount(c.numConstants, q.numConstants);
        }
        // ... and of the query's kind (a verifier replaced since posting may have changed it).
        if ((_family(c) == VERDICT) != q.attestation) revert AnswerKindMismatch(queryId);
        _checkInputCount(c, publicInputs);
        _checkCommitment(c, d, datasetId, publicInputs, proof);
        uint256 at = _resultsAt(c);
        _checkInputs(q, queryId, d, at, publicInputs);
        bytes32 proofHash = _verify(d.circuitId, c, publicInputs, proof);
        if (q.attestation) {
            _recordVerdict(q, queryId, datasetId, publicInputs[at + 2], proofHash);
        } else {
            _record(
                q,
                queryId,
                datasetId,
                _results(publicInputs[at + 1:], c.dataColumns != 0),
                proofHash
            );
        }
    }

    /// @dev The proof must be about the dataset's registered commitment: public input 0 for a
    /// circuit without data columns, else the hash of the proof's data-column commitments
    /// (`ProofGate.dataCommitment`), checked before any verification.
    function _checkCommitment(
        Circuit memory c,
        IDatasetRegistry.Dataset memory d,
        uint256 datasetId,
        uint256[] calldata publicInputs,
        bytes calldata proof
    ) internal pure {
        bytes32 commitment = c.dataColumns == 0
            ? bytes32(publicInputs[0])
            : ProofGate.dataCommitment(proof, c.dataColumns);
        if (commitment != d.commitment) revert CommitmentMismatch(datasetId);
    }

    /// @dev Public inputs must carry exactly the query's constants (the `n` words before index
    /// `at`, the context's, see `_resultsAt`), the context of this claim (`claimContext`) and
    /// the dataset's record count, and the query's `min_cohort` (the last constant) must reach
    /// the custodian's cell floor.
    function _checkInputs(
        Query storage q,
        uint256 queryId,
        IDatasetRegistry.Dataset memory d,
        uint256 at,
        uint256[] calldata publicInputs
    ) internal view {
        if (keccak256(abi.encodePacked(publicInputs[at - q.numConstants:at])) != q.constantsHash) {
            revert ConstantsMismatch(queryId);
        }
        if (publicInputs[at + 1] != d.recordCount) {
            revert RecordCountMismatch(d.recordCount, publicInputs[at + 1]);
        }
        uint256 floor = registry.cellFloorOf(d.custodian);
        if (publicInputs[at - 1] < floor) revert CellFloor(floor, publicInputs[at - 1]);
        uint256 context = claimContext(queryId, msg.sender);
        if (publicInputs[at] != context) revert ContextMismatch(context, publicInputs[at]);
    }

    /// @dev Reverts unless `accreditor` is unset or attests `custodian`.
    function _checkAccepted(address accreditor, uint256 datasetId, address custodian)
        internal
        view
    {
        if (accreditor != address(0) && !accreditations.isAccredited(accreditor, custodian)) {
            revert CustodianNotAccepted(datasetId, custodian);
        }
    }

    /// @dev A claim's results in one shape, `[count, nonmissing, sum, sumOfSquares,
    /// suppressed]`, from `results` (the inputs after the context): `[records, count, sum,
    /// sumOfSquares, suppressed]`, or with `nonmissing` after `count` if `withNonMissing` (a
    /// commit-and-prove circuit); without it, `nonmissing` is `count`.
    function _results(uint256[] calldata results, bool withNonMissing)
        internal
        pure
        returns (uint256[5] memory r)
    {
        uint256 k = withNonMissing ? 1 : 0;
        r = [results[1], results[1 + k], results[2 + k], results[3 + k], results[4 + k]];
    }

    /// @dev Effects of a verified claim with results `r` (see `_results`).
    function _record(
        Query storage q,
        uint256 queryId,
        uint256 datasetId,
        uint256[5] memory r,
        bytes32 proofHash
    ) internal {
        bool suppressed = r[4] == 1;
        claimed[queryId][datasetId] = true;
        q.answered += 1;
        if (suppressed) {
            q.suppressed += 1;
        } else {
            // None of our circuits releases more non-missing values than matches; a wrong
            // verifier could.
            if (r[1] > r[0]) revert NonMissingAboveCount(r[0], r[1]);
            uint256 missing;
            unchecked {
                missing = r[0] - r[1];
            }
            q.totalCount += r[0];
            q.totalMissing += missing;
            q.totalSum += r[2];
            q.totalSumOfSquares += r[3];
        }
        uint256 price = q.price;
        _credit(q.token, msg.sender, price);
        emit Claimed(
            queryId, datasetId, msg.sender, proofHash, r[0], r[1], r[2], r[3], suppressed, price
        );
    }

    /// @dev Effects of a verified attestation with verdict `verdict` (1 yes, 0 no): a yes is
    /// credited `price`, a no nothing (its escrow stays locked for the sponsor's refund).
    function _recordVerdict(
        Query storage q,
        uint256 queryId,
        uint256 datasetId,
        uint256 verdict,
        bytes32 proofHash
    ) internal {
        // Our attestation circuits constrain the verdict to a bit; a wrong verifier could not.
        if (verdict > 1) revert VerdictNotABit(verdict);
        claimed[queryId][datasetId] = true;
        bool yes = verdict == 1;
        uint256 paid = yes ? q.price : 0;
        if (yes) {
            q.answered += 1;
            _credit(q.token, msg.sender, paid);
        } else {
            q.declined += 1;
        }
        emit Attested(queryId, datasetId, msg.sender, proofHash, yes, paid);
    }

    /// @notice Allows or disallows an ERC-20 for new queries. Only the owner. Not timelocked:
    /// it touches no existing escrow, and credits are kept per token. Emits `TokenAllowed`.
    /// @param token The token (a plain ERC-20: no rebasing, fees or blocklists).
    /// @param allowed Whether new queries may escrow it.
    function setTokenAllowed(address token, bool allowed) external onlyOwner {
        _setTokenAllowed(token, allowed);
    }

    /// @notice After the deadline, credits the sponsor with the escrow of unanswered datasets.
    /// @param queryId The query.
    function refund(uint256 queryId) external {
        Query storage q = _query(queryId);
        _checkRefund(queryId, q.sponsor, q.deadline, q.refunded);
        q.refunded = true;
        uint256 amount = q.price * (q.targets - q.answered);
        _credit(q.token, msg.sender, amount);
        emit Refunded(queryId, msg.sender, amount);
    }

    /// @notice The context a claim of `queryId` sent by `claimant` must carry as a public input:
    /// `keccak256(abi.encode(block.chainid, address(this), queryId, claimant)) mod r`. The
    /// prover puts it in the proof's transcript, so the proof pays on no other chain, market,
    /// query or address (a copied commitment on a second deployment earns nothing).
    /// @param queryId The query.
    /// @param claimant The address sending the claim (the dataset's custodian).
    /// @return The context, a field element.
    function claimContext(uint256 queryId, address claimant) public view returns (uint256) {
        return ProofGate.context(queryId, claimant);
    }

    /// @notice Returns a query, including its pooled results.
    /// @param queryId The query.
    /// @return The query record.
    function query(uint256 queryId) external view returns (Query memory) {
        return _query(queryId);
    }

    /// @notice Escrow still locked in a query (not yet claimed or refunded).
    /// @param queryId The query.
    /// @return The locked amount.
    function locked(uint256 queryId) public view returns (uint256) {
        Query storage q = _query(queryId);
        return q.refunded ? 0 : q.price * (q.targets - q.answered);
    }

    function _query(uint256 queryId) internal view returns (Query storage q) {
        q = _queries[queryId];
        if (q.sponsor == address(0)) revert UnknownQuery(queryId);
    }

    /// @dev Aggregate circuits have constants, no patient slots, at most `MAX_DATA_COLUMNS`
    /// data columns, and release one cell, or a verdict (no cell) if commit-and-prove. (A
    /// stratified circuit, several cells per proof, is not accepted yet.)
    function _validShape(Circuit memory c) internal pure override returns (bool) {
        return c.numConstants != 0 && c.batch == 0 && c.dataColumns <= MAX_DATA_COLUMNS
            && (c.cells == 1 || (c.cells == 0 && c.dataColumns != 0));
    }

    /// @dev `PLAIN`: `[commitment, constants(n)..., context, records, count, sum,
    /// sumOfSquares, suppressed]` (1 + n + 6). `FOLD`: `[constants(n)..., context, records,
    /// count, nonmissing, sum, sumOfSquares, suppressed]` (n + 7). `VERDICT`: `[constants(n)...,
    /// context, records, verdict]` (n + 3). See the contract's notes.
    function _numInputs(Circuit memory c) internal pure override returns (uint256) {
        uint8 family = _family(c);
        uint256 results =
            family == PLAIN ? RESULT_INPUTS : family == FOLD ? FOLD_RESULT_INPUTS : VERDICT_INPUTS;
        return _resultsAt(c) + results;
    }

    /// @dev The index of `context` among circuit `c`'s public inputs: the n constants are the
    /// words right before it, the results the words after it (see `_numInputs`).
    function _resultsAt(Circuit memory c) internal pure returns (uint256) {
        return (c.dataColumns == 0 ? 1 : 0) + uint256(c.numConstants);
    }
}
