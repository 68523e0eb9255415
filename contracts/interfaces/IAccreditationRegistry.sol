// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title IAccreditationRegistryEvents
/// @notice Events and errors of the accreditation registry (no functions, so tests and clients
/// can inherit them).
interface IAccreditationRegistryEvents {
    /// @notice An accreditor attested a custodian.
    event Accredited(address indexed accreditor, address indexed custodian);
    /// @notice An accreditor withdrew its attestation of a custodian.
    event AccreditationRevoked(address indexed accreditor, address indexed custodian);

    /// @notice The accreditor has not attested this custodian.
    error NotAccredited(address accreditor, address custodian);
    /// @notice The accreditor already attests this custodian.
    error AlreadyAccredited(address accreditor, address custodian);
    /// @notice A custodian cannot be the zero address.
    error ZeroCustodian();
}

/// @title IAccreditationRegistry
/// @notice Who vouches for which custodian. Any address may act as an accreditor (an IRB, a
/// research network, a regulator, or a multisig of them); a sponsor names the accreditor it
/// trusts in its query or trial, and the markets pay only custodians that accreditor attests.
interface IAccreditationRegistry is IAccreditationRegistryEvents {
    /// @notice Whether `accreditor` currently attests `custodian`.
    /// @param accreditor The accreditor.
    /// @param custodian The custodian.
    /// @return Whether the attestation stands.
    function isAccredited(address accreditor, address custodian) external view returns (bool);
}
