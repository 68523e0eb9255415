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
        assertTrue(registry.commitmentUsed(custodian, bytes32(uint256(7))));
        assertFalse(registry.commitmentUsed(address(this), bytes32(uint256(7))));
        assertEq(d.memberRoot, bytes32(uint256(9)));
        assertEq(d.registrant, custodian);
        (uint256 byRoot, DatasetRegistry.Dataset memory same) =
            registry.datasetByMemberRoot(custodian, bytes32(uint256(9)));
        assertEq(byRoot, id);
        assertEq(same.registrant, custodian);
        assertEq(registry.datasetOfMemberRoot(custodian, bytes32(uint256(9))), id);
    }

    /// Gas of a registration with a membership root (a first registration by its address),
    /// as a plain call: `snapshots/DatasetRegistry.json`, written by `make gas`.
    function test_gas_register() public {
        vm.prank(custodian);
        registry.register(bytes32(uint256(7)), bytes32("s"), 40, bytes32("c"), bytes32(uint256(9)));
        uint256 gas = vm.snapshotGasLastCall("DatasetRegistry", "register");
        assertGt(gas, 0);
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
            abi.encodeWithSelector(
                IDatasetRegistryEvents.UnknownMemberRoot.selector, address(this), bytes32(0)
            )
        );
        registry.datasetByMemberRoot(address(this), 0);
        // A root is looked up by its registrant: nobody else registered 5.
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatasetRegistryEvents.UnknownMemberRoot.selector, custodian, bytes32(uint256(5))
            )
        );
        registry.datasetByMemberRoot(custodian, bytes32(uint256(5)));
    }

    /// Regression (issue #14, registration squatting): a commitment and a membership root were
    /// accepted once globally, so a copier who registered a hospital's first (a front-run of its
    /// pending `register`) blocked the hospital for good. Uniqueness is now per registrant: the
    /// copy is another dataset, which opens none of the hospital's proofs (eligibility proofs
    /// name the registrant; aggregate claims are bound to their claimant).
    function test_twoRegistrantsOfOneCommitmentAndRootGetTwoDatasets() public {
        address copier = makeAddr("copier");
        bytes32 c = bytes32(uint256(7));
        bytes32 root = bytes32(uint256(9));
        vm.prank(copier);
        uint256 copy = registry.register(c, bytes32("s"), 40, bytes32("c"), root);
        vm.prank(custodian);
        uint256 own = registry.register(c, bytes32("s"), 40, bytes32("c"), root);
        assertEq(copy, 1);
        assertEq(own, 2);
        assertTrue(registry.commitmentUsed(copier, c));
        assertTrue(registry.commitmentUsed(custodian, c));
        (uint256 byCopier, DatasetRegistry.Dataset memory dc) =
            registry.datasetByMemberRoot(copier, root);
        (uint256 byCustodian, DatasetRegistry.Dataset memory dh) =
            registry.datasetByMemberRoot(custodian, root);
        assertEq(byCopier, copy);
        assertEq(byCustodian, own);
        assertEq(dc.registrant, copier);
        assertEq(dc.custodian, copier);
        assertEq(dh.registrant, custodian);
        assertEq(dh.custodian, custodian);
        // The same address twice is still refused, for the commitment and for the root.
        vm.startPrank(custodian);
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.CommitmentAlreadyRegistered.selector, c)
        );
        registry.register(c, 0, 1, 0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatasetRegistryEvents.MemberRootAlreadyRegistered.selector, root
            )
        );
        registry.register(bytes32(uint256(8)), 0, 1, 0, root);
        vm.stopPrank();
        assertEq(registry.datasetCount(), 2);
    }

    /// A registrant never registers a commitment or a membership root twice, also after
    /// retiring the dataset.
    function test_neverAcceptsACommitmentTwice() public {
        vm.startPrank(custodian);
        uint256 id = registry.register(bytes32(uint256(7)), 0, 1, 0, bytes32(uint256(9)));
        registry.retire(id);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatasetRegistryEvents.CommitmentAlreadyRegistered.selector, bytes32(uint256(7))
            )
        );
        registry.register(bytes32(uint256(7)), 0, 1, 0, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IDatasetRegistryEvents.MemberRootAlreadyRegistered.selector, bytes32(uint256(9))
            )
        );
        registry.register(bytes32(uint256(8)), 0, 1, 0, bytes32(uint256(9)));
        vm.stopPrank();
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

    /// Ids are sequential over all registrants; a commitment is unique per registrant (two
    /// addresses, picked per step by `who`, may register the same one).
    function testFuzz_idsAreSequentialAndCommitmentsUniquePerRegistrant(
        bytes32[8] memory commitments,
        uint8 who
    ) public {
        address[2] memory registrants = [custodian, makeAddr("copier")];
        uint256 expected;
        for (uint256 i; i < commitments.length; ++i) {
            bytes32 c = commitments[i];
            address r = registrants[(who >> i) & 1];
            bool valid = c != 0 && uint256(c) < R && !registry.commitmentUsed(r, c);
            vm.prank(r);
            if (!valid) {
                vm.expectRevert();
                registry.register(c, 0, 1, 0, 0);
                continue;
            }
            uint256 id = registry.register(c, 0, 1, 0, 0);
            assertEq(id, ++expected);
            assertEq(registry.dataset(id).registrant, r);
            assertTrue(registry.commitmentUsed(r, c));
        }
        assertEq(registry.datasetCount(), expected);
    }

    function test_custodianRotatesInTwoSteps() public {
        address next = makeAddr("next");
        bytes32 root = bytes32(uint256(9));
        vm.prank(custodian);
        uint256 id = registry.register(bytes32(uint256(7)), 0, 1, 0, root);
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
        // The registrant stays: eligibility proofs keep naming it, and the rotated dataset is
        // still found by (registrant, root); the new custodian registered nothing.
        assertEq(registry.dataset(id).registrant, custodian);
        (uint256 byRoot, DatasetRegistry.Dataset memory d) =
            registry.datasetByMemberRoot(custodian, root);
        assertEq(byRoot, id);
        assertEq(d.custodian, next);
        assertEq(d.registrant, custodian);
        assertTrue(registry.commitmentUsed(custodian, bytes32(uint256(7))));
        assertFalse(registry.commitmentUsed(next, bytes32(uint256(7))));
        vm.expectRevert(
            abi.encodeWithSelector(IDatasetRegistryEvents.UnknownMemberRoot.selector, next, root)
        );
        registry.datasetByMemberRoot(next, root);
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
