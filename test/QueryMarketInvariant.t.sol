// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {StdInvariant} from "forge-std/StdInvariant.sol";
import {CommonBase} from "forge-std/Base.sol";
import {StdCheats} from "forge-std/StdCheats.sol";
import {StdUtils} from "forge-std/StdUtils.sol";
import {QueryMarket} from "../contracts/QueryMarket.sol";
import {IQueryMarket} from "../contracts/interfaces/IQueryMarket.sol";
import {MarketBase} from "./utils/MarketBase.sol";

/// @notice Drives the market with random posts, real-proof claims, refunds, withdrawals and
/// time jumps, keeping ghost totals of what went in and out.
contract MarketHandler is CommonBase, StdCheats, StdUtils {
    QueryMarket internal market;
    address internal sponsor;
    address[3] internal hospitals;
    uint256[] internal datasetIds;
    uint256[] internal constants;
    IQueryMarket.Spec internal spec;
    uint256[][3] internal inputs;
    bytes[3] internal proofs;

    uint256 public escrowed;
    uint256 public withdrawn;
    uint256 public claims;
    /// Claims accepted with public inputs realigned against the proof bytes (must stay 0).
    uint256 public realignedAccepted;
    /// Per query, the sums of the accepted claims' proven results (unsuppressed only).
    mapping(uint256 queryId => uint256[3]) internal _pooled;
    uint256[] public queries;
    address[] public accounts;

    constructor(
        QueryMarket market_,
        address sponsor_,
        address[3] memory hospitals_,
        uint256[] memory datasetIds_,
        uint256[] memory constants_,
        IQueryMarket.Spec memory spec_,
        uint256[][3] memory inputs_,
        bytes[3] memory proofs_
    ) {
        (market, sponsor, hospitals, datasetIds, constants) =
        (market_, sponsor_, hospitals_, datasetIds_, constants_);
        spec = spec_;
        for (uint256 i; i < 3; ++i) {
            inputs[i] = inputs_[i];
            proofs[i] = proofs_[i];
        }
        accounts.push(sponsor_);
        for (uint256 i; i < 3; ++i) {
            accounts.push(hospitals_[i]);
        }
    }

    function post(uint96 price, uint8 mask, uint32 duration) external {
        price = uint96(bound(price, 1, 10 ether));
        mask = uint8(bound(mask, 1, 7));
        duration = uint32(bound(duration, 1, 30 days));
        uint256 n;
        for (uint256 i; i < 3; ++i) {
            if (mask & (1 << i) != 0) ++n;
        }
        uint256[] memory ids = new uint256[](n);
        n = 0;
        for (uint256 i; i < 3; ++i) {
            if (mask & (1 << i) != 0) ids[n++] = datasetIds[i];
        }
        uint256 total = uint256(price) * ids.length;
        vm.deal(sponsor, sponsor.balance + total);
        vm.prank(sponsor);
        queries.push(
            market.postQuery{value: total}(
                spec,
                constants,
                ids,
                address(0),
                price,
                uint64(block.timestamp + duration),
                address(0)
            )
        );
        escrowed += total;
    }

    function claim(uint256 querySeed, uint256 hospitalSeed) external {
        if (queries.length == 0) return;
        uint256 q = queries[querySeed % queries.length];
        uint256 h = hospitalSeed % 3;
        vm.prank(hospitals[h]);
        try market.claim(q, datasetIds[h], inputs[h], proofs[h]) {
            ++claims;
            uint256[] storage w = inputs[h];
            uint256 n = w.length;
            if (w[n - 1] == 0) {
                _pooled[q][0] += w[n - 4];
                _pooled[q][1] += w[n - 3];
                _pooled[q][2] += w[n - 2];
            }
        } catch {}
    }

    /// A custodian moving its last `shift` input words to the front of the proof bytes: the
    /// calldata the verifier sees, and so the proof's validity, are unchanged.
    function claimRealigned(uint256 querySeed, uint256 hospitalSeed, uint256 shift) external {
        if (queries.length == 0) return;
        uint256 q = queries[querySeed % queries.length];
        uint256 h = hospitalSeed % 3;
        uint256[] memory full = inputs[h];
        shift = bound(shift, 1, full.length - 1);
        uint256[] memory head = new uint256[](full.length - shift);
        uint256[] memory tail = new uint256[](shift);
        for (uint256 i; i < full.length; ++i) {
            if (i < head.length) head[i] = full[i];
            else tail[i - head.length] = full[i];
        }
        vm.prank(hospitals[h]);
        try market.claim(q, datasetIds[h], head, bytes.concat(abi.encodePacked(tail), proofs[h])) {
            ++realignedAccepted;
        } catch {}
    }

    function pooled(uint256 queryId) external view returns (uint256[3] memory) {
        return _pooled[queryId];
    }

    function refund(uint256 querySeed) external {
        if (queries.length == 0) return;
        vm.prank(sponsor);
        try market.refund(queries[querySeed % queries.length]) {} catch {}
    }

    function withdraw(uint256 accountSeed) external {
        address account = accounts[accountSeed % accounts.length];
        uint256 owed = market.pendingWithdrawals(address(0), account);
        vm.prank(account);
        try market.withdraw(address(0)) {
            withdrawn += owed;
        } catch {}
    }

    function warp(uint32 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 10 days));
    }

    function queryCount() external view returns (uint256) {
        return queries.length;
    }

    function accountCount() external view returns (uint256) {
        return accounts.length;
    }
}

