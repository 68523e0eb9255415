// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {Script, console2} from "forge-std/Script.sol";
import {AccreditationRegistry} from "../contracts/AccreditationRegistry.sol";
import {DatasetRegistry} from "../contracts/DatasetRegistry.sol";
import {QueryMarket} from "../contracts/QueryMarket.sol";
import {TrialMarket} from "../contracts/TrialMarket.sol";
import {IProofGated} from "../contracts/interfaces/IProofGated.sol";
import {IConsentPurposes} from "../contracts/interfaces/IConsentPurposes.sol";

/// @notice Deploys the dataset and accreditation registries, every generated verifier listed in
/// `contracts/verifiers/verifiers.json` (contract name → circuit id, kind, schema hash, constants
/// count, patient slots, `data_columns`, the data columns of a commit-and-prove aggregate
/// circuit, 0 when absent, and `cells`, the cells an aggregate circuit releases, 0 for an
/// attestation, 1 when absent), the query market with the aggregate verifiers set and the trial
/// market with the eligibility verifiers set, then writes the addresses to `DEPLOYMENT_OUT`
/// (default `deployments/<chain id>.json`) for the Rust client.
///
/// Both markets register the consent purposes of every schema file in `ZKCOHORT_SCHEMAS`
/// (comma-separated paths, default `examples/schema-clinical-v1.json`): the purposes of its
/// consent column, in bit order, under the schema's hash (SHA-256 of its compact JSON, which
/// the file must be the pretty-printed form of, as `zkcohort` writes schemas). Every schema a
/// verifier of the manifest serves must be among them.
///
/// The deploying key comes from the environment (`DEPLOYER_PRIVATE_KEY`) or from forge's own
/// wallet options (`--account` keystore, `--ledger`), never `--private-key` (a command line is
/// readable by every local process). The owner is `MARKET_OWNER`: on the local chain (31337) it
/// defaults to the deployer; on any other chain it must be set, to another account than the
/// deploying key (a multisig or a timelock).
///
/// Verifiers built from the development KZG params (`"params": {"kind": "dev-insecure"}` in the
/// manifest, or no `params` recorded) accept forged proofs: on any chain but the local one
/// (31337) the script refuses them unless `ZKCOHORT_ALLOW_DEV_PARAMS=1` (a throwaway test chain).
///
/// DEPLOYER_PRIVATE_KEY=$KEY forge script script/Deploy.s.sol --rpc-url $ETH_RPC_URL --broadcast --slow
/// forge script script/Deploy.s.sol --rpc-url $ETH_RPC_URL --account NAME --broadcast --slow
contract Deploy is Script {
    /// @dev anvil's (and the demo's) chain id: the only chain dev-params verifiers may reach.
    uint256 internal constant LOCAL_CHAIN_ID = 31337;

    struct Verifiers {
        bytes32[] circuitIds;
        IProofGated.Circuit[] circuits;
        uint256 n;
    }

    function run() external {
        uint256 key = vm.envOr("DEPLOYER_PRIVATE_KEY", uint256(0));
        address deployer = key == 0 ? msg.sender : vm.addr(key);
        address owner = vm.envOr("MARKET_OWNER", deployer);
        _checkParams(vm.readFile("contracts/verifiers/verifiers.json"));
        _checkOwner(owner, deployer);
        IConsentPurposes.ConsentPurpose[] memory purposes =
            _consentPurposes(vm.readFile("contracts/verifiers/verifiers.json"));
        if (key == 0) vm.startBroadcast();
        else vm.startBroadcast(key);
        DatasetRegistry registry = new DatasetRegistry();
        AccreditationRegistry accreditations = new AccreditationRegistry();
        (Verifiers memory aggregate, Verifiers memory eligibility, string memory verifiers) =
            _deployVerifiers();
        QueryMarket market = new QueryMarket(
            registry, accreditations, owner, aggregate.circuitIds, aggregate.circuits, purposes
        );
        TrialMarket trials = new TrialMarket(
            registry, accreditations, owner, eligibility.circuitIds, eligibility.circuits, purposes
        );
        vm.stopBroadcast();

        string memory root = "deployment";
        vm.serializeUint(root, "chain_id", block.chainid);
        vm.serializeAddress(root, "registry", address(registry));
        vm.serializeAddress(root, "accreditations", address(accreditations));
        vm.serializeAddress(root, "market", address(market));
        vm.serializeAddress(root, "trials", address(trials));
        vm.serializeAddress(root, "owner", owner);
        string memory json = vm.serializeString(root, "verifiers", verifiers);
        string memory path = vm.envOr(
            "DEPLOYMENT_OUT", string.concat("deployments/", vm.toString(block.chainid), ".json")
        );
        vm.writeJson(json, path);
        console2.log("registry", address(registry));
        console2.log("accreditations", address(accreditations));
        console2.log("market", address(market));
        console2.log("trials", address(trials));
        console2.log("deployment written to", path);
    }

    /// @dev Off the local chain the owner (who proposes verifier changes, allows tokens and may
    /// remove a verifier) must be named in `MARKET_OWNER` and be another account than the
    /// deploying key (a multisig or a timelock): a hot deploy key is not an owner.
    function _checkOwner(address owner, address deployer) internal view {
        if (block.chainid == LOCAL_CHAIN_ID || (owner != deployer && owner != address(0))) return;
        revert(
            string.concat(
                "Deploy: on chain ",
                vm.toString(block.chainid),
                " the markets' owner must be set in MARKET_OWNER and differ from the deploying key (",
                vm.toString(deployer),
                "): name a multisig or a timelock"
            )
        );
    }

    /// @dev Reverts if a verifier of `manifest` was built from development params (or records no
    /// params) and this is not the local chain, unless `ZKCOHORT_ALLOW_DEV_PARAMS=1`, which
    /// logs a warning instead.
    function _checkParams(string memory manifest) internal view {
        string[] memory names = vm.parseJsonKeys(manifest, "$");
        string memory insecure;
        for (uint256 i; i < names.length; ++i) {
            string memory kind = string.concat(".", names[i], ".params.kind");
            if (
                !vm.keyExistsJson(manifest, kind)
                    || keccak256(bytes(vm.parseJsonString(manifest, kind))) != keccak256("file")
            ) {
                insecure = string.concat(
                    insecure, bytes(insecure).length == 0 ? "" : ", ", names[i]
                );
            }
        }
        if (bytes(insecure).length == 0 || block.chainid == LOCAL_CHAIN_ID) return;
        string memory what = string.concat(
            "verifiers built from INSECURE development KZG parameters (",
            insecure,
            ") on chain ",
            vm.toString(block.chainid),
            ": anyone can forge their proofs"
        );
        if (keccak256(bytes(vm.envOr("ZKCOHORT_ALLOW_DEV_PARAMS", string("")))) != keccak256("1")) {
            revert(
                string.concat(
                    "Deploy: refusing to deploy ",
                    what,
                    ". Regenerate them from ceremony params (zkcohort setup --params FILE --params-sha256 HEX), or set ZKCOHORT_ALLOW_DEV_PARAMS=1 for a throwaway test chain."
                )
            );
        }
        console2.log("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        console2.log(string.concat("WARNING: ZKCOHORT_ALLOW_DEV_PARAMS=1: deploying ", what, "."));
        console2.log("Never hold real value on these contracts.");
        console2.log("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
    }

    /// @dev The consent purposes of the schema files in `ZKCOHORT_SCHEMAS`; reverts if a
    /// verifier of `manifest` serves a schema none of them is.
    function _consentPurposes(string memory manifest)
        internal
        view
        returns (IConsentPurposes.ConsentPurpose[] memory out)
    {
        string[] memory defaults = new string[](1);
        defaults[0] = "examples/schema-clinical-v1.json";
        string[] memory paths = vm.envOr("ZKCOHORT_SCHEMAS", ",", defaults);
        bytes32[] memory hashes = new bytes32[](paths.length);
        string[][] memory names = new string[][](paths.length);
        uint256 total;
        for (uint256 i; i < paths.length; ++i) {
            string memory json = vm.readFile(paths[i]);
            hashes[i] = sha256(_compact(bytes(json)));
            names[i] = _purposesOf(json, paths[i]);
            total += names[i].length;
        }
        out = new IConsentPurposes.ConsentPurpose[](total);
        uint256 n;
        for (uint256 i; i < paths.length; ++i) {
            for (uint256 j; j < names[i].length; ++j) {
                if (bytes(names[i][j]).length > 32) {
                    revert(string.concat(paths[i], ": consent purpose longer than 32 bytes"));
                }
                out[n++] = IConsentPurposes.ConsentPurpose({
                    schemaHash: hashes[i], index: j, name: bytes32(bytes(names[i][j]))
                });
            }
        }
        string[] memory verifiers = vm.parseJsonKeys(manifest, "$");
        for (uint256 i; i < verifiers.length; ++i) {
            bytes32 schema =
                vm.parseJsonBytes32(manifest, string.concat(".", verifiers[i], ".schema_hash"));
            bool known;
            for (uint256 k; k < hashes.length; ++k) {
                known = known || hashes[k] == schema;
            }
            if (!known) {
                revert(
                    string.concat(
                        "Deploy: no schema file for the schema ",
                        vm.toString(schema),
                        " of ",
                        verifiers[i],
                        ": list its file in ZKCOHORT_SCHEMAS (comma-separated)"
                    )
                );
            }
        }
    }

    /// @dev The purposes of a schema's consent column, in bit order.
    function _purposesOf(string memory json, string memory path)
        internal
        view
        returns (string[] memory)
    {
        for (uint256 i;; ++i) {
            string memory col = string.concat(".columns[", vm.toString(i), "]");
            if (!vm.keyExistsJson(json, col)) break;
            string memory kind = vm.parseJsonString(json, string.concat(col, ".kind"));
            if (keccak256(bytes(kind)) == keccak256("consent")) {
                return vm.parseJsonStringArray(json, string.concat(col, ".purposes"));
            }
        }
        revert(string.concat(path, ": no consent column"));
    }

    /// @dev `json` without the whitespace between tokens (the compact form a schema is hashed
    /// in).
    function _compact(bytes memory json) internal pure returns (bytes memory out) {
        out = new bytes(json.length);
        uint256 n;
        bool inString;
        bool escaped;
        for (uint256 i; i < json.length; ++i) {
            bytes1 c = json[i];
            if (inString) {
                if (escaped) escaped = false;
                else if (c == "\\") escaped = true;
                else if (c == '"') inString = false;
            } else if (c == '"') {
                inString = true;
            } else if (c == " " || c == "\n" || c == "\r" || c == "\t") {
                continue;
            }
            out[n++] = c;
        }
        assembly {
            mstore(out, n)
        }
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
            c.batch = uint16(vm.parseJsonUint(manifest, string.concat(key, ".batch")));
            // Data columns of a commit-and-prove circuit; absent (0) in older manifests.
            string memory columns = string.concat(key, ".data_columns");
            if (vm.keyExistsJson(manifest, columns)) {
                c.dataColumns = uint32(vm.parseJsonUint(manifest, columns));
            }
            bool isAggregate = keccak256(bytes(kind)) == keccak256("aggregate");
            // Released cells (0: an attestation's verdict); absent in older manifests: one
            // cell for an aggregate circuit, none for an eligibility circuit.
            string memory cells = string.concat(key, ".cells");
            c.cells = vm.keyExistsJson(manifest, cells)
                ? uint16(vm.parseJsonUint(manifest, cells))
                : (isAggregate ? 1 : 0);
            out = vm.serializeAddress("verifiers", circuitId, c.verifier);
            if (keccak256(bytes(kind)) == keccak256("eligibility")) {
                _push(eligibility, circuitId, c);
            } else if (isAggregate) {
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
