// SPDX-License-Identifier: MIT
pragma solidity 0.8.19;

import {ProofGate} from "../contracts/libraries/ProofGate.sol";
import {Test} from "forge-std/Test.sol";
import {DatasetRegistry} from "../contracts/DatasetRegistry.sol";
import {IDatasetRegistryEvents} from "../contracts/interfaces/IDatasetRegistry.sol";

contract DatasetRegistryTest is Test, IDatasetRegistryEvents {
    uint256 internal constant R = ProofGate.SNARK_SCALAR_FIELD;

    DatasetRegistry internal registry;
    address internal custodian = makeAddr("custodian");

    function setUp() public {
        registry = new DatasetRegistry();
    }

    function test_registerStoresAndEmits() public {
        vm.expectEmit(address(registry));
        emit DatasetRegistered(
            1, custodian, bytes32(uint256(7)), bytes32("s"), 40, bytes32("c"), bytes32(uint256(9))
        );
        vm.prank(custodian);
        uint256 id = registry.register(
            bytes32(uint256(7)), bytes32("s"), 40, bytes32("c"), bytes32(uint256(9))
        );
        assertEq(id, 1);
        DatasetRegistry.Dataset memory d = registry.dataset(id);
        assertEq(d.custodian, custodian);
        assertEq(d.recordCount, 40);
        assertEq(d.commitment, bytes32(uint256(7)));
        assertFalse(d.retired);
        assertTrue(registry.commitmentUsed(bytes32(uint256(7))));
        assertEq(d.memberRoot, bytes32(uint256(9)));
        (uint256 byRoot,) = registry.datasetByMemberRoot(bytes32(uint256(9)));
        assertEq(byRoot, id);
    }

    function test_membershipRootsAreUniqueFieldElementsOrZero() public {
        registry.register(bytes32(uint256(1)), 0, 1, 0, 0);
        registry.register(bytes32(uint256(2)), 0, 1, 0, 0);
        registry.register(bytes32(uint256(3)), 0, 1, 0, bytes32(uint256(5)));
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatasetRegistryEvents.MemberRootAlreadyRegistered.selector, bytes32(uint256(5))
            )
        );
        registry.register(bytes32(uint256(4)), 0, 1, 0, bytes32(uint256(5)));
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.InvalidMemberRoot.selector, bytes32(R))
        );
        registry.register(bytes32(uint256(4)), 0, 1, 0, bytes32(R));
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.UnknownMemberRoot.selector, bytes32(0))
        );
        registry.datasetByMemberRoot(0);
    }

    function test_neverAcceptsACommitmentTwice() public {
        vm.prank(custodian);
        uint256 id = registry.register(bytes32(uint256(7)), 0, 1, 0, 0);
        vm.prank(custodian);
        registry.retire(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatasetRegistryEvents.CommitmentAlreadyRegistered.selector, bytes32(uint256(7))
            )
        );
        registry.register(bytes32(uint256(7)), 0, 1, 0, 0);
    }

    function test_rejectsNonFieldCommitments() public {
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.InvalidCommitment.selector, bytes32(0))
        );
        registry.register(0, 0, 1, 0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.InvalidCommitment.selector, bytes32(R))
        );
        registry.register(bytes32(R), 0, 1, 0, 0);
    }

    function test_retireOnlyByCustodianOnce() public {
        vm.prank(custodian);
        uint256 id = registry.register(bytes32(uint256(7)), 0, 1, 0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.NotCustodian.selector, id, address(this))
        );
        registry.retire(id);
        vm.expectEmit(address(registry));
        emit DatasetRetired(id, custodian);
        vm.prank(custodian);
        registry.retire(id);
        assertTrue(registry.dataset(id).retired);
        vm.prank(custodian);
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.DatasetAlreadyRetired.selector, id)
        );
        registry.retire(id);
    }

    function test_unknownDataset() public {
        vm.expectRevert(abi.encodeWithSelector(IDatasetRegistryEvents.UnknownDataset.selector, 5));
        registry.dataset(5);
        vm.expectRevert(abi.encodeWithSelector(IDatasetRegistryEvents.UnknownDataset.selector, 0));
        registry.retire(0);
    }

    function testFuzz_idsAreSequentialAndCommitmentsUnique(bytes32[8] memory commitments) public {
        uint256 expected;
        for (uint256 i; i < commitments.length; ++i) {
            bytes32 c = commitments[i];
            bool valid = c != 0 && uint256(c) < R && !registry.commitmentUsed(c);
            if (!valid) {
                vm.expectRevert();
                registry.register(c, 0, 1, 0, 0);
                continue;
            }
            assertEq(registry.register(c, 0, 1, 0, 0), ++expected);
        }
        assertEq(registry.datasetCount(), expected);
    }

    function test_custodianRotatesInTwoSteps() public {
        address next = makeAddr("next");
        vm.prank(custodian);
        uint256 id = registry.register(bytes32(uint256(7)), 0, 1, 0, 0);
        // Only the custodian may offer; nobody but the offered address may accept.
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.NotCustodian.selector, id, next)
        );
        vm.prank(next);
        registry.transferCustodian(id, next);
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.NotPendingCustodian.selector, id, next)
        );
        vm.prank(next);
        registry.acceptCustodian(id);

        vm.expectEmit(address(registry));
        emit CustodianTransferStarted(id, custodian, next);
        vm.prank(custodian);
        registry.transferCustodian(id, next);
        assertEq(registry.dataset(id).custodian, custodian, "still the custodian until accepted");
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatasetRegistryEvents.NotPendingCustodian.selector, id, address(this)
            )
        );
        registry.acceptCustodian(id);

        vm.expectEmit(address(registry));
        emit CustodianTransferred(id, custodian, next);
        vm.prank(next);
        registry.acceptCustodian(id);
        assertEq(registry.dataset(id).custodian, next);
        assertEq(registry.pendingCustodian(id), address(0));
        // The old address has no power left; the new one can retire.
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.NotCustodian.selector, id, custodian)
        );
        vm.prank(custodian);
        registry.retire(id);
        vm.prank(next);
        registry.retire(id);
    }

    function test_custodianOfferCanBeWithdrawn() public {
        address next = makeAddr("next");
        vm.prank(custodian);
        uint256 id = registry.register(bytes32(uint256(7)), 0, 1, 0, 0);
        vm.prank(custodian);
        registry.transferCustodian(id, next);
        vm.expectEmit(address(registry));
        emit CustodianTransferStarted(id, custodian, address(0));
        vm.prank(custodian);
        registry.transferCustodian(id, address(0));
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.NotPendingCustodian.selector, id, next)
        );
        vm.prank(next);
        registry.acceptCustodian(id);
        // address(0) can never accept a withdrawn offer.
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatasetRegistryEvents.NotPendingCustodian.selector, id, address(0)
            )
        );
        vm.prank(address(0));
        registry.acceptCustodian(id);
    }
}