contract QueryMarketInvariantTest is StdInvariant, MarketBase {
    MarketHandler internal handler;

    function setUp() public override {
        super.setUp();
        uint256[][3] memory inputs;
        bytes[3] memory proofs;
        for (uint256 i; i < 3; ++i) {
            (inputs[i], proofs[i]) = (answers[i].inputs, answers[i].proof);
        }
        handler = new MarketHandler(
            market, sponsor, hospitals, datasetIds, constants, _spec(), inputs, proofs
        );
        targetContract(address(handler));
    }

    /// The handler's claim path really verifies and credits (so the invariants cover claims,
    /// not only posts and refunds).
    function test_handlerClaimsWithRealProofs() public {
        handler.post(1 ether, 7, 1000);
        for (uint256 h; h < 3; ++h) {
            handler.claim(0, h);
        }
        assertEq(handler.claims(), 3);
        handler.warp(2000);
        handler.refund(0);
        for (uint256 a; a < 4; ++a) {
            handler.withdraw(a);
        }
        assertEq(address(market).balance, 0);
        assertEq(handler.withdrawn(), 3 ether);
    }

    /// Escrow conservation: the market holds exactly what was escrowed minus what was paid out
    /// (custodians' payments and sponsors' refunds both leave through withdraw).
    function invariant_balanceIsEscrowedMinusWithdrawn() public view {
        assertEq(address(market).balance, handler.escrowed() - handler.withdrawn());
    }

    /// The pooled totals of every query are exactly the sums of its accepted claims' proven
    /// results, and no realigned claim is ever accepted.
    function invariant_pooledTotalsAreSumsOfProvenResults() public view {
        assertEq(handler.realignedAccepted(), 0);
        for (uint256 i; i < handler.queryCount(); ++i) {
            uint256 q = handler.queries(i);
            QueryMarket.Query memory s = market.query(q);
            uint256[3] memory g = handler.pooled(q);
            assertEq(s.totalCount, g[0]);
            // Every circuit here takes the commitment as an input: nonmissing is the count.
            assertEq(s.totalMissing, 0);
            assertEq(s.totalSum, g[1]);
            assertEq(s.totalSumOfSquares, g[2]);
        }
    }

    /// Every wei in the market is owed to someone: credited but unwithdrawn, or locked in a
    /// query that is neither answered nor refunded.
    function invariant_balanceIsOwed() public view {
        uint256 owed;
        for (uint256 i; i < handler.accountCount(); ++i) {
            owed += market.pendingWithdrawals(address(0), handler.accounts(i));
        }
        for (uint256 i; i < handler.queryCount(); ++i) {
            owed += market.locked(handler.queries(i));
        }
        assertEq(address(market).balance, owed);
    }
}
