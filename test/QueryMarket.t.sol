// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Ownable} from "solady/auth/Ownable.sol";
import {ERC20} from "solady/tokens/ERC20.sol";
import {QueryMarket} from "../contracts/QueryMarket.sol";
import {DatasetRegistry} from "../contracts/DatasetRegistry.sol";
import {MarketBase} from "./utils/MarketBase.sol";
import {IQueryMarketEvents} from "../contracts/interfaces/IQueryMarketEvents.sol";

contract TestToken is ERC20 {
    function name() public pure override returns (string memory) {
        return "Test";
    }

    function symbol() public pure override returns (string memory) {
        return "TST";
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}

/// @notice A custodian contract that re-enters `withdraw` from its receive hook.
contract ReentrantCustodian {
    QueryMarket internal market;
    uint256 public reentries;
    bool public reentryFailed;

    constructor(QueryMarket market_) {
        market = market_;
    }

    function register(DatasetRegistry registry, bytes32 c, bytes32 s, uint64 n, bytes32 id)
        external
        returns (uint256)
    {
        return registry.register(c, s, n, id, 0);
    }

    function claim(uint256 q, uint256 d, uint256[] calldata inputs, bytes calldata proof) external {
        market.claim(q, d, inputs, proof);
    }

    function withdraw() external {
        market.withdraw(address(0));
    }

    receive() external payable {
        if (reentries == 0) {
            reentries = 1;
            try market.withdraw(address(0)) {}
            catch {
                reentryFailed = true;
            }
        }
    }
}

contract QueryMarketTest is MarketBase, IQueryMarketEvents {
    uint256 internal constant R =
        21888242871839275222246405745257275088548364400416711978069531813576695000001;

    // ---- setVerifier ----

    function test_ownerSetsVerifierWithEvent() public {
        vm.expectEmit(address(market));
        emit VerifierSet(circuitId, verifier, address(0xBEEF));
        vm.prank(owner);
        market.setVerifier(circuitId, address(0xBEEF));
        assertEq(market.verifierOf(circuitId), address(0xBEEF));
    }

    function test_attack_unauthorisedVerifierChange() public {
        vm.prank(hospitals[0]);
        vm.expectRevert(Ownable.Unauthorized.selector);
        market.setVerifier(circuitId, address(0xBAD));
        assertEq(market.verifierOf(circuitId), verifier);
    }

    // ---- postQuery ----

    function test_postQueryEscrowsAndRecords() public {
        uint256 q = _postAll();
        assertEq(address(market).balance, 3 * PRICE);
        QueryMarket.Query memory s = market.query(q);
        assertEq(s.sponsor, sponsor);
        assertEq(s.targets, 3);
        assertEq(s.specHash, specHash);
        assertEq(s.constantsHash, keccak256(abi.encodePacked(constants)));
        assertEq(market.locked(q), 3 * PRICE);
        assertTrue(market.isTarget(q, datasetIds[1]));
    }

    function test_postQueryRejectsBadArguments() public {
        uint256[] memory none = new uint256[](0);
        uint64 later = uint64(block.timestamp + 1);
        vm.startPrank(sponsor);
        vm.expectRevert(QueryMarket.NoTargets.selector);
        market.postQuery(specHash, constants, none, address(0), PRICE, later);
        vm.expectRevert(
            abi.encodeWithSelector(QueryMarket.DeadlineInPast.selector, uint64(block.timestamp))
        );
        market.postQuery{value: 3 * PRICE}(
            specHash, constants, datasetIds, address(0), PRICE, uint64(block.timestamp)
        );
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.WrongPayment.selector, 3 * PRICE, PRICE));
        market.postQuery{value: PRICE}(specHash, constants, datasetIds, address(0), PRICE, later);
        vm.expectRevert(QueryMarket.ZeroPrice.selector);
        market.postQuery(specHash, constants, datasetIds, address(0), 0, later);
        uint256[] memory dup = new uint256[](2);
        (dup[0], dup[1]) = (datasetIds[1], datasetIds[1]);
        vm.expectRevert(QueryMarket.TargetsNotStrictlyIncreasing.selector);
        market.postQuery{value: 2 * PRICE}(specHash, constants, dup, address(0), PRICE, later);
        uint256[] memory big = constants;
        big[0] = R;
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.InputNotInField.selector, 1));
        market.postQuery{value: 3 * PRICE}(specHash, big, datasetIds, address(0), PRICE, later);
        vm.stopPrank();
    }

    function test_postQueryRejectsRetiredOrUnknownDataset() public {
        vm.prank(hospitals[1]);
        registry.retire(datasetIds[1]);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.DatasetRetired.selector, datasetIds[1]));
        market.postQuery{value: 3 * PRICE}(
            specHash, constants, datasetIds, address(0), PRICE, uint64(block.timestamp + 1)
        );
        uint256[] memory unknown = new uint256[](1);
        unknown[0] = 99;
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(DatasetRegistry.UnknownDataset.selector, 99));
        market.postQuery{value: PRICE}(
            specHash, constants, unknown, address(0), PRICE, uint64(block.timestamp + 1)
        );
    }

    // ---- claim: the happy path with real proofs ----

    function test_claimsVerifyPoolAndCredit() public {
        uint256 q = _postAll();
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(address(market));
            emit Claimed(
                q,
                datasetIds[i],
                hospitals[i],
                keccak256(answers[i].proof),
                answers[i].count,
                answers[i].sum,
                answers[i].sumOfSquares,
                answers[i].suppressed,
                PRICE
            );
            _claim(q, i);
            assertEq(market.pendingWithdrawals(address(0), hospitals[i]), PRICE);
        }
        QueryMarket.Query memory s = market.query(q);
        assertEq(s.answered, 3);
        assertEq(s.suppressed, 1, "the small hospital's result is suppressed");
        assertEq(s.totalCount, answers[0].count + answers[1].count);
        assertEq(s.totalSum, answers[0].sum + answers[1].sum);
        assertEq(s.totalSumOfSquares, answers[0].sumOfSquares + answers[1].sumOfSquares);
        assertEq(market.locked(q), 0);
    }

    /// forge snapshot: claim gas, real verification included.
    function test_gas_claimWithVerification() public {
        uint256 q = _postAll();
        vm.prank(hospitals[0]);
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
        // Written to snapshots/QueryMarket.json; the call's gas, without the 21k base and calldata.
        uint256 gas = vm.snapshotGasLastCall("QueryMarket", "claim_with_verification");
        emit log_named_uint("claim gas (verification included, call only)", gas);
    }

    // ---- claim: attacks ----

    function test_attack_tamperedProof() public {
        uint256 q = _postAll();
        bytes memory p = answers[0].proof;
        p[200] = bytes1(uint8(p[200]) ^ 0x04);
        vm.prank(hospitals[0]);
        vm.expectRevert(QueryMarket.InvalidProof.selector);
        market.claim(q, datasetIds[0], answers[0].inputs, p);
    }

    function test_attack_tamperedPublicInput() public {
        uint256 q = _postAll();
        uint256[] memory inputs = answers[0].inputs;
        inputs[inputs.length - 4] += 1; // one more patient than proven
        vm.prank(hospitals[0]);
        vm.expectRevert(QueryMarket.InvalidProof.selector);
        market.claim(q, datasetIds[0], inputs, answers[0].proof);
    }

    function test_attack_publicInputAliasedModR() public {
        uint256 q = _postAll();
        uint256[] memory inputs = answers[0].inputs;
        inputs[inputs.length - 4] += R;
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(QueryMarket.InputNotInField.selector, inputs.length - 4)
        );
        market.claim(q, datasetIds[0], inputs, answers[0].proof);
    }

    function test_attack_proofForAnotherDataset() public {
        uint256 q = _postAll();
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(QueryMarket.CommitmentMismatch.selector, datasetIds[0])
        );
        market.claim(q, datasetIds[0], answers[1].inputs, answers[1].proof);
    }

    function test_attack_proofForAnotherQuery() public {
        uint256 q = _postAll();
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.ConstantsMismatch.selector, q));
        market.claim(q, datasetIds[0], otherAnswer.inputs, otherAnswer.proof);
    }

    function test_attack_replayedProofByAnotherCustodian() public {
        uint256 q = _postAll();
        _claim(q, 0);
        // Hospital B copies A's proof from A's calldata and submits it for its own dataset.
        vm.prank(hospitals[1]);
        vm.expectRevert(
            abi.encodeWithSelector(QueryMarket.CommitmentMismatch.selector, datasetIds[1])
        );
        market.claim(q, datasetIds[1], answers[0].inputs, answers[0].proof);
        // Or for A's dataset, which it does not hold.
        vm.prank(hospitals[1]);
        vm.expectRevert(
            abi.encodeWithSelector(QueryMarket.AlreadyClaimed.selector, q, datasetIds[0])
        );
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    function test_attack_doubleClaim() public {
        uint256 q = _postAll();
        _claim(q, 0);
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(QueryMarket.AlreadyClaimed.selector, q, datasetIds[0])
        );
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
        assertEq(market.pendingWithdrawals(address(0), hospitals[0]), PRICE);
    }

    function test_attack_claimByNonCustodian() public {
        uint256 q = _postAll();
        vm.prank(sponsor);
        vm.expectRevert(
            abi.encodeWithSelector(QueryMarket.NotCustodian.selector, datasetIds[0], sponsor)
        );
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    function test_attack_claimAfterDeadline() public {
        uint256 q = _postAll();
        uint64 deadline = market.query(q).deadline;
        vm.warp(deadline + 1);
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.DeadlinePassed.selector, q, deadline));
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    function test_claimAtDeadlineIsAccepted() public {
        uint256 q = _postAll();
        vm.warp(market.query(q).deadline);
        _claim(q, 0);
    }

    function test_attack_claimForUntargetedDataset() public {
        uint256[] memory ids = new uint256[](1);
        ids[0] = datasetIds[1];
        uint256 q = _post(ids, uint64(block.timestamp + 1 days));
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.NotTarget.selector, q, datasetIds[0]));
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    function test_claimRejectsWrongRecordCountAndShape() public {
        uint256 q = _postAll();
        uint256[] memory shortInputs = new uint256[](3);
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                QueryMarket.WrongInputCount.selector, answers[0].inputs.length, 3
            )
        );
        market.claim(q, datasetIds[0], shortInputs, answers[0].proof);
        // A registration that misstates its record count cannot be answered: the proof
        // reports the committed number of records.
        registry = new DatasetRegistry();
        bytes32[] memory cids = new bytes32[](1);
        address[] memory vs = new address[](1);
        (cids[0], vs[0]) = (circuitId, verifier);
        market = new QueryMarket(registry, owner, cids, vs);
        vm.prank(hospitals[0]);
        uint256 id = registry.register(
            answers[0].commitment, schemaHash, answers[0].recordCount + 5, circuitId, 0
        );
        uint256[] memory ids = new uint256[](1);
        ids[0] = id;
        uint256 q2 = _post(ids, uint64(block.timestamp + 1 days));
        vm.prank(hospitals[0]);
        vm.expectRevert(
            abi.encodeWithSelector(
                QueryMarket.RecordCountMismatch.selector,
                answers[0].recordCount + 5,
                answers[0].recordCount
            )
        );
        market.claim(q2, id, answers[0].inputs, answers[0].proof);
    }

    function test_claimWithoutVerifier() public {
        uint256 q = _postAll();
        vm.prank(owner);
        market.setVerifier(circuitId, address(0));
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.NoVerifier.selector, circuitId));
        market.claim(q, datasetIds[0], answers[0].inputs, answers[0].proof);
    }

    // ---- refund ----

    function test_refundUnclaimedAfterDeadline() public {
        uint256 q = _postAll();
        _claim(q, 0);
        vm.warp(market.query(q).deadline + 1);
        vm.expectEmit(address(market));
        emit Refunded(q, sponsor, 2 * PRICE);
        vm.prank(sponsor);
        market.refund(q);
        assertEq(market.pendingWithdrawals(address(0), sponsor), 2 * PRICE);
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.AlreadyRefunded.selector, q));
        market.refund(q);
    }

    function test_attack_refundBeforeDeadline() public {
        uint256 q = _postAll();
        uint64 deadline = market.query(q).deadline;
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.DeadlineNotPassed.selector, q, deadline));
        market.refund(q);
    }

    function test_attack_refundByOther() public {
        uint256 q = _postAll();
        vm.warp(block.timestamp + 2 days);
        vm.prank(hospitals[0]);
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.NotSponsor.selector, q, hospitals[0]));
        market.refund(q);
    }

    // ---- withdraw ----

    function test_withdrawPaysOnce() public {
        uint256 q = _postAll();
        _claim(q, 0);
        vm.expectEmit(address(market));
        emit Withdrawn(hospitals[0], address(0), PRICE);
        vm.prank(hospitals[0]);
        market.withdraw(address(0));
        assertEq(hospitals[0].balance, PRICE);
        vm.prank(hospitals[0]);
        vm.expectRevert(QueryMarket.NothingToWithdraw.selector);
        market.withdraw(address(0));
    }

    function test_attack_reentrancyOnWithdraw() public {
        ReentrantCustodian attacker = new ReentrantCustodian(market);
        // The attacker holds hospital A's dataset (registered from the contract).
        registry = new DatasetRegistry();
        bytes32[] memory ids = new bytes32[](1);
        address[] memory vs = new address[](1);
        (ids[0], vs[0]) = (circuitId, verifier);
        market = new QueryMarket(registry, owner, ids, vs);
        attacker = new ReentrantCustodian(market);
        uint256 d = attacker.register(
            registry, answers[0].commitment, schemaHash, answers[0].recordCount, circuitId
        );
        vm.prank(hospitals[1]);
        registry.register(answers[1].commitment, schemaHash, answers[1].recordCount, circuitId, 0);
        uint256[] memory targets = new uint256[](2);
        (targets[0], targets[1]) = (d, d + 1);
        uint256 q = _post(targets, uint64(block.timestamp + 1 days));
        attacker.claim(q, d, answers[0].inputs, answers[0].proof);
        vm.prank(hospitals[1]);
        market.claim(q, d + 1, answers[1].inputs, answers[1].proof);

        attacker.withdraw();
        assertEq(address(attacker).balance, PRICE, "paid exactly once");
        assertTrue(attacker.reentryFailed(), "re-entry was refused");
        assertEq(address(market).balance, PRICE, "the other custodian's credit is intact");
    }

    // ---- ERC-20 escrow ----

    function test_erc20EscrowClaimAndRefund() public {
        TestToken token = new TestToken();
        token.mint(sponsor, 10 ether);
        vm.startPrank(sponsor);
        token.approve(address(market), type(uint256).max);
        uint256 q = market.postQuery(
            specHash,
            constants,
            datasetIds,
            address(token),
            2 ether,
            uint64(block.timestamp + 1 days)
        );
        vm.stopPrank();
        assertEq(token.balanceOf(address(market)), 6 ether);
        _claim(q, 1);
        vm.warp(block.timestamp + 2 days);
        vm.prank(sponsor);
        market.refund(q);
        vm.prank(sponsor);
        market.withdraw(address(token));
        vm.prank(hospitals[1]);
        market.withdraw(address(token));
        assertEq(token.balanceOf(sponsor), 8 ether);
        assertEq(token.balanceOf(hospitals[1]), 2 ether);
        assertEq(token.balanceOf(address(market)), 0);
    }

    function test_erc20RejectsEthValue() public {
        TestToken token = new TestToken();
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(QueryMarket.WrongPayment.selector, 0, 1));
        market.postQuery{value: 1}(
            specHash, constants, datasetIds, address(token), 1, uint64(block.timestamp + 1)
        );
    }

    // ---- fuzz ----

    function testFuzz_escrowEqualsPriceTimesTargets(uint96 price, uint8 mask) public {
        price = uint96(bound(price, 1, 100 ether));
        mask = uint8(bound(mask, 1, 7));
        uint256[] memory ids = new uint256[](_popcount(mask));
        uint256 k;
        for (uint256 i; i < 3; ++i) {
            if (mask & (1 << i) != 0) ids[k++] = datasetIds[i];
        }
        vm.prank(sponsor);
        uint256 q = market.postQuery{value: uint256(price) * ids.length}(
            specHash, constants, ids, address(0), price, uint64(block.timestamp + 1)
        );
        assertEq(market.locked(q), uint256(price) * ids.length);
        assertEq(address(market).balance, uint256(price) * ids.length);
    }

    function testFuzz_refundIsUnclaimedShare(uint8 claims, uint32 late) public {
        claims = uint8(bound(claims, 0, 3));
        uint256 q = _postAll();
        for (uint256 i; i < claims; ++i) {
            _claim(q, i);
        }
        vm.warp(uint256(market.query(q).deadline) + 1 + late);
        vm.prank(sponsor);
        market.refund(q);
        assertEq(market.pendingWithdrawals(address(0), sponsor), (3 - claims) * PRICE);
    }

    function testFuzz_anyChangedResultIsRejected(uint256 which, uint256 value) public {
        uint256 q = _postAll();
        uint256[] memory inputs = answers[0].inputs;
        which = bound(which, inputs.length - 4, inputs.length - 1); // count, sum, sum², suppressed
        value = bound(value, 0, R - 1);
        vm.assume(value != inputs[which]);
        inputs[which] = value;
        vm.prank(hospitals[0]);
        vm.expectRevert(QueryMarket.InvalidProof.selector);
        market.claim(q, datasetIds[0], inputs, answers[0].proof);
    }

    function _popcount(uint8 x) internal pure returns (uint256 n) {
        for (; x != 0; x &= x - 1) {
            ++n;
        }
    }
}
