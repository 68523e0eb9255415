// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Script, console2} from "forge-std/Script.sol";
import {DatasetRegistry} from "../contracts/DatasetRegistry.sol";
import {QueryMarket} from "../contracts/QueryMarket.sol";

/// @notice Deploys the registry, every generated verifier listed in
/// `contracts/verifiers/verifiers.json` (contract name → circuit id) and the market with those
/// verifiers fixed, then writes the addresses to `DEPLOYMENT_OUT`
/// (default `deployments/<chain id>.json`) for the Rust client.
///
/// forge script script/Deploy.s.sol --rpc-url $ETH_RPC_URL --private-key $KEY --broadcast
contract Deploy is Script {
    function run() external {
        string memory manifest = vm.readFile("contracts/verifiers/verifiers.json");
        string[] memory names = vm.parseJsonKeys(manifest, "$");
        address owner = vm.envOr("MARKET_OWNER", msg.sender);

        bytes32[] memory circuitIds = new bytes32[](names.length);
        address[] memory verifiers = new address[](names.length);
        string memory verifiersJson = "verifiers";
        string memory out;

        vm.startBroadcast();
        DatasetRegistry registry = new DatasetRegistry();
        for (uint256 i; i < names.length; ++i) {
            string memory circuitId = vm.parseJsonString(manifest, string.concat(".", names[i]));
            circuitIds[i] = keccak256(bytes(circuitId));
            verifiers[i] = deployCode(string.concat(names[i], ".sol:", names[i]));
            out = vm.serializeAddress(verifiersJson, circuitId, verifiers[i]);
        }
        QueryMarket market = new QueryMarket(registry, owner, circuitIds, verifiers);
        vm.stopBroadcast();

        string memory root = "deployment";
        vm.serializeUint(root, "chain_id", block.chainid);
        vm.serializeAddress(root, "registry", address(registry));
        vm.serializeAddress(root, "market", address(market));
        vm.serializeAddress(root, "owner", owner);
        string memory json = vm.serializeString(root, "verifiers", out);
        string memory path = vm.envOr(
            "DEPLOYMENT_OUT", string.concat("deployments/", vm.toString(block.chainid), ".json")
        );
        vm.writeJson(json, path);
        console2.log("registry", address(registry));
        console2.log("market", address(market));
        console2.log("deployment written to", path);
    }
}
