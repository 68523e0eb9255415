// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {IConsentPurposes} from "../../contracts/interfaces/IConsentPurposes.sol";

/// @notice The consent purposes of the clinical schema (`examples/schema-clinical-v1.json`, in
/// bit order), as the deploy script registers them in both markets.
library ClinicalPurposes {
    /// @dev research, trials, recontact, genomics: bits 0 to 3 of `schemaHash`'s consent column.
    function forSchema(bytes32 schemaHash)
        internal
        pure
        returns (IConsentPurposes.ConsentPurpose[] memory p)
    {
        bytes32[4] memory names = [bytes32("research"), "trials", "recontact", "genomics"];
        p = new IConsentPurposes.ConsentPurpose[](4);
        for (uint256 i; i < 4; ++i) {
            p[i] =
                IConsentPurposes.ConsentPurpose({schemaHash: schemaHash, index: i, name: names[i]});
        }
    }
}
