// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {ReentrancyGuard} from "solady/utils/ReentrancyGuard.sol";
import {SafeTransferLib} from "solady/utils/SafeTransferLib.sol";
import {IEscrow} from "../interfaces/IEscrow.sol";

/// @title Escrow
/// @notice The pull-payment core shared by the markets: escrow in, credits, withdrawals and
/// the refund rule. Every payment is a credit here first; the only transfer out is
/// `withdraw`, by the payee, for its whole credit.
/// @dev Storage: `pendingWithdrawals` (token → account → credit), `tokenAllowed`, after `ReentrancyGuard`'s
/// fixed slot. The invariant every market keeps: the contract's balance of a token equals the
/// sum of credits in it plus the escrow still locked in open queries or trials.
abstract contract Escrow is IEscrow, ReentrancyGuard {
    /// @notice Credited, not yet withdrawn, per token (address(0) = ETH) and account.
    mapping(address token => mapping(address account => uint256)) public pendingWithdrawals;
    /// @notice ERC-20s accepted for new escrows. Credits in one token are pooled across
    /// queries, so a token whose balances change by themselves (rebasing, fee-on-transfer,
    /// pausable or blocklisting) could leave a payee of an unrelated query unpaid: only plain
    /// tokens are allowed, by the owner. Disallowing affects new escrows only.
    mapping(address token => bool) public tokenAllowed;

    /// @notice Pays out the caller's whole credit in `token` (address(0) = ETH).
    /// @param token The token to withdraw.
    function withdraw(address token) external nonReentrant {
        uint256 amount = pendingWithdrawals[token][msg.sender];
        if (amount == 0) revert NothingToWithdraw();
        pendingWithdrawals[token][msg.sender] = 0;
        emit Withdrawn(msg.sender, token, amount);
        if (token == address(0)) {
            SafeTransferLib.safeTransferETH(msg.sender, amount);
        } else {
            SafeTransferLib.safeTransfer(token, msg.sender, amount);
        }
    }

    /// @dev Takes `total` into escrow from the caller: exactly `total` ETH as value, or exactly
    /// `total` tokens of an allowed token received (a fee-on-transfer token is refused).
    function _collect(address token, uint256 total) internal {
        if (token == address(0)) {
            if (msg.value != total) revert WrongPayment(total, msg.value);
        } else {
            if (!tokenAllowed[token]) revert TokenNotAllowed(token);
            if (msg.value != 0) revert WrongPayment(0, msg.value);
            uint256 before = SafeTransferLib.balanceOf(token, address(this));
            SafeTransferLib.safeTransferFrom(token, msg.sender, address(this), total);
            uint256 received = SafeTransferLib.balanceOf(token, address(this)) - before;
            if (received != total) revert WrongPayment(total, received);
        }
    }

    /// @dev Allows or disallows an ERC-20 for new escrows; emits `TokenAllowed`.
    function _setTokenAllowed(address token, bool allowed) internal {
        if (token == address(0)) revert TokenNotAllowed(token);
        tokenAllowed[token] = allowed;
        emit TokenAllowed(token, allowed);
    }

    /// @dev Credits `amount` of `token` to `account` (a no-op for 0).
    function _credit(address token, address account, uint256 amount) internal {
        if (amount != 0) pendingWithdrawals[token][account] += amount;
    }

    /// @dev The refund rule: only the sponsor, only after the deadline, only once.
    function _checkRefund(uint256 id, address sponsor, uint64 deadline, bool refunded)
        internal
        view
    {
        if (sponsor != msg.sender) revert NotSponsor(id, msg.sender);
        if (block.timestamp <= deadline) revert DeadlineNotPassed(id, deadline);
        if (refunded) revert AlreadyRefunded(id);
    }
}
