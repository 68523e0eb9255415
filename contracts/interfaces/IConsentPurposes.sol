// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

/// @title IConsentPurposes
/// @notice The consent purposes a market accepts, per schema: a query's or trial's consent
/// purpose (the bit of the schema's consent column a record must carry) must be one the owner
/// registered, so a sponsor cannot name a purpose nobody consented to. Types, events and
/// errors only, so tests and clients can inherit it.
interface IConsentPurposes {
    /// @notice A consent purpose of a schema.
    /// @param schemaHash SHA-256 of the schema.
    /// @param index The purpose's bit in the schema's consent column (what queries and trials
    /// carry as their purpose constant).
    /// @param name The purpose's name (UTF-8, left-aligned, zero-padded; at most 32 bytes).
    struct ConsentPurpose {
        bytes32 schemaHash;
        uint256 index;
        bytes32 name;
    }

    /// @notice A consent purpose was registered (at deployment, or by applying a proposal),
    /// renamed, or (`name` 0) removed.
    event ConsentPurposeSet(
        bytes32 indexed schemaHash, uint256 indexed index, bytes32 previous, bytes32 name
    );
    /// @notice The owner proposed a consent purpose (`name` 0: its removal); anyone may apply it
    /// from `eta` on. The notice lets custodians and patients see it coming.
    event ConsentPurposeProposed(
        bytes32 indexed schemaHash, uint256 indexed index, bytes32 name, uint64 eta
    );
    /// @notice The owner withdrew a pending consent purpose proposal.
    event ConsentPurposeProposalCancelled(bytes32 indexed schemaHash, uint256 indexed index);

    /// @notice The query's or trial's consent purpose is not registered for its schema.
    error UnknownConsentPurpose(uint256 purpose);
    /// @notice A purpose registered at deployment has no name, or is listed twice.
    error InvalidConsentPurpose(bytes32 schemaHash, uint256 index);
    /// @notice No consent purpose proposal is pending for this schema and index.
    error NoPendingConsentPurpose(bytes32 schemaHash, uint256 index);
    /// @notice The proposal's notice period has not run out.
    error ConsentPurposeNotYetDue(bytes32 schemaHash, uint256 index, uint64 eta);
}
