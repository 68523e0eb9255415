// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Ownable} from "solady/auth/Ownable.sol";
import {IConsentPurposes} from "../interfaces/IConsentPurposes.sol";

/// @title ConsentPurposes
/// @notice The registered consent purposes of each schema, shared by both markets: set at
/// deployment from the schema's consent column, changed only by the owner with notice
/// (`proposeConsentPurpose` → `applyConsentPurpose` after `CONSENT_PURPOSE_DELAY`, the same
/// timelock verifier changes go through). A query or trial naming a purpose that is not
/// registered for its schema is refused (`UnknownConsentPurpose`).
/// @dev Storage, in declaration order after `Ownable` (which uses a fixed slot of its own):
/// `consentPurposes` (schemaHash → index → name), `pendingConsentPurposes` (schemaHash → index
/// → PendingPurpose: name, then eta). The owner is initialised by `ProofGated`.
abstract contract ConsentPurposes is IConsentPurposes, Ownable {
    /// @notice Notice between proposing a consent purpose change and applying it (as
    /// `VERIFIER_DELAY`).
    uint64 public constant CONSENT_PURPOSE_DELAY = 2 days;

    /// @notice A proposed change, not yet applied.
    struct PendingPurpose {
        bytes32 name;
        uint64 eta;
    }

    /// @notice The name of each registered purpose (0: not registered).
    mapping(bytes32 schemaHash => mapping(uint256 index => bytes32)) public consentPurposes;
    /// @notice Pending proposals (eta 0: none).
    mapping(bytes32 schemaHash => mapping(uint256 index => PendingPurpose)) public
        pendingConsentPurposes;

    /// @param purposes_ The purposes registered at deployment (each named, none twice).
    constructor(ConsentPurpose[] memory purposes_) {
        for (uint256 i; i < purposes_.length; ++i) {
            ConsentPurpose memory p = purposes_[i];
            if (p.name == 0 || consentPurposes[p.schemaHash][p.index] != 0) {
                revert InvalidConsentPurpose(p.schemaHash, p.index);
            }
            _setConsentPurpose(p.schemaHash, p.index, p.name);
        }
    }

    /// @notice Proposes registering, renaming or (`name` 0) removing a consent purpose of a
    /// schema; it can be applied after `CONSENT_PURPOSE_DELAY`. Only the owner. Replaces a
    /// pending proposal for the same purpose. Emits `ConsentPurposeProposed`.
    /// @param schemaHash SHA-256 of the schema.
    /// @param index The purpose's bit in the schema's consent column.
    /// @param name The purpose's name (0: remove it).
    function proposeConsentPurpose(bytes32 schemaHash, uint256 index, bytes32 name)
        external
        onlyOwner
    {
        uint64 eta = uint64(block.timestamp) + CONSENT_PURPOSE_DELAY;
        pendingConsentPurposes[schemaHash][index] = PendingPurpose({name: name, eta: eta});
        emit ConsentPurposeProposed(schemaHash, index, name, eta);
    }

    /// @notice Applies a proposal whose notice has run out. Anyone may call it. Emits
    /// `ConsentPurposeSet`.
    /// @param schemaHash SHA-256 of the schema.
    /// @param index The purpose's bit.
    function applyConsentPurpose(bytes32 schemaHash, uint256 index) external {
        PendingPurpose memory p = pendingConsentPurposes[schemaHash][index];
        if (p.eta == 0) revert NoPendingConsentPurpose(schemaHash, index);
        if (block.timestamp < p.eta) revert ConsentPurposeNotYetDue(schemaHash, index, p.eta);
        delete pendingConsentPurposes[schemaHash][index];
        _setConsentPurpose(schemaHash, index, p.name);
    }

    /// @notice Withdraws a pending proposal. Only the owner. Emits
    /// `ConsentPurposeProposalCancelled`.
    /// @param schemaHash SHA-256 of the schema.
    /// @param index The purpose's bit.
    function cancelConsentPurpose(bytes32 schemaHash, uint256 index) external onlyOwner {
        if (pendingConsentPurposes[schemaHash][index].eta == 0) {
            revert NoPendingConsentPurpose(schemaHash, index);
        }
        delete pendingConsentPurposes[schemaHash][index];
        emit ConsentPurposeProposalCancelled(schemaHash, index);
    }

    /// @dev Reverts with `UnknownConsentPurpose` unless `purpose` is registered for `schemaHash`.
    function _checkConsentPurpose(bytes32 schemaHash, uint256 purpose) internal view {
        if (consentPurposes[schemaHash][purpose] == 0) revert UnknownConsentPurpose(purpose);
    }

    function _setConsentPurpose(bytes32 schemaHash, uint256 index, bytes32 name) internal {
        emit ConsentPurposeSet(schemaHash, index, consentPurposes[schemaHash][index], name);
        consentPurposes[schemaHash][index] = name;
    }
}
