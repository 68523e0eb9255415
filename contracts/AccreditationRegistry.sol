// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {IAccreditationRegistry} from "./interfaces/IAccreditationRegistry.sol";

/// @title AccreditationRegistry
/// @notice Accreditors attest custodians, and may revoke. The caller is the accreditor: its
/// address is what sponsors name, so an attestation means exactly "this address vouches for
/// that custodian". Nothing here is owned or upgradeable.
/// @dev Storage: `isAccredited` (accreditor → custodian → bool).
contract AccreditationRegistry is IAccreditationRegistry {
    /// @inheritdoc IAccreditationRegistry
    mapping(address accreditor => mapping(address custodian => bool)) public isAccredited;

    /// @notice Attests `custodian` as the caller (the accreditor). Emits `Accredited`.
    /// @param custodian The custodian's address (the account that registers its datasets).
    function accredit(address custodian) external {
        if (custodian == address(0)) revert ZeroCustodian();
        if (isAccredited[msg.sender][custodian]) revert AlreadyAccredited(msg.sender, custodian);
        isAccredited[msg.sender][custodian] = true;
        emit Accredited(msg.sender, custodian);
    }

    /// @notice Withdraws the caller's attestation of `custodian`. Emits `AccreditationRevoked`.
    /// Claims and enrolments after this are refused for queries and trials that name the
    /// caller; those already paid stand.
    /// @param custodian The custodian.
    function revoke(address custodian) external {
        if (!isAccredited[msg.sender][custodian]) revert NotAccredited(msg.sender, custodian);
        isAccredited[msg.sender][custodian] = false;
        emit AccreditationRevoked(msg.sender, custodian);
    }
}
