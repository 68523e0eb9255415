// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title IEscrow
/// @notice Pull payments shared by the markets: sponsors escrow on posting, payees are
/// credited and withdraw, unspent escrow returns to the sponsor after the deadline.
interface IEscrow {
    /// @notice An account withdrew its credit in a token (address(0) = ETH).
    event Withdrawn(address indexed account, address indexed token, uint256 amount);

    /// @notice The owner allowed or disallowed an ERC-20 for new escrows.
    event TokenAllowed(address indexed token, bool allowed);

    /// @notice The token is not on the allowlist (ETH, address(0), always is).
    error TokenNotAllowed(address token);
    /// @notice The escrow received differs from what the terms require.
    error WrongPayment(uint256 expected, uint256 received);
    /// @notice The caller has no credit in this token.
    error NothingToWithdraw();
    /// @notice Only the sponsor of the query or trial may do this.
    error NotSponsor(uint256 id, address caller);
    /// @notice Refunds open only after the deadline.
    error DeadlineNotPassed(uint256 id, uint64 deadline);
    /// @notice The query or trial was already refunded.
    error AlreadyRefunded(uint256 id);
}
