// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Script, console2} from "forge-std/Script.sol";
import {DatasetRegistry} from "../contracts/DatasetRegistry.sol";
import {QueryMarket} from "../contracts/QueryMarket.sol";
import {TrialMarket} from "../contracts/TrialMarket.sol";
import {IProofGated} from "../contracts/interfaces/IProofGated.sol";

/// @notice Deploys the registry, every generated verifier listed in
/// `contracts/verifiers/verifiers.json` (contract name → circuit id, kind, schema hash, constants
/// count, patient slots), the query market with the aggregate verifiers set and the trial market
/// with the eligibility verifiers set, then writes the addresses to `DEPLOYMENT_OUT` (default
/// `deployments/<chain id>.json`) for the Rust client.
///
/// forge script script/Deploy.s.sol --rpc-url $ETH_RPC_URL --private-key $KEY --broadcast
contract Deploy is Script {
    struct Verifiers {
        bytes32[] circuitIds;
        IProofGated.Circuit[] circuits;
        uint256 n;
    }

    function run() external {
        address owner = vm.envOr("MARKET_OWNER", msg.sender);
        vm.startBroadcast();
        DatasetRegistry registry = new DatasetRegistry();
        (Verifiers memory aggregate, Verifiers memory eligibility, string memory verifiers) =
            _deployVerifiers();
        QueryMarket market =
            new QueryMarket(registry, owner, aggregate.circuitIds, aggregate.circuits);
        TrialMarket trials =
            new TrialMarket(registry, owner, eligibility.circuitIds, eligibility.circuits);
        vm.stopBroadcast();

        string memory root = "deployment";
        vm.serializeUint(root, "chain_id", block.chainid);
        vm.serializeAddress(root, "registry", address(registry));
        vm.serializeAddress(root, "market", address(market));
        vm.serializeAddress(root, "trials", address(trials));
        vm.serializeAddress(root, "owner", owner);
        string memory json = vm.serializeString(root, "verifiers", verifiers);
        string memory path = vm.envOr(
            "DEPLOYMENT_OUT", string.concat("deployments/", vm.toString(block.chainid), ".json")
        );
        vm.writeJson(json, path);
        console2.log("registry", address(registry));
        console2.log("market", address(market));
        console2.log("trials", address(trials));
        console2.log("deployment written to", path);
    }

    /// @dev Deploys every verifier of the manifest; sorts them into aggregate and eligibility
    /// circuits; returns them and the `circuit id → address` JSON.
    function _deployVerifiers()
        internal
        returns (Verifiers memory aggregate, Verifiers memory eligibility, string memory out)
    {
        string memory manifest = vm.readFile("contracts/verifiers/verifiers.json");
        string[] memory names = vm.parseJsonKeys(manifest, "$");
        aggregate = _alloc(names.length);
        eligibility = _alloc(names.length);
        for (uint256 i; i < names.length; ++i) {
            string memory key = string.concat(".", names[i]);
            string memory circuitId =
                vm.parseJsonString(manifest, string.concat(key, ".circuit_id"));
            string memory kind = vm.parseJsonString(manifest, string.concat(key, ".kind"));
            IProofGated.Circuit memory c;
            c.verifier = deployCode(string.concat(names[i], ".sol:", names[i]));
            c.schemaHash = vm.parseJsonBytes32(manifest, string.concat(key, ".schema_hash"));
            c.numConstants = uint32(vm.parseJsonUint(manifest, string.concat(key, ".constants")));
            c.batch = uint32(vm.parseJsonUint(manifest, string.concat(key, ".batch")));
            out = vm.serializeAddress("verifiers", circuitId, c.verifier);
            if (keccak256(bytes(kind)) == keccak256("eligibility")) {
                _push(eligibility, circuitId, c);
            } else if (keccak256(bytes(kind)) == keccak256("aggregate")) {
                _push(aggregate, circuitId, c);
            } else {
                revert(string.concat("verifiers.json: unknown kind of ", names[i]));
            }
        }
        _trim(aggregate);
        _trim(eligibility);
    }

    function _alloc(uint256 n) internal pure returns (Verifiers memory v) {
        v.circuitIds = new bytes32[](n);
        v.circuits = new IProofGated.Circuit[](n);
    }

    function _push(Verifiers memory v, string memory circuitId, IProofGated.Circuit memory c)
        internal
        pure
    {
        (v.circuitIds[v.n], v.circuits[v.n]) = (keccak256(bytes(circuitId)), c);
        ++v.n;
    }

    /// @dev Shrinks the arrays to the entries pushed.
    function _trim(Verifiers memory v) internal pure {
        bytes32[] memory ids = v.circuitIds;
        IProofGated.Circuit[] memory cs = v.circuits;
        uint256 n = v.n;
        assembly {
            mstore(ids, n)
            mstore(cs, n)
        }
    }
}
